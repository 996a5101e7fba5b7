// Table-driven tests of the pure scheduling policy: fit estimates, routing at submit, dispatch order, aging.
import { describe, expect, it } from 'vitest';
import type { NodeRecord } from '../core/index.js';
import {
  agedPriority,
  classQueueName,
  completionRate,
  estimateNeedMb,
  estimatedStartMs,
  kvCacheBytes,
  minVramBucketGb,
  orderHeads,
  planRoute,
  RATE_STALE_MS,
  retryAfterS,
  toBullPriority,
  type QueueHead,
  type RecentNode,
} from './index.js';

function node(id: string, o: Partial<NodeRecord> & { models?: [string, number][]; loaded?: string[] } = {}): NodeRecord {
  const vram = o.vram_total_mb ?? 24 * 1024;
  return {
    id,
    url: `http://${id}`,
    backend: 'ollama',
    type: o.type ?? 'gpu',
    healthy: o.healthy ?? true,
    simulated: true,
    host: o.host ?? 'elsewhere',
    vram_total_mb: vram,
    vram_available_mb: vram,
    ram_total_mb: 0,
    ram_available_mb: 0,
    capacity_mb: o.capacity_mb ?? vram - 200,
    buffer_mb: 200,
    models_available: (o.models ?? [['qwen3:14b', 9.3]]).map(([name, gb]) => ({ name, size_mb: gb * 1024, need_mb: Math.ceil(gb * 1024 * 1.05) })),
    models_loaded: (o.loaded ?? []).map((name) => ({ name, size_mb: 1, vram_mb: 1 })),
    slots: 4,
    last_heartbeat: 0,
    ...(o.error ? { error: o.error } : {}),
  };
}

describe('fit estimates', () => {
  it('computes the KV cache like Ollama (2 × layers × kv heads × head dim × ctx × parallel × 2 bytes)', () => {
    // llama3-8b-like: 32 layers, 32 heads, 8 kv heads, width 4096 → head dim 128.
    const arch = { block_count: 32, head_count: 32, head_count_kv: 8, embedding_length: 4096 };
    expect(kvCacheBytes(arch, 4096, 1)).toBe(2 * 32 * 8 * 128 * 4096 * 2); // 512 MiB
    expect(kvCacheBytes(arch, 4096, 2)).toBe(2 * kvCacheBytes(arch, 4096, 1));
    // + the compute graph (attention scratch; no vocabulary known): 4 × 512 × (1 + 4 × 4096 + 4096 × 33) bytes. More in models.test.ts.
    expect(estimateNeedMb({ name: 'x', size_bytes: 4 * 1024 ** 3, arch }, 4096, 1)).toBe(4096 + 512 + Math.ceil((4 * 512 * (1 + 4 * 4096 + 4096 * 33)) / 1024 ** 2));
  });
  it('caps the context at the model’s own context length, and uses weights alone without arch', () => {
    const arch = { block_count: 2, head_count: 4, head_count_kv: 4, embedding_length: 64, context_length: 256 };
    const graph = 4 * 256 * (1 + 4 * 64 + 256 * 5); // batch = min(512, 256)
    expect(estimateNeedMb({ name: 'x', size_bytes: 1024 ** 2, arch }, 8192, 1)).toBe(Math.ceil((1024 ** 2 + kvCacheBytes(arch, 256, 1) + graph) / 1024 ** 2));
    expect(estimateNeedMb({ name: 'x', size_bytes: 10 * 1024 ** 2 }, 4096, 1)).toBe(10);
  });
});

