// Measured speed per node × model: completed jobs fold tokens/s, first-token and load times into EWMAs in Redis
// (atomic Lua, the same arithmetic as the pure fold), /v1/nodes shows them, and a waiting job's estimated start uses them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelPerf } from '../libs/core/index.js';
import { PerfStore } from '../libs/registry/index.js';
import { foldSample, type PerfSample } from '../libs/scheduling/index.js';
import { startCluster, type TestCluster } from './support/cluster.js';
import { waitFor } from './support/wait.js';

describe('speed figures in Redis', () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster();
  });
  afterAll(async () => c?.stop());

  it('perf.lua folds samples exactly as foldSample does, and concurrent records lose none', async () => {
    const store = new PerfStore(c.ctx.redis, c.ctx.keys);
    const samples: PerfSample[] = [
      { tokens_per_s: 41.5, ttft_ms: 220, job_ms: 2400, load_ms: 1800 },
      { tokens_per_s: 39, ttft_ms: 180, job_ms: 2600 },
      { tokens_per_s: 44.25, ttft_ms: 95.5, job_ms: 2100 },
      { tokens_per_s: 12, ttft_ms: 900, job_ms: 9000, load_ms: 2500 },
      { tokens_per_s: 40, ttft_ms: 200, job_ms: 2500 },
      { tokens_per_s: 40, ttft_ms: 200, job_ms: 2500 },
      { tokens_per_s: 43, ttft_ms: 150, job_ms: 2300 },
    ];
    let expected: ModelPerf | undefined;
    for (const [i, s] of samples.entries()) {
      expect(await store.record('n1', 'llama3', s, 1000 + i)).toBe(i + 1);
      expected = foldSample(expected, s, 1000 + i);
    }
    const got = (await store.perfOf('n1'))['llama3:latest']!;
    expect(got.samples).toBe(expected!.samples);
    expect(got.load_samples).toBe(2);
    expect(got.updated_at).toBe(1006);
    for (const k of ['tokens_per_s', 'ttft_ms', 'job_ms', 'load_ms'] as const) expect(got[k]).toBeCloseTo(expected![k]!, 9);

    // Many processes of one node finishing at once: every sample counts.
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.record('n2', 'm:8b', { tokens_per_s: 100, ttft_ms: 10, job_ms: 500 }, i)));
    expect((await store.perfOfMany(['n2', 'nobody'])).get('n2')?.['m:8b']).toMatchObject({ samples: 50, tokens_per_s: 100 });
    expect(await store.perfOf('nobody')).toEqual({});
    expect(await c.ctx.redis.pttl(c.ctx.keys.nodePerf('n2'))).toBeGreaterThan(0);
  });
});

describe('speed figures of a running cluster', () => {
  let c: TestCluster;
  // 100 × 8 / 4 = 200 tokens/s for a 4 GB model; a load takes 300 + 4 × 50 = 500 ms.
  const SPEED = 200;
  beforeAll(async () => {
    c = await startCluster({ WORKER_CONCURRENCY: '1' });
    await c.simWorker('gpu1', { vramGb: 24, models: [{ name: 'm:4b', sizeGb: 4 }, { name: 'other:4b', sizeGb: 4 }], tokensPerSecond: 100, loadFixedMs: 300, loadMsPerGb: 50, parallel: 1 });
  });
  afterAll(async () => c?.stop());

  const job = (model: string, prompt: string, tokens: number) => ({ type: 'generate', model, prompt, options: { num_predict: tokens, sim_answer_tokens: tokens } });

  it('records tokens/s, first token and load per model, and /v1/nodes shows them close to the node’s real speed', async () => {
    for (let i = 0; i < 4; i++) expect((await c.post('/v1/jobs', { ...job('m:4b', `speed ${i}`, 40), wait: true })).body.state).toBe('completed');
    const node = await c.waitForNode('gpu1', (n) => n.perf?.['m:4b']?.samples === 4, 10_000);
    const p = node.perf['m:4b'];
    expect(p.tokens_per_s).toBeGreaterThan(SPEED * 0.75);
    expect(p.tokens_per_s).toBeLessThan(SPEED * 1.25);
    // 40 tokens at 200 tokens/s: ~200 ms of decoding after a first token that is a few ms of prompt evaluation.
    expect(p.ttft_ms).toBeGreaterThanOrEqual(0);
    expect(p.ttft_ms).toBeLessThan(500);
    expect(p.job_ms).toBeGreaterThan(150);
    expect(p.job_ms).toBeLessThan(1500);
    // Only the first job loaded the model.
    expect(p.load_samples).toBe(1);
    expect(p.load_ms).toBeGreaterThan(400);
    expect(p.load_ms).toBeLessThan(2500);
    expect(Date.now() - p.updated_at).toBeLessThan(60_000);
    // The registry's view (what the dispatcher reads) carries the same figures.
    const view = (await c.ctx.registry.list(Date.now())).find((n) => n.id === 'gpu1');
    expect(view?.perf?.['m:4b']?.samples).toBe(4);
  });

  it('gives a waiting job an estimated start from the node’s measured speed before its queue has a completion rate', async () => {
    // One completion of this model: its queue has no rate yet (two are needed), but the node's job time is measured.
    expect((await c.post('/v1/jobs', { ...job('other:4b', 'first', 40), wait: true })).body.state).toBe('completed');
    await c.waitForNode('gpu1', (n) => n.perf?.['other:4b']?.samples === 1, 10_000);
    // 600 tokens: ~3 s holding the node's only slot.
    const blocker = (await c.post('/v1/jobs', job('other:4b', 'block', 600))).body.id as string;
    await waitFor(async () => (await c.get(`/v1/jobs/${blocker}`)).body.state === 'active', { what: 'the blocker to start' });
    const waiting: string[] = [];
    for (let i = 0; i < 2; i++) waiting.push((await c.post('/v1/jobs', job('other:4b', `wait ${i}`, 40))).body.id);
    // The API routes from the shared registry snapshot (up to REGISTRY_SNAPSHOT_MAX_AGE_MS old, plus its own 250 ms
    // cache): the first figure drops the snapshot, but a list read just before that may serve a moment longer.
    const asked = Date.now();
    let views: any[] = [];
    await waitFor(
      async () => {
        views = await Promise.all(waiting.map(async (id) => (await c.get(`/v1/jobs/${id}`)).body));
        return views.every((v) => v.estimated_start);
      },
      { timeoutMs: 1500, what: 'estimated starts in the waiting jobs’ views' },
    );
    expect(views.map((v) => [v.state, v.queue_position])).toEqual([['waiting', 1], ['waiting', 2]]);
    const [first, second] = views.map((v) => Date.parse(v.estimated_start));
    // The busy node frees its slot in about half a measured job; the second waits one measured job (~200 ms) more.
    expect(first).toBeGreaterThan(asked - 1000);
    expect(second! - first!).toBeGreaterThan(50);
    expect(second! - first!).toBeLessThan(2000);
    await c.del(`/v1/jobs/${blocker}`);
    await waitFor(async () => (await Promise.all(waiting.map(async (id) => (await c.get(`/v1/jobs/${id}`)).body.state))).every((s) => s === 'completed'), {
      timeoutMs: 30_000,
      what: 'the waiting jobs to complete',
    });
  });
});
