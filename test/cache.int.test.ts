// The L1 cache end to end: hits answer without a job, only deterministic requests by default, cache: true/false,
// workflow steps share it, hit/miss counts in stats, TTL and size cap, a separate cache Redis.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulatedAnswer } from '../apps/node-sim/sim-server.js';
import { startCluster, type TestCluster } from './support/cluster.js';
import { waitFor } from './support/wait.js';

const gen = (prompt: string, extra: Record<string, unknown> = {}) => ({ type: 'generate', model: 'm', prompt, wait: true, ...extra });
/** The worker stores an answer just after it publishes the end, so a repeat sent at once may still miss: wait for the store. */
const stores = async (c: TestCluster): Promise<number> => (await c.get('/v1/cluster/stats')).body.cache.stores;
async function postStored(c: TestCluster, body: unknown) {
  const before = await stores(c);
  const r = await c.post('/v1/jobs', body);
  await waitFor(async () => (await stores(c)) > before, { what: 'the answer to be stored in the cache' });
  return r;
}

describe('L1 cache', () => {
  let c: TestCluster;
  const served = () => c.sims[0]!.state().served;
  const completedJobs = async () => (await c.ctx.producer.queue('infer.m_latest').getJobCounts('completed')).completed ?? 0;
  beforeAll(async () => {
    c = await startCluster();
    await c.simWorker('gpu', { vramGb: 24, models: [{ name: 'm', sizeGb: 1 }], tokensPerSecond: 2000, loadMsPerGb: 0 });
  }, 60_000);
  afterAll(async () => c?.stop());

  it('answers a repeated deterministic request from the cache without a job; another temperature is another request', async () => {
    const first = await postStored(c, gen('cache me', { options: { temperature: 0, top_k: 5 } }));
    expect(first.status).toBe(200);
    expect(first.body.cached).toBeUndefined();
    const [s0, j0] = [served(), await completedJobs()];

    // Same request, options in another order: one normalized request, so a hit — no job, no inference.
    const again = await c.post('/v1/jobs', gen('cache me', { options: { top_k: 5, temperature: 0 }, priority: 9 }));
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ state: 'completed', cached: true, id: first.body.id, queue: null, cache: { hit: true, source_job_id: first.body.id } });
    expect(again.body.result).toMatchObject({ response: first.body.result.response, cached: true, node_id: 'gpu' });
    expect(again.body.cache.key).toMatch(/^[0-9a-f]{64}$/);
    expect(served()).toBe(s0);
    expect(await completedJobs()).toBe(j0);

    // A different temperature (seeded, so cacheable) is a different request: it runs, and is cached on its own.
    const warmer = await postStored(c, gen('cache me', { options: { temperature: 0.7, seed: 1, top_k: 5 } }));
    expect(warmer.status).toBe(200);
    expect(warmer.body.cached).toBeUndefined();
    expect(warmer.body.id).not.toBe(first.body.id);
    expect(served()).toBe(s0 + 1);
    const warmerAgain = await c.post('/v1/jobs', gen('cache me', { options: { temperature: 0.7, seed: 1, top_k: 5 } }));
    expect(warmerAgain.body).toMatchObject({ cached: true, id: warmer.body.id });
    const cold = await c.post('/v1/jobs', gen('cache me', { options: { temperature: 0, top_k: 5 } }));
    expect(cold.body).toMatchObject({ cached: true, id: first.body.id });
    // Another model option (num_predict) or the system prompt also make another request.
    expect((await c.post('/v1/jobs', gen('cache me', { options: { temperature: 0, top_k: 5, num_predict: 3 } }))).body.cached).toBeUndefined();
    expect((await c.post('/v1/jobs', gen('cache me', { system: 'be brief', options: { temperature: 0, top_k: 5 } }))).body.cached).toBeUndefined();
  });

  it('caches only deterministic requests unless asked: cache: true forces, cache: false bypasses', async () => {
    const s0 = served();
    for (let i = 0; i < 2; i++) expect((await c.post('/v1/jobs', gen('sampled'))).body.cached).toBeUndefined();
    expect(served()).toBe(s0 + 2);
    expect((await postStored(c, gen('sampled', { cache: true }))).body.cached).toBeUndefined();
    expect((await c.post('/v1/jobs', gen('sampled', { cache: true }))).body.cached).toBe(true);
    expect((await c.post('/v1/jobs', gen('sampled'))).body.cached).toBeUndefined(); // still not by default
    await postStored(c, gen('greedy', { options: { temperature: 0 } }));
    const bypass = await c.post('/v1/jobs', gen('greedy', { options: { temperature: 0 }, cache: false }));
    expect(bypass.body.cached).toBeUndefined();
    expect(served()).toBe(s0 + 6); // 2 sampled, 1 forced miss (its repeat hit), 1 sampled, greedy, greedy bypassing
    const emb = { type: 'embed', model: 'm', input: ['x', 'y'], wait: true };
    await postStored(c, emb);
    expect((await c.post('/v1/jobs', emb)).body).toMatchObject({ cached: true, result: { embeddings: [expect.any(Array), expect.any(Array)] } });
    expect((await c.post('/v1/jobs', { ...emb, cache: 'yes' })).body.error.message).toMatch(/cache must be true, false or "semantic"/);
  });

  it('serves workflow steps from the same cache, and counts hits and misses in /v1/cluster/stats', async () => {
    const before = (await c.get('/v1/cluster/stats')).body.cache;
    const single = await postStored(c, gen('shared step', { options: { temperature: 0 } }));
    const s0 = served();
    const wf = await c.post('/v1/workflows', {
      steps: [
        { id: 'same', model: 'm', prompt: 'shared step', options: { temperature: 0 } },
        { id: 'next', model: 'm', prompt: 'after {{steps.same.output}}', depends_on: ['same'], options: { temperature: 0 } },
      ],
      wait: true,
    });
    expect(wf.status, JSON.stringify(wf.body)).toBe(200);
    const same = wf.body.steps.find((s: any) => s.id === 'same');
    expect(same).toMatchObject({ state: 'completed', cached: true, job_id: single.body.id, output: single.body.result.response });
    expect(wf.body.steps[1]).toMatchObject({ state: 'completed', cached: false, output: simulatedAnswer({ model: 'm', prompt: `after ${single.body.result.response}` }) });
    expect(served()).toBe(s0 + 1);
    // The second step's answer was stored by the worker: a job with the same call is now a hit.
    await waitFor(async () => (await stores(c)) - before.stores >= 2, { what: 'the step answer to be stored' });
    expect((await c.post('/v1/jobs', gen(`after ${single.body.result.response}`, { options: { temperature: 0 } }))).body.cached).toBe(true);
    const after = (await c.get('/v1/cluster/stats')).body.cache;
    expect(after.hits - before.hits).toBe(2); // the step and the last job
    expect(after.misses - before.misses).toBe(2); // the first job and the second step
    expect(after.stores - before.stores).toBe(2);
    expect(after.hit_ratio).toBeGreaterThan(0);
  });
});

