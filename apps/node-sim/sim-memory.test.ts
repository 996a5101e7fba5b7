// The simulated node's memory over real HTTP: KV cache per slot from num_ctx and the cache type, reloads on another num_ctx, queue-then-load with Ollama's max-queue 503, clients leaving the queue, CPU offload.
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../test/support/wait.js';
import { getJson, postJson, send, startSim } from './sim-test-support.js';
import type { SimNode } from './sim-server.js';

const GiB = 1024 ** 3;
const M8 = { name: 'm:8b', sizeGb: 8 };
const EMB = { name: 'emb', sizeGb: 0.5, embeddingLength: 768 };

/** /api/ps `size` recomputed from what /api/show says: weights + KV for num_ctx × slots (× bytes per element) + graph. */
async function expectedSize(n: SimNode, model: string, sizeGb: number, numCtx: number, slots: number, bytesPerElement = 2): Promise<number> {
  const info = (await postJson(n, '/api/show', { model })).model_info;
  const arch = info['general.architecture'];
  const get = (k: string): number => info[`${arch}.${k}`];
  const tokens = numCtx * slots;
  const kv = get('block_count') * get('attention.head_count_kv') * (get('attention.key_length') + get('attention.value_length')) * tokens * bytesPerElement;
  const batch = Math.min(512, numCtx);
  const width = get('embedding_length');
  const graph = Math.max(4 * batch * (1 + 4 * width + tokens * (1 + get('attention.head_count'))), 4 * batch * (width + get('vocab_size')));
  return sizeGb * GiB + Math.ceil(kv) + graph;
}

/** Starts a long streamed generation that holds its model busy until `stop()`. */
async function hold(n: SimNode, model: string, options: Record<string, unknown> = {}): Promise<{ stop: () => void }> {
  const ac = new AbortController();
  const res = await send(n, 'POST', '/api/generate', { model, prompt: 'x', options: { sim_answer_tokens: 100_000, ...options } }, { signal: ac.signal });
  expect(res.status).toBe(200);
  return { stop: () => ac.abort() };
}

/** A short non-streamed generation, answered later: status and body. */
const later = (n: SimNode, body: Record<string, unknown>, init: RequestInit = {}): Promise<{ status: number; body: any }> =>
  send(n, 'POST', '/api/generate', { prompt: 'x', stream: false, ...body, options: { num_predict: 1, ...(body.options as object) } }, init).then(async (r) => ({ status: r.status, body: await r.json() }));

describe('KV cache per slot', () => {
  it("sizes a load from the request's num_ctx, the slots and the KV cache type, and reloads for another num_ctx once idle", async () => {
    const n = await startSim({ models: [M8, EMB] });
    await postJson(n, '/api/generate', { model: 'm:8b', prompt: 'x', stream: false, options: { num_ctx: 2048 } });
    let ps = (await getJson(n, '/api/ps')).models[0];
    expect(ps).toMatchObject({ context_length: 2048, size: await expectedSize(n, 'm:8b', 8, 2048, 4) });
    expect(ps.size_vram).toBe(ps.size);
    // Another num_ctx: the idle model is unloaded and loaded again with it, as Ollama does.
    await postJson(n, '/api/generate', { model: 'm:8b', prompt: 'x', stream: false });
    ps = (await getJson(n, '/api/ps')).models[0];
    expect(ps).toMatchObject({ context_length: 4096, size: await expectedSize(n, 'm:8b', 8, 4096, 4) });
    expect(n.state()).toMatchObject({ loads: 2, reloads: 1, evictions: 0, vram_used_bytes: ps.size });
    // The same context again: no reload.
    await postJson(n, '/api/generate', { model: 'm:8b', prompt: 'y', stream: false, options: { num_ctx: 4096 } });
    expect(n.state()).toMatchObject({ loads: 2, reloads: 1 });
    // An embedding model gets one slot (Ollama loads them with parallel 1).
    await postJson(n, '/api/embed', { model: 'emb', input: 'x' });
    expect(n.state().loaded.find((l) => l.name === 'emb')).toMatchObject({ parallel: 1, num_ctx: 4096 });
    expect(n.state().loaded.find((l) => l.name === 'm:8b')).toMatchObject({ parallel: 4 });
  });

  it('uses the node defaults for num_ctx and slots, and q8_0 / q4_0 shrink the KV cache to 34 / 18 bytes per 32 elements', async () => {
    for (const [kvCacheType, bytes] of [['q8_0', 34 / 32], ['q4_0', 18 / 32]] as const) {
      const n = await startSim({ models: [M8], numCtx: 8192, parallel: 2, kvCacheType });
      await postJson(n, '/api/generate', { model: 'm:8b', prompt: 'x', stream: false });
      expect((await getJson(n, '/api/ps')).models[0]).toMatchObject({ context_length: 8192, size: await expectedSize(n, 'm:8b', 8, 8192, 2, bytes) });
    }
  });

  it('serves requests with the loaded context at once while one with another num_ctx waits for the model to go idle', async () => {
    const n = await startSim({ models: [M8], fast: false, tokensPerSecond: 50, loadFixedMs: 0, loadMsPerGb: 0 });
    const busy = await hold(n, 'm:8b');
    const other = later(n, { model: 'm:8b', options: { num_ctx: 2048 } });
    await waitFor(() => n.state().queued_for_load === 1, { what: 'the num_ctx 2048 request to wait' });
    // The loaded model keeps serving its own context meanwhile (Ollama uses a loaded runner without queueing).
    expect(await later(n, { model: 'm:8b' })).toMatchObject({ status: 200, body: { done: true } });
    expect(n.state()).toMatchObject({ queued_for_load: 1, reloads: 0 });
    busy.stop();
    expect(await other).toMatchObject({ status: 200, body: { done: true } });
    expect(n.state()).toMatchObject({ reloads: 1, loads: 2, loaded: [expect.objectContaining({ num_ctx: 2048 })] });
  });
});

