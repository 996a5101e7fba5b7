// Two worker processes with one NODE_ID share one memory budget: reservations are atomic in Redis.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from './support/cluster.js';
import { waitFor } from './support/wait.js';

describe('admission across worker processes sharing a node id', () => {
  let c: TestCluster;
  const models = ['a:7b', 'b:7b', 'c:7b', 'd:7b'];
  beforeAll(async () => {
    c = await startCluster({ WORKER_CONCURRENCY: '4', NUM_CTX: '2048' });
    const sim = await c.sim({ vramGb: 24, models: models.map((name) => ({ name, sizeGb: 9.3 })), tokensPerSecond: 400, loadMsPerGb: 5, parallel: 4 });
    const env = { BACKEND: 'ollama', OLLAMA_URL: sim.url, NODE_ID: 'shared', NODE_VRAM_GB: '24' };
    await Promise.all([c.worker(env), c.worker(env)]);
    await c.waitForNode('shared', (n) => n.healthy);
  });
  afterAll(async () => c?.stop());

  it('never holds more reserved memory than the node has, and never overloads the backend', async () => {
    const node = (await c.nodes()).find((n) => n.id === 'shared');
    const need = node.models[0].need_mb as number;
    // Two of these models fit in 24 GB, three do not: admission has to hold jobs back.
    expect(2 * need).toBeLessThanOrEqual(node.capacity_mb);
    expect(3 * need).toBeGreaterThan(node.capacity_mb);
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      ids.push((await c.post('/v1/jobs', { type: 'generate', model: models[i % models.length], prompt: `job ${i}`, options: { num_predict: 6 } })).body.id);
    }
    const views = await waitFor(async () => {
      const v = await Promise.all(ids.map(async (id) => (await c.get(`/v1/jobs/${id}`)).body));
      return v.every((x) => x.state === 'completed' || x.state === 'failed') ? v : null;
    }, { timeoutMs: 60_000, what: '40 jobs to finish' });
    expect(views.filter((v) => v.state === 'failed').map((v) => v.error)).toEqual([]);
    const peak = await c.ctx.registry.peakReservedMb('shared');
    expect(peak).toBeLessThanOrEqual(node.capacity_mb);
    expect(peak).toBeGreaterThanOrEqual(2 * need); // two models really ran side by side
    expect(c.sims[0]!.state().oom_errors).toBe(0);
    // Both processes took jobs: each logs its own completions.
    const perWorker = c.workers.map((w) => (w.output().match(/"msg":"job completed"/g) ?? []).length);
    expect(perWorker.every((n) => n > 0), `completions per worker: ${perWorker}`).toBe(true);
  });
});
