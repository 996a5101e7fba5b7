// The dashboard state as pure data: node status and order (worst first), memory, per-model slots, queue bands, links.
import { describe, expect, it } from 'vitest';
import type { LatencySummary } from '../../../libs/activity/index.js';
import type { NodeView } from '../../../libs/registry/index.js';
import { buildState, nodeStatus, type QueueCounts } from './state.js';

const NOW = 1_700_000_000_000;
const noLatency: LatencySummary = { window_ms: 300_000, covered_ms: 0, truncated: false, models: [] };

function node(id: string, over: Partial<NodeView> = {}): NodeView {
  return {
    id,
    url: `http://${id}:11434`,
    backend: 'ollama',
    type: 'gpu',
    healthy: true,
    simulated: true,
    host: id,
    vram_total_mb: 24_576,
    vram_available_mb: 20_000,
    ram_total_mb: 65_536,
    ram_available_mb: 60_000,
    capacity_mb: 24_376,
    buffer_mb: 200,
    models_available: [{ name: 'qwen3:14b', size_mb: 9000, need_mb: 9500 }],
    models_loaded: [],
    slots: 4,
    parallel: 2,
    last_heartbeat: NOW - 500,
    active_jobs: 0,
    reserved_mb: 0,
    inflight_by_model: {},
    processes: 1,
    ...over,
  };
}

const queue = (over: Partial<QueueCounts> & Pick<QueueCounts, 'info'>): QueueCounts => ({ bands: {}, active: 0, delayed: 0, failed: 0, completed: 0, waiting_children: 0, ...over });

describe('nodeStatus', () => {
  it.each([
    { n: { healthy: false, active_jobs: 0, slots: 4 }, want: 'down' },
    { n: { healthy: true, breaker: { state: 'open', recent_failures: 3, open_until: 1 }, active_jobs: 0, slots: 4 }, want: 'breaker_open' },
    { n: { healthy: true, breaker: { state: 'half_open', recent_failures: 3, open_until: null }, active_jobs: 1, slots: 4 }, want: 'probing' },
    { n: { healthy: true, active_jobs: 4, slots: 4 }, want: 'full' },
    { n: { healthy: true, active_jobs: 1, slots: 4 }, want: 'busy' },
    { n: { healthy: true, active_jobs: 0, slots: 4 }, want: 'idle' },
  ] as const)('$want', ({ n, want }) => {
    expect(nodeStatus(n as Parameters<typeof nodeStatus>[0])).toBe(want);
  });
});

describe('buildState', () => {
  it('orders nodes worst first, then by id, and counts the cluster', () => {
    const s = buildState(
      {
        nodes: [node('a'), node('b', { active_jobs: 1, reserved_mb: 9500 }), node('c', { healthy: false, error: 'connection refused' }), node('d', { breaker: { state: 'open', recent_failures: 5, open_until: NOW + 1000 } })],
        inUse: new Map(),
        queues: [],
        decisions: [],
        latency: noLatency,
      },
      NOW,
      '/admin/queues',
    );
    expect(s.nodes.map((n) => [n.id, n.status])).toEqual([
      ['c', 'down'],
      ['d', 'breaker_open'],
      ['b', 'busy'],
      ['a', 'idle'],
    ]);
    expect(s.cluster).toMatchObject({ nodes: 4, healthy: 3, simulated: 4, gpu: 4, active_jobs: 1, slots: 16, reserved_mb: 9500, vram_total_mb: 4 * 24_576 });
    expect(s.nodes[0]).toMatchObject({ error: 'connection refused', heartbeat_age_ms: 500 });
  });

  it('shows memory as VRAM on a GPU node and RAM on a CPU node', () => {
    const s = buildState({ nodes: [node('g', { reserved_mb: 100 }), node('c', { type: 'cpu', vram_total_mb: 0, vram_available_mb: 0, capacity_mb: 30_000 })], inUse: new Map(), queues: [], decisions: [], latency: noLatency }, NOW, '/b');
    const [c, g] = s.nodes;
    expect(g!.memory).toEqual({ kind: 'vram', total_mb: 24_576, free_mb: 20_000, capacity_mb: 24_376, reserved_mb: 100 });
    expect(c!.memory).toEqual({ kind: 'ram', total_mb: 65_536, free_mb: 60_000, capacity_mb: 30_000, reserved_mb: 0 });
  });

  it('lists loaded models with their slots in use, a model still loading, and perf when the node reports it', () => {
    // perf is keyed by canonical name (small → small:latest); a figure that is not a number is not shown.
    const n = node('g', {
      models_loaded: [{ name: 'small', size_mb: 2000, vram_mb: 2000 }, { name: 'qwen3:14b', size_mb: 9000, vram_mb: 9000 }],
      perf: {
        'qwen3:14b': { tokens_per_s: 41.5, ttft_ms: 220, job_ms: 3000, samples: 12, updated_at: NOW },
        'small:latest': { tokens_per_s: 300, ttft_ms: 10, job_ms: 100, load_ms: 800, samples: 1, updated_at: NOW },
        'big:70b': { tokens_per_s: Number.NaN, ttft_ms: 10, job_ms: 100, samples: 1, updated_at: NOW },
      },
    });
    const inUse = new Map([['g', new Map([['qwen3:14b', 2], ['big:70b', 1]])]]);
    const [g] = buildState({ nodes: [n], inUse, queues: [], decisions: [], latency: noLatency }, NOW, '/b').nodes;
    expect(g!.models_loaded).toEqual([
      { name: 'qwen3:14b', loaded: true, vram_mb: 9000, size_mb: 9000, in_use: 2, slots: 2, perf: { tokens_per_s: 41.5, ttft_ms: 220, samples: 12 } },
      { name: 'big:70b', loaded: false, vram_mb: 0, size_mb: 0, in_use: 1, slots: 2 },
      { name: 'small', loaded: true, vram_mb: 2000, size_mb: 2000, in_use: 0, slots: 2, perf: { tokens_per_s: 300, ttft_ms: 10, load_ms: 800, samples: 1 } },
    ]);
  });

  it('gives queue depth per Hydra priority, busiest queue first, with Bull Board links', () => {
    const s = buildState(
      {
        nodes: [],
        inUse: new Map(),
        queues: [
          queue({ info: { kind: 'node', name: 'node.a', node: 'a' } }),
          // BullMQ priority 1 = Hydra 10, 6 = Hydra 5; 0 is the unprioritized wait list.
          queue({ info: { kind: 'class', name: 'infer.qwen3_14b', model: 'qwen3:14b', min_vram_mb: 0 }, bands: { 0: 0, 1: 2, 6: 5, 10: 0 }, active: 1 }),
        ],
        decisions: [{ at: NOW, job_id: 'id/1', model: 'm', type: 'chat', node: 'a', queue: 'infer.qwen3_14b', priority: 5, outcome: 'completed', reason: 'r', queued_ms: 1, total_ms: 2 }],
        latency: noLatency,
      },
      NOW,
      '/admin/queues',
    );
    expect(s.queues.map((q) => q.name)).toEqual(['infer.qwen3_14b', 'node.a']);
    expect(s.queues[0]).toMatchObject({ waiting: 7, by_priority: [{ priority: 10, count: 2 }, { priority: 5, count: 5 }], active: 1, model: 'qwen3:14b', board_url: '/admin/queues/queue/infer.qwen3_14b' });
    expect(s.cluster.waiting).toBe(7);
    expect(s.decisions[0]!.board_url).toBe('/admin/queues/queue/infer.qwen3_14b/id%2F1');
  });
});