describe('minVramBucketGb', () => {
  // [requested GiB, bucket GiB]: the smallest ladder step at or above the request.
  const table: [number, number][] = [
    [0, 0], [-1, 0], [Number.NaN, 0], [0.1, 4], [4, 4], [4.01, 8], [12, 12], [13, 16], [20, 24], [24, 24], [33, 40], [41, 48],
    [49, 64], [70, 80], [81, 96], [100, 128], [129, 160], [161, 192], [193, 256], [256, 256], [257, 320], [321, 384],
    [400, 448], [449, 512], [513, 640], [100_000, 114_688],
  ];
  it.each(table)('%s GiB → %s GiB', (gb, bucket) => expect(minVramBucketGb(gb)).toBe(bucket));
  it('keeps the number of class queues small whatever callers send', () => {
    const buckets = new Set(Array.from({ length: 100_000 }, (_, i) => minVramBucketGb(i + 0.5)));
    expect(buckets.size).toBeLessThan(60);
  });
});

describe('planRoute', () => {
  const small = node('small', { vram_total_mb: 24 * 1024, models: [['llama3.1:70b', 43], ['qwen3:14b', 9.3]] });
  const big = node('big', { vram_total_mb: 80 * 1024, models: [['llama3.1:70b', 43]] });
  // Nodes that stopped heartbeating a few seconds ago (MODEL_GRACE_MS facts from the registry).
  const gone = (id: string, models: string[], o: Partial<RecentNode> = {}): RecentNode => ({ id, type: 'gpu', vram_total_mb: 24 * 1024, models, age_ms: 4000, ...o });
  const cases: { name: string; req: Parameters<typeof planRoute>[0]; nodes: NodeRecord[]; recent?: RecentNode[]; queue?: string; reason?: RegExp; error?: RegExp }[] = [
    { name: 'restarting only node: queued for the class', req: { model: 'qwen3:14b' }, nodes: [], recent: [gone('solo', ['qwen3:14b'])], queue: 'infer.qwen3_14b', reason: /no live node has model "qwen3:14b"; .*MODEL_GRACE_MS: solo \(4 s ago\); queued until one comes back/ },
    { name: 'restarting node among others without the model', req: { model: 'llama3' }, nodes: [small], recent: [gone('solo', ['llama3:latest'])], queue: 'infer.llama3_latest', reason: /solo/ },
    { name: 'pinned to the restarting node', req: { model: 'qwen3:14b', node_id: 'solo' }, nodes: [], recent: [gone('solo', ['qwen3:14b'])], queue: 'infer.qwen3_14b', reason: /requested node solo is not registered; .*queued until one comes back/ },
    { name: 'no recent node had the model', req: { model: 'qwen3:14b' }, nodes: [], recent: [gone('solo', ['other:1b'])], error: /no inference node is registered/ },
    { name: 'a live node judged by its record, not its past', req: { model: 'llama3.1:70b' }, nodes: [small].map((n) => ({ ...n, models_available: [] })), recent: [gone('small', ['llama3.1:70b'])], error: /no registered node has model/ },
    { name: 'the recent node is below the bucket', req: { model: 'qwen3:14b', min_vram_gb: 30 }, nodes: [], recent: [gone('solo', ['qwen3:14b'])], error: /no inference node is registered/ },
    { name: 'the recent node meets the bucket', req: { model: 'qwen3:14b', min_vram_gb: 30 }, nodes: [], recent: [gone('solo', ['qwen3:14b'], { vram_total_mb: 32 * 1024 })], queue: 'infer.qwen3_14b.min32768mb', reason: /≥ 32 GB VRAM/ },
    { name: 'class queue for a plain request', req: { model: 'qwen3:14b' }, nodes: [small], queue: 'infer.qwen3_14b', reason: /1 qualifying node/ },
    { name: 'llama3 and llama3:latest are one model', req: { model: 'llama3' }, nodes: [node('a', { models: [['llama3:latest', 4]] })], queue: 'infer.llama3_latest' },
    { name: 'min_vram_gb gets its own class', req: { model: 'llama3.1:70b', min_vram_gb: 40 }, nodes: [small, big], queue: 'infer.llama3.1_70b.min40960mb' },
    {
      name: 'min_vram_gb is rounded up to its bucket',
      req: { model: 'llama3.1:70b', min_vram_gb: 41.5 },
      nodes: [small, big],
      queue: 'infer.llama3.1_70b.min49152mb',
      reason: /≥ 48 GB VRAM \(min_vram_gb 41.5 rounded up to its bucket\)/,
    },
    { name: 'a bucket above the node that the exact value would fit', req: { model: 'llama3.1:70b', min_vram_gb: 70 }, nodes: [node('n72', { vram_total_mb: 72 * 1024, models: [['llama3.1:70b', 43]] })], error: /min_vram_gb 70 \(the 80 GB bucket\).*largest: 72.0 GB/ },
    { name: 'min_vram_gb above every node', req: { model: 'llama3.1:70b', min_vram_gb: 100 }, nodes: [small, big], error: /min_vram_gb 100.*largest: 80.0 GB/ },
    { name: '43 GB model with only a 24 GB node', req: { model: 'llama3.1:70b' }, nodes: [small], error: /cannot fit it \(needs 45\.2 GB, has 23\.8 GB usable\)/ },
    { name: 'unknown model', req: { model: 'nope:1b' }, nodes: [small], error: /no registered node has model "nope:1b"; models available: llama3.1:70b, qwen3:14b/ },
    { name: 'no nodes at all', req: { model: 'x' }, nodes: [], error: /no inference node is registered/ },
    { name: 'pinned healthy node', req: { model: 'llama3.1:70b', node_id: 'big' }, nodes: [small, big], queue: 'node.big', reason: /pinned to requested node big/ },
    { name: 'pinned unhealthy node falls back', req: { model: 'llama3.1:70b', node_id: 'big' }, nodes: [node('big2', { vram_total_mb: 80 * 1024, models: [['llama3.1:70b', 43]] }), { ...big, healthy: false, error: 'connection refused' }], queue: 'infer.llama3.1_70b', reason: /requested node big is unhealthy \(connection refused\); fell back/ },
    { name: 'pinned unknown node falls back', req: { model: 'qwen3:14b', node_id: 'ghost' }, nodes: [small], queue: 'infer.qwen3_14b', reason: /ghost is not registered/ },
    { name: 'prefer_local picks a local node', req: { model: 'qwen3:14b', prefer_local: true }, nodes: [small, node('mine', { host: 'me' })], queue: 'node.mine', reason: /prefer_local/ },
    { name: 'prefer_local without a local node', req: { model: 'qwen3:14b', prefer_local: true }, nodes: [small], queue: 'infer.qwen3_14b', reason: /no healthy local node/ },
    { name: 'CPU nodes never satisfy min_vram_gb', req: { model: 'qwen3:14b', min_vram_gb: 1 }, nodes: [node('cpu', { type: 'cpu', vram_total_mb: 0, capacity_mb: 64 * 1024 })], error: /min_vram_gb 1/ },
    { name: 'only unhealthy candidates: queued', req: { model: 'qwen3:14b' }, nodes: [{ ...small, healthy: false }], queue: 'infer.qwen3_14b', reason: /unhealthy right now; queued/ },
  ];
  for (const c of cases) {
    it(c.name, () => {
      if (c.error) {
        expect(() => planRoute(c.req, c.nodes, ['me'], c.recent)).toThrow(c.error);
        return;
      }
      const plan = planRoute(c.req, c.nodes, ['me'], c.recent);
      expect(plan.queue).toBe(c.queue);
      if (c.reason) expect(plan.reason).toMatch(c.reason);
    });
  }
  it('lists candidates healthy and warm first', () => {
    const warm = node('warm', { loaded: ['qwen3:14b'] });
    const plan = planRoute({ model: 'qwen3:14b' }, [node('cold'), { ...node('sick'), healthy: false }, warm], []);
    expect(plan.candidates.map((c) => c.id)).toEqual(['warm', 'cold', 'sick']);
  });
  it('names class queues without ":" (BullMQ forbids it)', () => {
    expect(classQueueName('library/qwen3:14b', 2048)).toBe('infer.library_qwen3_14b.min2048mb');
  });
});

