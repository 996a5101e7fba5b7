// Real inference end to end: API → queue → a llama.cpp worker process (node-llama-cpp) running the toy model → answer.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedGreedyOutput, TINY_CHAT_REPLY, TINY_DIMS, TINY_MODEL_NAME, writeTinyModel } from '../libs/tiny-model/index.js';
import { readSse, startCluster, type TestCluster } from './support/cluster.js';
import { waitFor } from './support/wait.js';

describe('llama.cpp worker in a mixed cluster', () => {
  let c: TestCluster;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hydra-models-'));
    await writeTinyModel(join(dir, `${TINY_MODEL_NAME}.gguf`));
    await writeTinyModel(join(dir, 'broken-shapes.gguf'), { wrongShape: true });
    c = await startCluster();
    const w = await c.worker({ BACKEND: 'llamacpp', MODELS_DIR: dir, OLLAMA_MODELS_DIR: join(dir, 'no-store'), NODE_ID: 'llama', LLAMA_THREADS: '1', NUM_CTX: '512', WORKER_CONCURRENCY: '1' });
    await c.waitForNode('llama', (n) => n.healthy, 30_000).catch((e: Error) => {
      throw new Error(`${e.message}\n${w.output()}`);
    });
    await c.simWorker('sim-a', { vramGb: 24, models: [{ name: 'qwen3:14b', sizeGb: 9.3 }], tokensPerSecond: 2000, loadMsPerGb: 0 });
  }, 90_000);
  afterAll(async () => {
    await c?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('registers as a CPU node with the toy model', async () => {
    const n = (await c.nodes()).find((x) => x.id === 'llama');
    expect(n).toMatchObject({ type: 'cpu', backend: 'llamacpp', simulated: false, healthy: true });
    expect(n.models_available).toContain(TINY_MODEL_NAME);
  });

  it('answers a chat job with the exact expected text, and streams the same tokens over SSE', async () => {
    const r = await c.post('/v1/jobs', { type: 'chat', model: TINY_MODEL_NAME, messages: [{ role: 'user', content: 'hi' }], options: { temperature: 0 }, wait: true });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.result.message.content).toBe(TINY_CHAT_REPLY);
    expect(r.body.result.node_id).toBe('llama');
    expect(r.body.result.completion_tokens).toBeGreaterThan(0);

    const s = await c.post('/v1/jobs', { type: 'chat', model: TINY_MODEL_NAME, messages: [{ role: 'user', content: 'again' }], options: { temperature: 0 } });
    const events = await readSse(`${c.url}${s.body.stream_url}`);
    expect(events.at(-1)!.event).toBe('done');
    const streamed = events.filter((e) => e.event === 'token').map((e) => e.data.text).join('');
    expect(streamed).toBe(TINY_CHAT_REPLY);
    expect(events.at(-1)!.data.message.content).toBe(TINY_CHAT_REPLY);
  });

  it('answers generate with the predicted greedy continuation and honours num_predict', async () => {
    const r = await c.post('/v1/jobs', { type: 'generate', model: TINY_MODEL_NAME, prompt: '3', options: { temperature: 0, num_predict: 12 }, wait: true });
    expect(r.status).toBe(200);
    expect(r.body.result.response).toBe(expectedGreedyOutput('3', 12).text);
    expect(r.body.result.done_reason).toBe('length');
  });

  it('returns embeddings of the model’s dimension', async () => {
    const r = await c.post('/v1/jobs', { type: 'embed', model: TINY_MODEL_NAME, input: ['hello', 'world'], wait: true });
    expect(r.status).toBe(200);
    expect(r.body.result.embeddings).toHaveLength(2);
    const [a, b] = r.body.result.embeddings as number[][];
    expect(a).toHaveLength(TINY_DIMS.embedding_length);
    expect(Math.hypot(...a!)).toBeCloseTo(1, 3); // unit vectors, as Ollama's /api/embed
    expect(a).not.toEqual(b);
  });

  it('cancels a long generation mid-way: the worker stops decoding and takes the next job', async () => {
    // Digits never end in the toy model: without a cancel this would decode 200k tokens (minutes).
    const long = await c.post('/v1/jobs', { type: 'generate', model: TINY_MODEL_NAME, prompt: '0', options: { temperature: 0, num_predict: 200_000, num_ctx: 512 } });
    const stream = readSse(`${c.url}${long.body.stream_url}`);
    await waitFor(async () => (await c.get(`/v1/jobs/${long.body.id}`)).body.state === 'active', { what: 'the long job to start' });
    await waitFor(async () => (await c.ctx.redis.xlen(c.ctx.keys.stream(long.body.id))) > 2, { what: 'tokens to flow' });
    const del = await c.del(`/v1/jobs/${long.body.id}`);
    expect(del.status).toBe(202);
    const events = await stream;
    expect(events.at(-1)).toMatchObject({ event: 'error', data: { code: 'cancelled' } });
    const decoded = events.filter((e) => e.event === 'token').map((e) => e.data.text).join('').length;
    expect(decoded).toBeLessThan(200_000);
    // One slot: the next job only runs once decoding of the cancelled one has stopped.
    const t0 = Date.now();
    const next = await c.post('/v1/jobs', { type: 'generate', model: TINY_MODEL_NAME, prompt: 'x', options: { temperature: 0 }, wait: true });
    expect(next.body.result.response).toBe('yz');
    expect(Date.now() - t0).toBeLessThan(15_000);
  });

  it('fails a job on a bad GGUF with llama.cpp’s reason, and keeps serving the good model', async () => {
    const bad = await c.post('/v1/jobs', { type: 'generate', model: 'broken-shapes', prompt: 'a', wait: true });
    expect(bad.status).toBe(422);
    expect(bad.body.state).toBe('failed');
    expect(bad.body.error.code).toBe('bad_model_file');
    expect(bad.body.error.message).toMatch(/wrong shape/);
    expect(bad.body.attempts_made).toBe(1); // not retried: a bad file stays bad
    const n = (await c.nodes()).find((x) => x.id === 'llama');
    expect(n.healthy).toBe(true);
    const good = await c.post('/v1/jobs', { type: 'generate', model: TINY_MODEL_NAME, prompt: 'w', options: { temperature: 0 }, wait: true });
    expect(good.body.result.response).toBe('xyz');
  });

  it('routes each model only to the nodes that have it', async () => {
    const jobs = [];
    for (let i = 0; i < 6; i++) {
      jobs.push(c.post('/v1/jobs', { type: 'generate', model: i % 2 ? 'qwen3:14b' : TINY_MODEL_NAME, prompt: 'a', options: { temperature: 0, num_predict: 3 }, wait: true }));
    }
    const done = await Promise.all(jobs);
    for (const [i, r] of done.entries()) {
      expect(r.status).toBe(200);
      expect(r.body.result.node_id).toBe(i % 2 ? 'sim-a' : 'llama');
    }
  });
});
