// Idempotent submits against a real cluster (simulated nodes): concurrent duplicates make one job, a retry after a
// client timeout gets the original job's answer (the disconnect does not cancel it), a different body is a 422, keys
// are per API key, and workflows replay the same way.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from './support/cluster.js';

const KEY_A = 'idem-key-a-0123456789abcdef';
const KEY_B = 'idem-key-b-0123456789abcdef';
const MODEL = 'qwen3:4b';

describe('Idempotency-Key on POSTs that create work', () => {
  let c: TestCluster;
  const post = async (path: string, body: unknown, headers: Record<string, string>) => {
    const r = await fetch(`${c.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    return { status: r.status, body: (await r.json()) as any, replayed: r.headers.get('idempotent-replayed') === 'true' };
  };
  // Generate calls the simulated node received (its heartbeat probes are other paths).
  const simRequests = () => (c.sims[0]!.state().requests as Record<string, number>)['POST /api/generate'] ?? 0;
  const as = (key: string, idem?: string) => ({ authorization: `Bearer ${key}`, ...(idem ? { 'idempotency-key': idem } : {}) });
  const jobsInQueue = async () => {
    const q = c.ctx.producer.queue(`infer.${MODEL.replace(/[^a-zA-Z0-9.]/g, '_')}`);
    const counts = await q.getJobCounts('waiting', 'prioritized', 'active', 'completed', 'failed', 'delayed');
    return Object.values(counts).reduce((a, b) => a + b, 0);
  };

  beforeAll(async () => {
    c = await startCluster({ API_KEYS: `${KEY_A},${KEY_B}`, JOB_ATTEMPTS: '1' });
    await c.simWorker('gpu', { vramGb: 24, models: [{ name: MODEL, sizeGb: 2.5 }], tokensPerSecond: 100, loadMsPerGb: 0, loadFixedMs: 0 });
  });
  afterAll(async () => c?.stop());

  it('50 concurrent requests with one key create one job; every answer names it', async () => {
    const before = await jobsInQueue();
    const body = { type: 'generate', model: MODEL, prompt: 'fifty at once', cache: false, options: { num_predict: 5, sim_answer_tokens: 5 } };
    const rs = await Promise.all(Array.from({ length: 50 }, () => post('/v1/jobs', body, as(KEY_A, 'fifty-1'))));
    expect(rs.map((r) => r.status)).toEqual(Array(50).fill(202));
    const ids = new Set(rs.map((r) => r.body.id));
    expect(ids.size).toBe(1);
    expect(rs.filter((r) => r.replayed)).toHaveLength(49);
    expect(await jobsInQueue()).toBe(before + 1);
    // The same body with its keys in another order is the same request.
    const again = await post('/v1/jobs', { options: body.options, cache: false, prompt: body.prompt, model: MODEL, type: 'generate' }, as(KEY_A, 'fifty-1'));
    expect(again.body.id).toBe([...ids][0]);
    expect(await jobsInQueue()).toBe(before + 1);
  });

  it('a client that times out and retries gets the original job and its answer; the disconnect does not cancel it', async () => {
    const before = await jobsInQueue();
    const requestsBefore = simRequests();
    // 600 tokens at 100 tokens/s: the job runs ~6 s, the client gives up after 500 ms and retries twice.
    const body = { type: 'generate', model: MODEL, prompt: 'slow one', cache: false, wait: true, options: { num_predict: 600, sim_answer_tokens: 600 } };
    const send = (timeoutMs: number) =>
      fetch(`${c.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json', ...as(KEY_A, 'slow-1') }, body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
    await expect(send(500)).rejects.toThrow();
    await expect(send(500)).rejects.toThrow();
    const r = await send(20_000);
    expect(r.status).toBe(200);
    expect(r.headers.get('idempotent-replayed')).toBe('true');
    const view = (await r.json()) as any;
    expect(view).toMatchObject({ state: 'completed', model: MODEL });
    expect(view.result.completion_tokens ?? view.result.eval_count).toBeGreaterThan(0);
    expect(await jobsInQueue()).toBe(before + 1);
    expect(simRequests() - requestsBefore).toBe(1);
    // Later, the same request again: the same job, answered at once.
    const late = await post('/v1/jobs', body, as(KEY_A, 'slow-1'));
    expect(late.status).toBe(200);
    expect(late.body.id).toBe(view.id);
  }, 30_000);

  it('the same key with a different body is a 422 naming the original; keys are per API key; a bad key is a 400', async () => {
    const body = { type: 'generate', model: MODEL, prompt: 'first body', cache: false };
    const first = await post('/v1/jobs', body, as(KEY_A, 'reused'));
    expect(first.status).toBe(202);
    const other = await post('/v1/jobs', { ...body, prompt: 'another body' }, as(KEY_A, 'reused'));
    expect(other.status).toBe(422);
    expect(other.body.error.code).toBe('idempotency_conflict');
    expect(other.body.error.message).toContain(`job ${first.body.id}`);
    expect(other.body.error.details.original).toMatchObject({ what: 'job', id: first.body.id, path: 'POST /v1/jobs' });
    // Another API key's "reused" is another key.
    const b = await post('/v1/jobs', { ...body, prompt: 'another body' }, as(KEY_B, 'reused'));
    expect(b.status).toBe(202);
    expect(b.body.id).not.toBe(first.body.id);
    const bad = await post('/v1/jobs', body, as(KEY_A, 'x'.repeat(256)));
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('Idempotency-Key');
  });

  it('a request refused before anything was added frees its key: the corrected retry with the same key runs', async () => {
    const refused = await post('/v1/jobs', { type: 'generate', model: 'no-such-model:1b', prompt: 'x' }, as(KEY_A, 'refused-1'));
    expect(refused.status).toBe(422);
    expect(refused.body.error.code).toBe('unsatisfiable');
    // Same key, same (unservable) body: refused again, not "replayed" to a job that never existed.
    expect((await post('/v1/jobs', { type: 'generate', model: 'no-such-model:1b', prompt: 'x' }, as(KEY_A, 'refused-1'))).status).toBe(422);
  });

  it('workflows: a retried submit with the same key is the same workflow', async () => {
    const wf = { steps: [{ id: 'a', model: MODEL, prompt: 'wf step', options: { num_predict: 3, sim_answer_tokens: 3 } }], cache: false, wait: true };
    const [x, y] = await Promise.all([post('/v1/workflows', wf, as(KEY_A, 'wf-1')), post('/v1/workflows', wf, as(KEY_A, 'wf-1'))]);
    expect([x.status, y.status], JSON.stringify([x.body, y.body])).toEqual([200, 200]);
    expect(x.body.id).toBe(y.body.id);
    expect(x.body.state).toBe('completed');
    expect([x.replayed, y.replayed].filter(Boolean)).toHaveLength(1);
    const conflict = await post('/v1/distribute', { prompts: ['p'], models: [MODEL] }, as(KEY_A, 'wf-1'));
    expect(conflict.status).toBe(422);
    expect(conflict.body.error.details.original).toMatchObject({ what: 'workflow', id: x.body.id, path: 'POST /v1/workflows' });
  }, 30_000);
});