describe('orderHeads', () => {
  const me = node('me', { loaded: ['a:latest'], models: [['a', 1], ['b', 1]] });
  const head = (queue: string, model: string, priority: number, timestamp: number): QueueHead => ({ queue, jobId: queue, model, priority, timestamp });
  it('takes the most urgent priority first, then the oldest', () => {
    const { choices } = orderHeads([head('q1', 'a', toBullPriority(5), 0), head('q2', 'a', toBullPriority(9), 50), head('q3', 'a', toBullPriority(9), 10)], { node: me, others: [], now: 100, localityWaitMs: 0 });
    expect(choices.map((c) => c.head.queue)).toEqual(['q3', 'q2', 'q1']);
  });
  it('holds a cold model back while another node has it warm, for the locality wait only', () => {
    const other = node('other', { loaded: ['b:latest'], models: [['b', 1]] });
    const fresh = orderHeads([head('qb', 'b', 1, 1000)], { node: me, others: [other], now: 1100, localityWaitMs: 500 });
    expect(fresh.choices).toEqual([]);
    expect(fresh.retryInMs).toBe(400);
    const old = orderHeads([head('qb', 'b', 1, 1000)], { node: me, others: [other], now: 1600, localityWaitMs: 500 });
    expect(old.choices[0]?.reason).toMatch(/warm node other did not take it within 500 ms/);
  });
  it('takes a cold model at once when no node has it warm', () => {
    const r = orderHeads([head('qb', 'b', 1, 1000)], { node: me, others: [node('x')], now: 1000, localityWaitMs: 500 });
    expect(r.choices[0]?.warm).toBe(false);
    expect(r.choices[0]?.reason).toMatch(/no node has it loaded/);
  });
});

