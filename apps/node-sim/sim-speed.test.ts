// The simulated node's timing over real HTTP: sublinear aggregate decode speed shared by all models, re-read per token; CPU offload speed; fixed and per-GB load cost; time scale; fast mode.
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../test/support/wait.js';
import { getJson, ndjson, postJson, send, startSim } from './sim-test-support.js';
import type { SimNode } from './sim-server.js';

const MS = 1e6; // nanoseconds in a millisecond
const noLoad = { fast: false, loadFixedMs: 0, loadMsPerGb: 0 };

/** One non-streamed generation of `tokens` tokens: its final object (durations in real-time-equivalent ns). */
const generate = async (n: SimNode, model: string, tokens: number, extra: Record<string, unknown> = {}): Promise<any> =>
  postJson(n, '/api/generate', { model, prompt: 'x', stream: false, options: { num_predict: tokens, sim_answer_tokens: tokens }, ...extra });

describe('shared decode throughput', () => {
  // Two 8 GB models at base 500: each decodes 500 tokens/s alone, 2 ms a token.
  const models = [{ name: 'a:8b', sizeGb: 8 }, { name: 'b:8b', sizeGb: 8 }];

  it('gives n requests decoding at once (on any of the node\'s models) single-stream speed × n^(e − 1) each', async () => {
    const n = await startSim({ models, vramGb: 80, tokensPerSecond: 500, batchExponent: 0.5, ...noLoad });
    for (const m of ['a:8b', 'b:8b']) await postJson(n, '/api/generate', { model: m });
    const alone = (await generate(n, 'a:8b', 100)).eval_duration;
    expect(alone).toBeGreaterThanOrEqual(195 * MS);
    // 4 at once, two per model: 4^(0.5 − 1) = half speed each, so aggregate throughput is 4^0.5 = 2× one stream.
    const four = await Promise.all(['a:8b', 'a:8b', 'b:8b', 'b:8b'].map((m) => generate(n, m, 100)));
    for (const r of four) {
      expect(r.eval_duration / alone).toBeGreaterThan(1.7);
      expect(r.eval_duration / alone).toBeLessThan(2.6);
    }
  });

  it('makes parallelism free with batch exponent 1 (the old behaviour)', async () => {
    const n = await startSim({ models, vramGb: 80, tokensPerSecond: 500, batchExponent: 1, ...noLoad });
    await postJson(n, '/api/generate', { model: 'a:8b' });
    const alone = (await generate(n, 'a:8b', 100)).eval_duration;
    const four = await Promise.all([1, 2, 3, 4].map(() => generate(n, 'a:8b', 100)));
    for (const r of four) expect(r.eval_duration / alone).toBeLessThan(1.35);
  });

  it('re-reads the speed every token: a running request slows while another decodes beside it', async () => {
    // e = 0.3: two at once run at 2^-0.7 = 0.62 × single speed (3.25 ms a token instead of 2).
    const n = await startSim({ models, vramGb: 80, tokensPerSecond: 500, batchExponent: 0.3, ...noLoad });
    await postJson(n, '/api/generate', { model: 'a:8b' });
    const long = await send(n, 'POST', '/api/generate', { model: 'a:8b', prompt: 'x', options: { sim_answer_tokens: 300 } });
    const reader = long.body!.getReader();
    await reader.read(); // the long request is decoding (600 ms alone)
    const short = await generate(n, 'b:8b', 100);
    let text = '';
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) text += new TextDecoder().decode(chunk.value);
    const final = ndjson(text).pop();
    // The short one ran entirely beside the long one: ~1.6× its 200 ms alone.
    expect(short.eval_duration / (200 * MS)).toBeGreaterThan(1.4);
    expect(short.eval_duration / (200 * MS)).toBeLessThan(2.2);
    // The long one started alone; fixed at its start it would take 600 ms. About 100 of its tokens were slowed.
    expect(final.eval_duration).toBeGreaterThan(650 * MS);
    expect(final.eval_duration).toBeLessThan(1000 * MS);
  });
});