describe('L1 cache limits, in a separate Redis', () => {
  let c: TestCluster;
  let cacheDb: Redis;
  beforeAll(async () => {
    const base = (await import('vitest')).inject('redisUrl');
    // Another database of the test Redis stands in for a separate LRU instance: a different URL, a different keyspace.
    c = await startCluster({ CACHE_REDIS_URL: `${base}/3`, CACHE_TTL_S: '1', CACHE_MAX_ENTRY_BYTES: '3000' });
    cacheDb = new Redis(`${base}/3`);
    await c.simWorker('gpu', { vramGb: 24, models: [{ name: 'm', sizeGb: 1 }], tokensPerSecond: 4000, loadMsPerGb: 0 });
  }, 60_000);
  afterAll(async () => {
    cacheDb?.disconnect();
    await c?.stop();
  });

  it('stores entries in CACHE_REDIS_URL with CACHE_TTL_S, and never answers larger than CACHE_MAX_ENTRY_BYTES', async () => {
    const small = await postStored(c, gen('small', { options: { temperature: 0 } }));
    const keys = await waitFor(async () => {
      const k = await cacheDb.keys(`${c.prefix}:cache:*`);
      return k.length === 1 ? k : null;
    }, { what: 'the entry in the cache database' });
    expect(await c.ctx.redis.keys(`${c.prefix}:cache:*`)).toEqual([]); // nothing in the queue Redis
    expect(await cacheDb.pttl(keys[0]!)).toBeLessThanOrEqual(1000);
    expect((await c.post('/v1/jobs', gen('small', { options: { temperature: 0 } }))).body).toMatchObject({ cached: true, id: small.body.id });
    await waitFor(async () => (await cacheDb.exists(keys[0]!)) === 0, { what: 'the entry to expire', timeoutMs: 5000 });
    expect((await c.post('/v1/jobs', gen('small', { options: { temperature: 0 } }))).body.cached).toBeUndefined();

    const big = gen('big', { options: { temperature: 0, sim_answer_tokens: 600 } }); // ~4 KB of text
    const r1 = await c.post('/v1/jobs', big);
    expect(r1.body.result.response.length).toBeGreaterThan(3000);
    await waitFor(async () => (await c.get('/v1/cluster/stats')).body.cache.too_large >= 1, { what: 'the too-large count' });
    expect((await c.post('/v1/jobs', big)).body.cached).toBeUndefined();
  });
});
