// The HTTP surface: validation (400 naming the field), size limits, Bull Board, cluster stats, cancellation, API keys.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from './support/cluster.js';
import { waitFor } from './support/wait.js';

describe('API', () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({ BODY_LIMIT_BYTES: '65536', WORKER_CONCURRENCY: '1' });
    await c.simWorker('n1', { vramGb: 16, models: [{ name: 'qwen3:4b', sizeGb: 2.5 }], tokensPerSecond: 50, loadMsPerGb: 0 });
  });
  afterAll(async () => c?.stop());

  const valid = { type: 'generate', model: 'qwen3:4b', prompt: 'hi' };
  it.each([
    ['malformed JSON', '{"type": "generate", ', 'malformed JSON body'],
    ['unknown type', { ...valid, type: 'draw' }, 'type must be one of generate, chat, embed'],
    ['priority 0', { ...valid, priority: 0 }, 'priority must be at least 1'],
    ['priority 11', { ...valid, priority: 11 }, 'priority must be at most 10'],
    ['negative min_vram_gb', { ...valid, min_vram_gb: -4 }, 'min_vram_gb must not be negative'],
    ['missing model', { type: 'generate', prompt: 'x' }, 'model is required'],
    ['chat without messages', { type: 'chat', model: 'qwen3:4b' }, 'messages is required'],
    ['unknown field', { ...valid, priorty: 3 }, 'priorty is not a known field'],
    ['not an object', [1, 2], '(body) must be a JSON object'],
  ])('400 for %s, naming the field', async (_name, body, message) => {
    const r = await c.post('/v1/jobs', body);
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('bad_request');
    expect(r.body.error.message).toContain(message);
  });

  it('413 past the body limit', async () => {
    const r = await c.post('/v1/jobs', { ...valid, prompt: 'x'.repeat(70_000) });
    expect(r.status).toBe(413);
    expect(r.body.error.message).toMatch(/larger than the limit of 65536 bytes/);
  });

  it('serves Bull Board listing every queue, including ones created at run time', async () => {
    await c.post('/v1/jobs', { ...valid, wait: true });
    await c.post('/v1/jobs', { ...valid, node_id: 'n1', wait: true });
    const page = await fetch(`${c.url}/admin/queues`);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<html/i);
    const api = await c.get('/admin/queues/api/queues');
    expect(api.status).toBe(200);
    const names = api.body.queues.map((q: { name: string }) => q.name).sort();
    expect(names).toEqual(['infer.qwen3_4b', 'node.n1']);
  });

  it('reports nodes and cluster stats', async () => {
    const n = (await c.nodes())[0];
    expect(n).toMatchObject({ id: 'n1', type: 'gpu', healthy: true, simulated: true, vram_total_mb: 16384, models_available: ['qwen3:4b'] });
    expect(n.vram_available_gb).toBeCloseTo(n.vram_available_mb / 1024, 1);
    expect(typeof n.last_heartbeat).toBe('string');
    const s = (await c.get('/v1/cluster/stats')).body;
    expect(s).toMatchObject({ total_nodes: 1, healthy_nodes: 1, gpu_nodes: 1, cpu_nodes: 0 });
    expect(s.queues['infer.qwen3_4b'].completed).toBeGreaterThanOrEqual(1);
  });

  it('cancels a waiting job (removed) and an active one (aborted on its backend)', async () => {
    const active = (await c.post('/v1/jobs', { ...valid, prompt: 'long', options: { num_predict: 400, sim_answer_tokens: 400 } })).body.id;
    await waitFor(async () => (await c.get(`/v1/jobs/${active}`)).body.state === 'active', { what: 'the long job to start' });
    // While it runs, its view names the node, the attempt and when it started (the node once its worker recorded it).
    const running = await waitFor(async () => {
      const v = (await c.get(`/v1/jobs/${active}`)).body;
      return v.node_id ? v : null;
    }, { what: 'the running job view to name its node' });
    expect(running).toMatchObject({ state: 'active', node_id: 'n1', attempt: 1 });
    expect(Date.parse(running.started_at)).toBeGreaterThan(Date.parse(running.submitted_at) - 1);
    const waiting = (await c.post('/v1/jobs', valid)).body.id;
    const w = await c.del(`/v1/jobs/${waiting}`);
    expect(w.body).toEqual({ id: waiting, state: 'cancelled' });
    expect((await c.get(`/v1/jobs/${waiting}`)).body.state).toBe('cancelled');
    const abortedBefore = c.sims[0]!.state().aborted;
    const a = await c.del(`/v1/jobs/${active}`);
    expect(a.status).toBe(202);
    const view = await waitFor(async () => {
      const v = (await c.get(`/v1/jobs/${active}`)).body;
      return v.state === 'failed' ? v : null;
    }, { what: 'the active job to end as cancelled' });
    expect(view.error.code).toBe('cancelled');
    expect(view.attempts_made).toBe(1); // cancelled jobs are not retried
    await waitFor(() => c.sims[0]!.state().aborted > abortedBefore, { what: 'the simulated backend to see the abort' });
    const again = await c.del(`/v1/jobs/${active}`);
    expect(again.status).toBe(409);
  });
});

describe('API keys', () => {
  let c: TestCluster;
  const key = 'test-key-0123456789abcdef';
  beforeAll(async () => {
    c = await startCluster({ API_KEYS: key });
  });
  afterAll(async () => c?.stop());

  it('401 without a key or with a wrong key, for the API and Bull Board', async () => {
    expect((await c.get('/v1/nodes')).status).toBe(401);
    expect((await c.get('/v1/nodes', { authorization: 'Bearer wrong-key-0123456789' })).status).toBe(401);
    expect((await c.post('/v1/jobs', { type: 'generate', model: 'x', prompt: 'y' })).status).toBe(401);
    const board = await fetch(`${c.url}/admin/queues`);
    expect(board.status).toBe(401);
    expect(board.headers.get('www-authenticate')).toMatch(/Basic/);
  });
  it('200 with the key (Bearer, or Basic for a browser)', async () => {
    expect((await c.get('/v1/nodes', { authorization: `Bearer ${key}` })).status).toBe(200);
    const basic = Buffer.from(`admin:${key}`).toString('base64');
    expect((await fetch(`${c.url}/admin/queues`, { headers: { authorization: `Basic ${basic}` } })).status).toBe(200);
    expect((await c.get('/healthz')).status).toBe(200);
  });
});
