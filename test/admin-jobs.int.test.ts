// Admin jobs (pull, delete, unload) through the queue: queued on one node's own queue, run by that node's worker against its backend, progress and the end on the job's stream.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdminCall } from '../libs/core/index.js';
import { TINY_MODEL_NAME, writeTinyModel } from '../libs/tiny-model/index.js';
import { readSse, startCluster, type TestCluster } from './support/cluster.js';

describe('admin jobs on the nodes', () => {
  let c: TestCluster;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hydra-admin-'));
    await writeTinyModel(join(dir, `${TINY_MODEL_NAME}.gguf`));
    c = await startCluster();
    // 2 GB at 4000 MB/s: a pull of about half a second, with several progress lines.
    await c.simWorker('sim-admin', { vramGb: 24, models: [{ name: 'qwen3:14b', sizeGb: 9.3 }], pullable: [{ name: 'llama3.2:3b', sizeGb: 2 }], pullMBps: 4000, tokensPerSecond: 2000, loadMsPerGb: 0 });
    const w = await c.worker({ BACKEND: 'llamacpp', MODELS_DIR: dir, OLLAMA_MODELS_DIR: join(dir, 'no-store'), NODE_ID: 'llama-admin', LLAMA_THREADS: '1', NUM_CTX: '512', WORKER_CONCURRENCY: '1' });
    await c.waitForNode('llama-admin', (n) => n.healthy, 30_000).catch((e: Error) => {
      throw new Error(`${e.message}\n${w.output()}`);
    });
  }, 90_000);
  afterAll(async () => {
    await c?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Queue `call` on `node` as the API's admin service does, and read the job's stream to its end. */
  async function run(node: string, call: AdminCall) {
    const jobId = `admin-${randomUUID()}`;
    await c.ctx.producer.addAdmin(jobId, { call, node_id: node, submitted_at: Date.now() });
    const events = await readSse(`${c.url}/v1/jobs/${jobId}/stream`);
    return { jobId, events, progress: events.filter((e) => e.event === 'progress').map((e) => e.data), end: events.at(-1)! };
  }

  it('pulls on the simulated node with progress entries, then /v1/nodes lists the model', async () => {
    const { progress, end } = await run('sim-admin', { op: 'pull', model: 'llama3.2:3b' });
    expect(end).toMatchObject({ event: 'done', data: { status: 'success', node_id: 'sim-admin', op: 'pull', model: 'llama3.2:3b' } });
    expect(progress[0]).toMatchObject({ status: 'pulling manifest' });
    const layer = progress.filter((p) => p.total !== undefined && p.completed !== undefined);
    expect(layer.length).toBeGreaterThan(1);
    expect(progress.at(-1)).toEqual({ status: 'success' });
    // A heartbeat soon after the job: the node's models include the new one well before the next periodic beat matters.
    await c.waitForNode('sim-admin', (n) => n.models_available.includes('llama3.2:3b'), 5_000);
  });

  it('unloads and deletes on the simulated node; deleting a model it lacks fails as model_not_found', async () => {
    const chat = await c.post('/v1/jobs', { type: 'chat', model: 'qwen3:14b', node_id: 'sim-admin', messages: [{ role: 'user', content: 'hi' }], wait: true });
    expect(chat.status).toBe(200);
    await c.waitForNode('sim-admin', (n) => n.models_loaded.includes('qwen3:14b'), 5_000);
    const unload = await run('sim-admin', { op: 'unload', model: 'qwen3:14b' });
    expect(unload.end).toMatchObject({ event: 'done', data: { status: 'success', op: 'unload' } });
    await c.waitForNode('sim-admin', (n) => !n.models_loaded.includes('qwen3:14b'), 5_000);

    const del = await run('sim-admin', { op: 'delete', model: 'llama3.2:3b' });
    expect(del.end).toMatchObject({ event: 'done', data: { status: 'success', op: 'delete' } });
    await c.waitForNode('sim-admin', (n) => !n.models_available.includes('llama3.2:3b'), 5_000);
    const again = await run('sim-admin', { op: 'delete', model: 'llama3.2:3b' });
    expect(again.end).toMatchObject({ event: 'error', data: { code: 'model_not_found' } });
  });

  it('on a llama.cpp worker a pull fails at once, final, with what to do instead', async () => {
    const { end, jobId } = await run('llama-admin', { op: 'pull', model: 'qwen3:0.6b' });
    expect(end.event).toBe('error');
    expect(end.data).toMatchObject({ code: 'bad_request', node_id: 'llama-admin' });
    expect(end.data.message).toMatch(/node llama-admin \(llama\.cpp\) cannot pull models: llama\.cpp nodes load GGUF files from MODELS_DIR; copy the file there/);
    const job = await c.get(`/v1/jobs/${jobId}`);
    expect(job.body).toMatchObject({ state: 'failed' });
  });
});
