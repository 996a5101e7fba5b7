// Tools, thinking and images against what a node's backend can do: a llama.cpp worker reports its models' capabilities, so a request it could never serve is refused at submit.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_CHAT_REPLY, TINY_MODEL_NAME, writeTinyModel } from '../libs/tiny-model/index.js';
import { startCluster, type TestCluster } from './support/cluster.js';

describe('capabilities of a llama.cpp node at submit', () => {
  let c: TestCluster;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hydra-tools-'));
    await writeTinyModel(join(dir, `${TINY_MODEL_NAME}.gguf`));
    c = await startCluster();
    const w = await c.worker({ BACKEND: 'llamacpp', MODELS_DIR: dir, OLLAMA_MODELS_DIR: join(dir, 'no-store'), NODE_ID: 'llama-tools', LLAMA_THREADS: '1', NUM_CTX: '4096', WORKER_CONCURRENCY: '1' });
    await c.waitForNode('llama-tools', (n) => n.healthy, 30_000).catch((e: Error) => {
      throw new Error(`${e.message}\n${w.output()}`);
    });
  }, 90_000);
  afterAll(async () => {
    await c?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Jobs ever queued in this cluster (each has a job index entry). */
  const queued = async () => (await c.ctx.redis.keys(`${c.prefix}:jobq:*`)).length;

  it('refuses a chat with an image with a 400 naming vision, before anything is queued', async () => {
    const before = await queued();
    const r = await c.post('/v1/jobs', { type: 'chat', model: TINY_MODEL_NAME, messages: [{ role: 'user', content: 'what is this?', images: ['iVBORw0KGgo='] }], wait: true });
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.body)).toMatch(/vision/);
    expect(JSON.stringify(r.body)).toMatch(/llama-tools: completion, tools/);
    expect(await queued()).toBe(before);
  });

  it('refuses think on a model whose template has no thinking, and a suffix (no fill-in-the-middle), the same way', async () => {
    const before = await queued();
    const think = await c.post('/v1/jobs', { type: 'chat', model: TINY_MODEL_NAME, messages: [{ role: 'user', content: 'x' }], think: true, wait: true });
    expect(think.status).toBe(400);
    expect(JSON.stringify(think.body)).toMatch(/thinking/);
    const fim = await c.post('/v1/jobs', { type: 'generate', model: TINY_MODEL_NAME, prompt: 'a', suffix: 'z', wait: true });
    expect(fim.status).toBe(400);
    expect(JSON.stringify(fim.body)).toMatch(/suffix/);
    expect(await queued()).toBe(before);
  });

  it('runs a chat with tools end to end: the toy model answers in text and calls nothing', async () => {
    const tools = [{ type: 'function', function: { name: 'get_weather', description: 'weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
    const r = await c.post('/v1/jobs', { type: 'chat', model: TINY_MODEL_NAME, messages: [{ role: 'user', content: 'weather in Paris?' }], tools, options: { temperature: 0 }, wait: true });
    expect(r.status).toBe(200);
    expect(r.body.result.message).toEqual({ role: 'assistant', content: TINY_CHAT_REPLY });
    expect(r.body.result.node_id).toBe('llama-tools');
  });
});
