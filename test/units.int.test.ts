// One unit for GPU memory: the simulated node's "24 GB" (--vram-gb, model sizeGb) and the worker's NODE_VRAM_GB=24 are
// both GiB, so Hydra admits exactly what fits in the node: nothing the backend then refuses, no refusal of what fits.
import { afterEach, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from './support/cluster.js';
import { waitFor } from './support/wait.js';

let c: TestCluster | undefined;
afterEach(async () => {
  await c?.stop();
  c = undefined;
});

const runAll = async (cl: TestCluster, models: string[]) => {
  const ids: string[] = [];
  for (const [i, model] of models.entries()) ids.push((await cl.post('/v1/jobs', { type: 'generate', model, prompt: `unit ${i}`, options: { num_predict: 150, sim_answer_tokens: 150 } })).body.id);
  return waitFor(async () => {
    const v = await Promise.all(ids.map(async (id) => (await cl.get(`/v1/jobs/${id}`)).body));
    return v.every((x) => x.state === 'completed' || x.state === 'failed') ? v : null;
  }, { timeoutMs: 30_000, what: `${models.length} jobs to end` });
};

describe('GPU memory units', () => {
  it('a simulated 24 GB node with NODE_VRAM_GB=24 runs side by side what fits, and never gets what does not', async () => {
    // A small context keeps the KV cache small, so the weights decide what fits.
    c = await startCluster({ WORKER_CONCURRENCY: '4', NUM_CTX: '512' });
    // 2 × 11.3 = 22.6 GiB fits in 24 GiB with each load's KV cache (4 slots × 512: 320 MiB) and compute graph (261 MiB);
    // 2 × 12.3 = 24.6 GiB does not (but 24.6e9 bytes would pass for 22.9 GiB of 24).
    const sizes = { 'fit:a': 11.3, 'fit:b': 11.3, 'big:a': 12.3, 'big:b': 12.3 };
    const sim = await c.sim({ vramGb: 24, models: Object.entries(sizes).map(([name, sizeGb]) => ({ name, sizeGb })), tokensPerSecond: 100, loadMsPerGb: 0, parallel: 4 });
    await c.worker({ BACKEND: 'ollama', OLLAMA_URL: sim.url, NODE_ID: 'units', NODE_VRAM_GB: '24' });
    const node = await c.waitForNode('units', (n) => n.healthy && n.models.length === 4, 20_000);
    // The worker counts the node as 24 GiB and the sim's sizes in the same unit.
    expect(node.vram_total_mb).toBe(24 * 1024);
    const need = (m: string) => node.models.find((x: any) => x.name === m).need_mb as number;
    expect(need('fit:a')).toBeGreaterThanOrEqual(Math.round(11.3 * 1024));
    expect(2 * need('fit:a')).toBeLessThanOrEqual(node.capacity_mb);
    expect(2 * need('big:a')).toBeGreaterThan(node.capacity_mb);

    const fit = await runAll(c, ['fit:a', 'fit:b']);
    expect(fit.map((v) => v.state)).toEqual(['completed', 'completed']);
    // Not refused what fits: the two models were admitted side by side.
    expect(await c.ctx.registry.peakReservedMb('units')).toBeGreaterThanOrEqual(need('fit:a') + need('fit:b'));

    const big = await runAll(c, ['big:a', 'big:b', 'big:a', 'big:b']);
    expect(big.filter((v) => v.state === 'failed').map((v) => v.error)).toEqual([]);
    expect(sim.state().oom_errors).toBe(0); // admission held the second big model back: the sim never ran out
    expect(await c.ctx.registry.peakReservedMb('units')).toBeLessThanOrEqual(node.capacity_mb);
  }, 60_000);
});