describe('CPU offload speed', () => {
  it('decodes the RAM part of an offloaded model at cpu-speed-ratio of the GPU speed', async () => {
    // 10 GB at base 1250: 1000 tokens/s (1 ms a token) fully in VRAM.
    const big = [{ name: 'big', sizeGb: 10 }];
    const opts = { models: big, tokensPerSecond: 1250, cpuSpeedRatio: 0.1, numCtx: 256, ...noLoad };
    const gpu = await startSim({ ...opts, vramGb: 16 });
    const offloaded = await startSim({ ...opts, vramGb: 8 });
    const onGpu = (await generate(gpu, 'big', 100)).eval_duration;
    const slow = (await generate(offloaded, 'big', 100)).eval_duration;
    const ps = (await getJson(offloaded, '/api/ps')).models[0];
    const gpuShare = ps.size_vram / ps.size; // ~0.79
    const msPerToken = gpuShare * 1 + ((1 - gpuShare) * 1) / 0.1; // ~2.9 ms
    expect(slow).toBeGreaterThanOrEqual(0.95 * 100 * msPerToken * MS);
    expect(slow).toBeLessThan(1.5 * 100 * msPerToken * MS);
    expect(onGpu).toBeLessThan(slow / 2);
  });
});

describe('load cost and time scale', () => {
  it('loads in a fixed start-up time plus time per GB, and divides every wait by the time scale while reporting real-time-equivalent durations', async () => {
    // 2 GB at base 25: 100 tokens/s. Real-time equivalent: load 2000 + 2 × 500 = 3000 ms, 50 tokens 500 ms; ÷ 20 on the wall.
    const n = await startSim({ models: [{ name: 'm:2b', sizeGb: 2 }], fast: false, tokensPerSecond: 25, loadFixedMs: 2000, loadMsPerGb: 500, timeScale: 20 });
    const started = performance.now();
    const first = await generate(n, 'm:2b', 50);
    const wallMs = performance.now() - started;
    expect(first.load_duration).toBeGreaterThanOrEqual(2950 * MS);
    expect(first.load_duration).toBeLessThan(4500 * MS);
    expect(first.eval_duration).toBeGreaterThanOrEqual(480 * MS);
    expect(first.eval_duration).toBeLessThan(1500 * MS);
    expect(first.total_duration).toBeGreaterThanOrEqual(first.load_duration + first.eval_duration);
    expect(wallMs).toBeLessThan(1500); // 3.5 s of simulated time
    // Loaded now: no load cost; the keep-alive (5 minutes) runs on the scaled clock too: 15 s of wall time.
    expect((await generate(n, 'm:2b', 1)).load_duration).toBe(0);
    const expiresInMs = Date.parse(n.state().loaded[0]!.expires_at!) - Date.now();
    expect(expiresInMs).toBeGreaterThan(10_000);
    expect(expiresInMs).toBeLessThan(16_000);
  });

  it('scales pull time too', async () => {
    // 2 GB at 200 MB/s is 10.7 s of download; at time scale 100, about 0.1 s.
    const n = await startSim({ models: [{ name: 'have', sizeGb: 1 }], pullable: [{ name: 'new:3b', sizeGb: 2 }], timeScale: 100 });
    const started = performance.now();
    const res = await send(n, 'POST', '/api/pull', { model: 'new:3b', stream: false });
    expect(await res.json()).toEqual({ status: 'success' });
    const ms = performance.now() - started;
    expect(ms).toBeGreaterThanOrEqual(100);
    expect(ms).toBeLessThan(3000);
  });

  it('has no delays at all with fast, whatever the realistic defaults', async () => {
    const n = await startSim({ models: [{ name: 'm:70b', sizeGb: 40 }], vramGb: 80, fast: true });
    const started = performance.now();
    const out = await generate(n, 'm:70b', 2000);
    expect(out.eval_count).toBe(2000);
    // Unscaled, the 1 s start-up + 40 × 20 ms load and 2000 tokens at 40 tokens/s would take 50 s.
    expect(performance.now() - started).toBeLessThan(3000);
    await waitFor(() => n.state().active_requests === 0, { what: 'the request to end' });
  });
});