describe('queue-then-load', () => {
  // 10 GiB holds "seven" or "a" (7 or 4 GiB of weights + ~0.3 GiB of cache and graph at 256 tokens × 4), not both.
  const node = { vramGb: 10, models: [{ name: 'seven', sizeGb: 7 }, { name: 'a', sizeGb: 4 }], numCtx: 256, fast: false, tokensPerSecond: 50, loadFixedMs: 0, loadMsPerGb: 0 };

  it("holds at most max-queue requests behind the one being placed, answers Ollama's 503 past that, and drops a client that leaves", async () => {
    const n = await startSim({ ...node, maxQueue: 1 });
    const busy = await hold(n, 'seven');
    const first = later(n, { model: 'a' });
    await waitFor(() => n.state().queued_for_load === 1, { what: 'the first request to wait for memory' });
    const leaving = new AbortController();
    const second = later(n, { model: 'a' }, { signal: leaving.signal }).catch((e: unknown) => e);
    await waitFor(() => n.state().queued_for_load === 2, { what: 'the second request to queue behind it' });
    const third = await later(n, { model: 'a' });
    expect(third).toEqual({ status: 503, body: { error: 'server busy, please try again.  maximum pending requests exceeded' } });
    expect(n.state()).toMatchObject({ queue_full: 1, oom_errors: 0 });
    // A client that goes away while waiting leaves the queue (and counts as aborted).
    leaving.abort();
    expect(await second).toBeInstanceOf(Error);
    await waitFor(() => n.state().queued_for_load === 1 && n.state().aborted === 1, { what: 'the leaving client to leave the queue' });
    busy.stop();
    expect(await first).toMatchObject({ status: 200, body: { done: true } });
    expect(n.state()).toMatchObject({ queued_for_load: 0, evictions: 1, loads: 2, oom_errors: 0, loaded: [expect.objectContaining({ name: 'a' })] });
  });

  it('places waiting requests in arrival order: a later one for a model that would fit waits behind the head', async () => {
    const n = await startSim({ ...node, models: [...node.models, { name: 'tiny', sizeGb: 1 }] });
    const busy = await hold(n, 'seven');
    const head = later(n, { model: 'a' });
    await waitFor(() => n.state().queued_for_load === 1, { what: '"a" to wait' });
    // "tiny" (1.2 GiB) would fit beside "seven" now, but Ollama's scheduler places one pending request at a time.
    const behind = later(n, { model: 'tiny' });
    await waitFor(() => n.state().queued_for_load === 2, { what: '"tiny" to queue behind "a"' });
    expect(n.state().loaded.map((l) => l.name)).toEqual(['seven']);
    busy.stop();
    expect((await head).status).toBe(200);
    expect((await behind).status).toBe(200);
    expect(n.state()).toMatchObject({ loads: 3, evictions: 1, queued_for_load: 0 });
  });
});

describe('CPU offload', () => {
  it('loads a model bigger than the VRAM partly in RAM, counts it, and loads it only on an empty node', async () => {
    const n = await startSim({ vramGb: 8, ramGb: 64, models: [{ name: 'big', sizeGb: 10 }, { name: 'a', sizeGb: 4 }], numCtx: 256, fast: false, tokensPerSecond: 50, loadFixedMs: 0, loadMsPerGb: 0 });
    const busy = await hold(n, 'a');
    const big = later(n, { model: 'big' });
    // An offloaded model takes the whole VRAM: it waits for "a" to finish, as Ollama loads a partial offload alone.
    await waitFor(() => n.state().queued_for_load === 1, { what: '"big" to wait for an empty node' });
    busy.stop();
    expect(await big).toMatchObject({ status: 200, body: { done: true } });
    const ps = (await getJson(n, '/api/ps')).models;
    expect(ps).toHaveLength(1);
    expect(ps[0]).toMatchObject({ name: 'big', size: await expectedSize(n, 'big', 10, 256, 4), size_vram: 8 * GiB });
    expect(n.state()).toMatchObject({
      offloaded_loads: 1,
      oom_errors: 0,
      vram_used_bytes: 8 * GiB,
      ram_used_bytes: ps[0].size - 8 * GiB,
      ram_total_bytes: 64 * GiB,
      loaded: [expect.objectContaining({ name: 'big', offload: true, size_vram: 8 * GiB, size_bytes: ps[0].size })],
    });
  });
});
