// The summary math: nearest-rank percentiles, the window, per-model grouping, and what a finished job is recorded as.
import { describe, expect, it } from 'vitest';
import { ErrorCode, HydraError, type InferResult } from '../core/index.js';
import { finishedEntry, parseEntry, type ActivityEntry } from './entry.js';
import { percentile, summarizeLatency } from './summary.js';

describe('percentile (nearest rank)', () => {
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
  it.each([
    { sorted: [], p: 50, want: null },
    { sorted: [7], p: 50, want: 7 },
    { sorted: [7], p: 95, want: 7 },
    { sorted: [1, 2], p: 50, want: 1 },
    { sorted: [1, 2], p: 95, want: 2 },
    { sorted: [1, 2, 3, 4], p: 50, want: 2 },
    { sorted: [10, 20, 30, 40, 50, 60, 70, 80, 90, 100], p: 95, want: 100 },
    { sorted: hundred, p: 50, want: 50 },
    { sorted: hundred, p: 95, want: 95 },
    { sorted: hundred, p: 0, want: 1 },
    { sorted: hundred, p: 100, want: 100 },
  ])('p$p of $sorted.length values = $want', ({ sorted, p, want }) => {
    expect(percentile(sorted, p)).toBe(want);
  });
});

const entry = (over: Partial<ActivityEntry>): ActivityEntry => ({
  at: 1_000_000,
  job_id: 'j',
  model: 'm',
  type: 'chat',
  node: 'n',
  queue: 'infer.m',
  priority: 5,
  outcome: 'completed',
  reason: 'r',
  queued_ms: 0,
  total_ms: 100,
  ...over,
});

describe('summarizeLatency', () => {
  const now = 1_000_000;
  it('groups by model, busiest first, and takes p50/p95 of completed jobs only', () => {
    const entries = [
      ...Array.from({ length: 20 }, (_, i) => entry({ model: 'a', at: now - i, total_ms: (i + 1) * 10, ttft_ms: i + 1 })),
      entry({ model: 'a', at: now - 30, outcome: 'failed', error_code: 'timeout', total_ms: 999_999 }),
      entry({ model: 'b', at: now - 40, total_ms: 5 }),
    ];
    const s = summarizeLatency(entries, now, 60_000);
    expect(s.models).toEqual([
      { model: 'a', jobs: 21, failed: 1, total_ms: { p50: 100, p95: 190 }, ttft_ms: { p50: 10, p95: 19 } },
      { model: 'b', jobs: 1, failed: 0, total_ms: { p50: 5, p95: 5 }, ttft_ms: null },
    ]);
    expect(s.covered_ms).toBe(40);
    expect(s.truncated).toBe(false);
  });

  it('counts only jobs that ended inside the window', () => {
    const s = summarizeLatency([entry({ at: now - 1000, total_ms: 1 }), entry({ at: now - 60_000, total_ms: 2 }), entry({ at: now - 90_000, total_ms: 3 })], now, 60_000);
    expect(s.models).toEqual([{ model: 'm', jobs: 1, failed: 0, total_ms: { p50: 1, p95: 1 }, ttft_ms: null }]);
  });

  it('a model whose jobs all failed has no latency, only counts', () => {
    const s = summarizeLatency([entry({ outcome: 'failed' }), entry({ outcome: 'failed' })], now, 60_000);
    expect(s.models).toEqual([{ model: 'm', jobs: 2, failed: 2, total_ms: null, ttft_ms: null }]);
  });

  it('says when a full log does not reach back to the start of the window', () => {
    const entries = [entry({ at: now - 10 }), entry({ at: now - 20 })];
    expect(summarizeLatency(entries, now, 60_000, true).truncated).toBe(true);
    expect(summarizeLatency(entries, now, 60_000, false).truncated).toBe(false);
    expect(summarizeLatency([...entries, entry({ at: now - 120_000 })], now, 60_000, true).truncated).toBe(false);
  });

  it('an empty log gives no models', () => {
    expect(summarizeLatency([], now, 60_000)).toEqual({ window_ms: 60_000, covered_ms: 0, truncated: false, models: [] });
  });
});

describe('finishedEntry', () => {
  const data = {
    call: { type: 'chat', model: 'qwen3:14b', messages: [{ role: 'user', content: 'hi' }] },
    priority: 7,
    route: { queue: 'infer.qwen3_14b', requested_node: null, reason: 'model qwen3:14b on 1 node', candidates: [] },
    submitted_at: 1000,
    attempts_log: [],
  };
  const job = { id: 'job-1', queueName: 'infer.qwen3_14b', timestamp: 1000, processedOn: 1300, data };
  const result = {
    model: 'qwen3:14b',
    prompt_tokens: 3,
    completion_tokens: 10,
    total_duration_ms: 900,
    load_duration_ms: 200,
    prompt_eval_duration_ms: 50,
    eval_duration_ms: 600,
    node_id: 'gpu-1',
    node_url: 'http://gpu-1',
    simulated: true,
    routing_decision: { queue: 'infer.qwen3_14b', requested_node: null, reason: 'model qwen3:14b on 1 node; warm', candidates: [], selected_node: 'gpu-1', queued_ms: 300, attempts: [] },
  } satisfies InferResult;

  it('a completed job: the decision’s reason and wait, total from submit, first token after queue + load + prompt', () => {
    expect(finishedEntry(job, { state: 'completed', result }, 'gpu-1', 2500)).toEqual({
      at: 2500,
      job_id: 'job-1',
      model: 'qwen3:14b',
      type: 'chat',
      node: 'gpu-1',
      queue: 'infer.qwen3_14b',
      priority: 7,
      outcome: 'completed',
      reason: 'model qwen3:14b on 1 node; warm',
      queued_ms: 300,
      total_ms: 1500,
      ttft_ms: 550,
    });
  });

  it('no time to first token when the backend reported no timings, nor for embeddings', () => {
    const untimed = { ...result, prompt_eval_duration_ms: 0, eval_duration_ms: 0 };
    expect(finishedEntry(job, { state: 'completed', result: untimed }, 'gpu-1', 2500).ttft_ms).toBeUndefined();
    const embed = { ...job, data: { ...data, call: { type: 'embed', model: 'e', input: 'x' } } };
    expect(finishedEntry(embed, { state: 'completed', result }, 'gpu-1', 2500).ttft_ms).toBeUndefined();
  });

  it('a failed job: its error code, the submit-time reason, this node, and the wait before its last attempt', () => {
    const e = finishedEntry(job, { state: 'failed', error: new HydraError(ErrorCode.Timeout, 'too slow') }, 'gpu-2', 5000);
    expect(e).toMatchObject({ node: 'gpu-2', outcome: 'failed', error_code: 'timeout', reason: 'model qwen3:14b on 1 node', queued_ms: 300, total_ms: 4000 });
    expect(e.ttft_ms).toBeUndefined();
  });

  it('cuts long user-supplied strings', () => {
    const long = { ...job, data: { ...data, call: { ...data.call, model: 'x'.repeat(1000) } } };
    expect(finishedEntry(long, { state: 'failed', error: new HydraError(ErrorCode.Cancelled, 'c') }, 'n', 2000).model).toHaveLength(300);
  });

  it('round-trips through JSON, and rejects what is not an entry', () => {
    const e = finishedEntry(job, { state: 'completed', result }, 'gpu-1', 2500);
    expect(parseEntry(JSON.stringify(e))).toEqual(e);
    expect(parseEntry('not json')).toBeNull();
    expect(parseEntry('{"at":"yesterday"}')).toBeNull();
  });
});