describe('priorities', () => {
  it('maps 1-10 onto BullMQ 10-1 and never onto 0', () => {
    expect([1, 5, 10].map(toBullPriority)).toEqual([10, 6, 1]);
  });
  it.each([
    [1, 0, 1000, 1],
    [1, 999, 1000, 1],
    [1, 1000, 1000, 2],
    [1, 20_000, 1000, 10],
    [9, 5000, 1000, 10],
  ])('priority %i after %i ms with a %i ms step → %i', (p, waited, step, want) => {
    expect(agedPriority(p, waited, step)).toBe(want);
  });
});

describe('queue estimates', () => {
  const now = 1_000_000_000;
  it('measures the completion rate from recent finishes only', () => {
    expect(completionRate([now - 4000, now - 3000, now - 2000, now - 1000, now], now)).toEqual({ perSecond: 1, sample: 5 });
    expect(completionRate([now - 500, now], now).perSecond).toBe(2);
    // Older than RATE_STALE_MS: they say nothing about now.
    expect(completionRate([now - RATE_STALE_MS - 1, now - RATE_STALE_MS - 2000, now], now)).toEqual({ perSecond: null, sample: 1 });
    expect(completionRate([], now)).toEqual({ perSecond: null, sample: 0 });
    expect(completionRate([now, now], now).perSecond).toBeNull();
  });
  const table: [number, number | null, number | null, number][] = [
    // [position, jobs/s, start in ms from now, Retry-After s]
    [1, 2, 0, 1],
    [5, 2, 2000, 1],
    [3, 0.1, 20_000, 10],
    [10, 0.001, 9_000_000, 60],
    [4, null, null, 5],
  ];
  it.each(table)('position %s at %s jobs/s starts in %s ms, retry after %s s', (position, perSecond, inMs, retry) => {
    const rate = { perSecond, sample: 10 };
    expect(estimatedStartMs(position, rate, now)).toBe(inMs === null ? null : now + inMs);
    expect(retryAfterS(rate)).toBe(retry);
  });
});
