// `hydra jobs` and `hydra job` rendering: aligned columns, ages, the answer last.
import { describe, expect, it } from 'vitest';
import { ago, renderJob, renderJobs } from './jobs.js';

const NOW = Date.parse('2025-06-01T12:00:00.000Z');
const row = (id: string, state: string, createdAgoS: number, finished: boolean) => ({
  id,
  state,
  type: 'generate',
  model: 'qwen3:4b',
  queue: 'infer.qwen3_4b',
  priority: 5,
  created_at: new Date(NOW - createdAgoS * 1000).toISOString(),
  finished_at: finished ? new Date(NOW - 1000).toISOString() : null,
  node_id: finished ? 'gpu-a' : null,
});

describe('hydra jobs / job rendering', () => {
  it('ages in s, m, h, d', () => {
    expect([5, 125, 7300, 200_000].map((s) => ago(new Date(NOW - s * 1000).toISOString(), NOW))).toEqual(['5s', '2m', '2h', '2d']);
    expect(ago(null, NOW)).toBe('-');
  });

  it('aligns the table, dashes for what is not known', () => {
    expect(renderJobs([row('job-long-id-1', 'completed', 90, true), row('j2', 'waiting', 3, false)], NOW).split('\n')).toEqual([
      'ID             STATE      TYPE      MODEL     PRI  NODE   CREATED  FINISHED',
      'job-long-id-1  completed  generate  qwen3:4b  5    gpu-a  1m ago   1s ago',
      'j2             waiting    generate  qwen3:4b  5    -      3s ago   -',
    ]);
    expect(renderJobs([], NOW)).toBe('no jobs');
  });

  it('shows a view as fields, the error or the answer', () => {
    const text = renderJob({ id: 'j1', state: 'failed', model: 'm', attempts_made: 2, attempts_max: 3, error: { code: 'backend_error', message: 'boom' } });
    expect(text).toBe(['id:             j1', 'state:          failed', 'model:          m', 'attempts:       2/3', 'error:          boom [backend_error]'].join('\n'));
    expect(renderJob({ id: 'j2', state: 'completed', result: { response: 'the answer' } as never }).split('\n').slice(-2)).toEqual(['', 'the answer']);
  });
});
