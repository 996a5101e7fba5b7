// The simulated node's model management over real HTTP: /api/pull progress, timing, errors, aborts and disk; DELETE /api/delete; keep_alive 0 unload.
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../test/support/wait.js';
import { getJson, ndjson, postJson, send, startSim } from './sim-test-support.js';

/** The simulator's GB: GiB (2^30 bytes), the unit of --vram-gb and of NODE_VRAM_GB. */
const GiB = 1024 ** 3;

const BASE = [{ name: 'have:1b', sizeGb: 1 }];
const LIB = [{ name: 'new:3b', sizeGb: 2, capabilities: ['completion', 'tools', 'thinking'] }];
const names = async (n: Awaited<ReturnType<typeof startSim>>): Promise<string[]> => (await getJson(n, '/api/tags')).models.map((m: any) => m.name);

describe('/api/pull', () => {
  it("streams Ollama's progress at the simulated download speed, then the model is in /api/tags", async () => {
    // 2 GB at 20 000 MB/s: the weights take about 100 ms.
    const n = await startSim({ models: BASE, pullable: LIB, pullMBps: 20_000 });
    expect(await names(n)).toEqual(['have:1b']);
    const started = performance.now();
    const res = await send(n, 'POST', '/api/pull', { model: 'new:3b' });
    expect(res.headers.get('content-type')).toBe('application/x-ndjson');
    const objs = ndjson(await res.text());
    const ms = performance.now() - started;
    expect(ms).toBeGreaterThanOrEqual(95);
    expect(objs[0]).toEqual({ status: 'pulling manifest' });
    expect(objs.slice(-3)).toEqual([{ status: 'verifying sha256 digest' }, { status: 'writing manifest' }, { status: 'success' }]);
    const layers = objs.slice(1, -3);
    for (const l of layers) expect(l).toEqual({ status: `pulling ${l.digest.slice(7, 19)}`, digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/), total: expect.any(Number), completed: expect.any(Number) });
    const weights = layers.filter((l) => l.digest === layers[0].digest);
    expect(weights.length).toBeGreaterThanOrEqual(4);
    expect(weights.map((l) => l.completed)).toEqual([...weights.map((l) => l.completed)].sort((a, b) => a - b));
    expect(weights[weights.length - 1].completed).toBe(weights[0].total);
    // The layers add up to the size /api/tags shows.
    const totals = new Map(layers.map((l) => [l.digest, l.total]));
    expect([...totals.values()].reduce((a, b) => a + b, 0)).toBe(2 * GiB);

    expect(await names(n)).toEqual(['have:1b', 'new:3b']);
    expect((await postJson(n, '/api/show', { model: 'new:3b' })).capabilities).toEqual(['completion', 'tools', 'thinking']);
    expect((await postJson(n, '/api/generate', { model: 'new:3b', prompt: 'hi', stream: false })).done).toBe(true);
    expect(n.state()).toMatchObject({ pulls_completed: 1, pulls_active: 0, disk_used_bytes: 3 * GiB });

    // Pulling again finds every layer on disk: no download time.
    const again = ndjson(await (await send(n, 'POST', '/api/pull', { name: 'new:3b' })).text());
    expect(again.filter((o) => o.digest).every((o) => o.completed === o.total)).toBe(true);
    expect(await postJson(n, '/api/pull', { model: 'have:1b', stream: false })).toEqual({ status: 'success' });
  });

  it("answers Ollama's error for a model the library does not have: a last line, or a 500 when not streaming", async () => {
    const n = await startSim({ models: BASE, pullable: LIB });
    const streamed = await send(n, 'POST', '/api/pull', { model: 'nope:1b' });
    expect(streamed.status).toBe(200);
    expect(ndjson(await streamed.text())).toEqual([{ status: 'pulling manifest' }, { error: 'pull model manifest: file does not exist' }]);
    const whole = await send(n, 'POST', '/api/pull', { model: 'nope:1b', stream: false });
    expect(whole.status).toBe(500);
    expect(await whole.json()).toEqual({ error: 'pull model manifest: file does not exist' });
    expect((await send(n, 'POST', '/api/pull', {})).status).toBe(400);
    expect(n.state()).toMatchObject({ pulls_failed: 2, pulls_completed: 0 });
    expect(await names(n)).toEqual(['have:1b']);
  });

  it('fails a pull that does not fit on the disk', async () => {
    const n = await startSim({ models: BASE, pullable: LIB, diskGb: 2.5 });
    const r = await send(n, 'POST', '/api/pull', { model: 'new:3b', stream: false });
    expect(r.status).toBe(500);
    expect((await r.json()).error).toBe('no space left on device: new:3b needs 2 GB, the simulated disk has 1.5 GB free');
    expect(n.state()).toMatchObject({ disk_total_bytes: 2.5 * GiB, disk_used_bytes: 1 * GiB });
  });

  it('stops the download when the client goes away, counts it, and installs nothing', async () => {
    // 2 GB at 100 MB/s would take 20 s.
    const n = await startSim({ models: BASE, pullable: LIB, pullMBps: 100 });
    const ac = new AbortController();
    const res = await send(n, 'POST', '/api/pull', { model: 'new:3b' }, { signal: ac.signal });
    const reader = res.body!.getReader();
    await reader.read();
    await waitFor(() => n.state().pulls_active === 1, { what: 'the pull to be under way' });
    ac.abort();
    await waitFor(() => n.state().pulls_aborted === 1 && n.state().pulls_active === 0, { what: 'the abort to be counted' });
    expect(await names(n)).toEqual(['have:1b']);
  });
});

describe('DELETE /api/delete and unload', () => {
  it('removes a model from /api/tags and unloads it; an unknown one is a 404', async () => {
    const n = await startSim({ models: [...BASE, { name: 'other:1b', sizeGb: 1 }], pullMBps: 1e6 });
    await postJson(n, '/api/generate', { model: 'have:1b', prompt: 'x', stream: false });
    expect(n.state().loaded.map((l) => l.name)).toEqual(['have:1b']);
    const del = await send(n, 'DELETE', '/api/delete', { model: 'have:1b' });
    expect(del.status).toBe(200);
    expect(await del.text()).toBe('');
    expect(await names(n)).toEqual(['other:1b']);
    expect(n.state()).toMatchObject({ loaded: [], deletes: 1 });
    expect((await send(n, 'POST', '/api/generate', { model: 'have:1b', prompt: 'x' })).status).toBe(404);
    const missing = await send(n, 'DELETE', '/api/delete', { name: 'have:1b' });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: "model 'have:1b' not found" });
    // Deleted models can be pulled back: the node's own models are in its library.
    expect(await postJson(n, '/api/pull', { model: 'have:1b', stream: false })).toEqual({ status: 'success' });
    expect(await names(n)).toEqual(['other:1b', 'have:1b']);
  });

  it('keep_alive 0 with no prompt unloads (done_reason "unload"); an empty prompt loads ("load")', async () => {
    const n = await startSim({ models: BASE });
    const load = await postJson(n, '/api/chat', { model: 'have:1b', messages: [] });
    expect(load).toEqual({ model: 'have:1b', created_at: expect.any(String), message: { role: 'assistant', content: '' }, done: true, done_reason: 'load' });
    expect(n.state().loaded).toHaveLength(1);
    const unload = await postJson(n, '/api/generate', { model: 'have:1b', keep_alive: 0 });
    expect(unload).toEqual({ model: 'have:1b', created_at: expect.any(String), response: '', done: true, done_reason: 'unload' });
    expect(n.state().loaded).toEqual([]);
  });
});
