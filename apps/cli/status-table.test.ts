// The `hydra status` table: one row per loaded model, CPU nodes labelled RAM, waits as people read them, older APIs.
import { describe, expect, it } from 'vitest';
import { renderStatus, type StatusSnapshot } from './status-table.js';

const NOW = Date.parse('2026-01-02T03:04:05Z');

describe('renderStatus', () => {
  it('lists each loaded model of a node on its own row, with its speed when measured', () => {
    const s: StatusSnapshot = {
      nodes: [
        {
          id: 'gpu-1',
          type: 'gpu',
          backend: 'ollama',
          healthy: true,
          vram_total_mb: 24576,
          vram_available_mb: 12288,
          models_loaded: ['qwen3:14b', 'llama3.2:3b'],
          active_jobs: 2,
          slots: 4,
          perf: { 'qwen3:14b': { tokens_per_s: 41.26 } },
        },
        { id: 'cpu-1', type: 'cpu', backend: 'llamacpp', healthy: false, vram_total_mb: 0, ram_total_mb: 16384, ram_available_mb: 4096, models_loaded: [], active_jobs: 0, slots: 1, simulated: true },
      ],
      queues: {
        'infer.a': { waiting: 0, active: 0, delayed: 0, failed: 1 },
        'infer.b': { waiting: 3, active: 1, delayed: 0, failed: 0, by_priority: [{ priority: 9, count: 1 }, { priority: 5, count: 2 }], oldest_waiting_ms: 185_000 },
      },
    };
    const lines = renderStatus(s, 'http://h:8080', NOW).split('\n');
    expect(lines[0]).toMatch(/^hydra http:\/\/h:8080 {3}2 nodes \(1 healthy, 1 simulated\) {3}3 waiting, 1 active {3}\d\d:\d\d:\d\d$/);
    const body = lines.slice(1).join('\n');
    expect(body).toMatch(/\ncpu-1\s+down \(sim\)\s+llamacpp\s+RAM 12\.0\/16\.0\s+0\/1\s+-\s+-\n/);
    expect(body).toMatch(/\ngpu-1\s+healthy\s+ollama\s+12\.0\/24\.0\s+2\/4\s+qwen3:14b\s+41\.3\n\s+llama3\.2:3b\s+-\n/);
    // Busiest queue first; an API without per-priority counts or ages shows dashes.
    const q = lines.filter((l) => l.startsWith('infer.'));
    expect(q[0]).toMatch(/^infer\.b\s+3\s+p9:1 p5:2\s+3m05s\s+1\s+0\s+0$/);
    expect(q[1]).toMatch(/^infer\.a\s+0\s+-\s+-\s+0\s+0\s+1$/);
  });

  it('says what to do when there is nothing to show', () => {
    const out = renderStatus({ nodes: [], queues: {} }, 'http://h:8080', NOW);
    expect(out).toContain('no nodes registered');
    expect(out).toContain('no queues yet');
  });

  it('adds the results history per model over the last days, busiest first, or says why there is none', () => {
    const base: StatusSnapshot = { nodes: [], queues: {} };
    const s: StatusSnapshot = {
      ...base,
      history: {
        days: 7,
        groups: [
          { key: 'small:1b', jobs: 3, completed: 3, failed: 0, cancelled: 0, completion_tokens: 120, p50_total_ms: 850, p95_total_ms: 1900 },
          { key: 'big:70b', jobs: 40, completed: 37, failed: 2, cancelled: 1, completion_tokens: 9000, p50_total_ms: 42_000, p95_total_ms: null },
        ],
      },
    };
    const lines = renderStatus(s, 'http://h:8080', NOW).split('\n');
    const at = lines.indexOf('HISTORY, LAST 7 DAYS (results history)');
    expect(at).toBeGreaterThan(0);
    expect(lines[at + 1]).toMatch(/^MODEL\s+JOBS\s+COMPLETED\s+FAILED\s+CANCELLED\s+TOKENS OUT\s+P50\s+P95$/);
    expect(lines[at + 2]).toMatch(/^big:70b\s+40\s+37\s+2\s+1\s+9000\s+42s\s+-$/);
    expect(lines[at + 3]).toMatch(/^small:1b\s+3\s+3\s+0\s+0\s+120\s+850ms\s+1s$/);
    expect(renderStatus({ ...base, history: { days: 1, groups: [] } }, 'u', NOW)).toContain('\nHISTORY, LAST 1 DAY: no finished jobs');
    expect(renderStatus({ ...base, history: { days: 7, groups: null, note: 'off (MEMORY_URL=off)' } }, 'u', NOW)).toContain('\nHISTORY, LAST 7 DAYS: off (MEMORY_URL=off)');
    expect(renderStatus(base, 'u', NOW)).not.toContain('HISTORY');
  });
});
