// Webhooks against a real cluster and a real HTTP receiver on 127.0.0.1: a receiver that fails twice then answers 200
// gets exactly three deliveries of one delivery id, each signed; the job view lists the attempts; callbacks to
// loopback, link-local (metadata) and private addresses are refused at submit unless WEBHOOK_ALLOW covers them, and
// again at delivery; a batch's and a workflow's callbacks arrive once each.
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliveryId, DELIVERY_QUEUE } from '../libs/queue/index.js';
import { startCluster, type TestCluster } from './support/cluster.js';
import { waitFor } from './support/wait.js';

const SECRET = 'test-webhook-secret-0123456789';
const MODEL = 'qwen3:4b';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** An HTTP receiver: `/flaky-*` answers 500 to its first two calls and 200 after; anything else 200. */
async function receiver(): Promise<{ server: Server; port: number; got: Received[]; on: (path: string) => Received[] }> {
  const got: Received[] = [];
  const calls = new Map<string, number>();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const path = req.url ?? '/';
      got.push({ path, headers: req.headers, body });
      const n = (calls.get(path) ?? 0) + 1;
      calls.set(path, n);
      res.statusCode = path.startsWith('/flaky') && n <= 2 ? 500 : 200;
      res.end(res.statusCode === 200 ? 'ok' : 'not yet');
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as { port: number }).port;
  return { server, port, got, on: (path) => got.filter((g) => g.path === path) };
}

/** Recompute X-Hydra-Signature from the raw body, as a receiver would. */
function verifies(r: Received): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(r.headers['x-hydra-signature'] ?? ''));
  if (!m) return false;
  return createHmac('sha256', SECRET).update(`${m[1]}.${r.body}`).digest('hex') === m[2];
}

describe('webhooks', () => {
  let c: TestCluster;
  let rx: Awaited<ReturnType<typeof receiver>>;
  const hook = (path: string) => `http://127.0.0.1:${rx.port}${path}`;
  const gen = (extra: Record<string, unknown> = {}) => ({ type: 'generate', model: MODEL, prompt: 'call me back', cache: false, options: { sim_answer_tokens: 8 }, ...extra });

  beforeAll(async () => {
    rx = await receiver();
    c = await startCluster({ WEBHOOK_ALLOW: '127.0.0.1', WEBHOOK_SECRET: SECRET, WEBHOOK_BACKOFF_MS: '100', WEBHOOK_MAX_ATTEMPTS: '5', JOB_ATTEMPTS: '1' });
    await c.simWorker('n1', { vramGb: 24, models: [{ name: MODEL, sizeGb: 2.5 }, { name: 'nomic-embed-text', sizeGb: 0.27, embeddingLength: 16 }], tokensPerSecond: 2000, loadMsPerGb: 0 });
  });
  afterAll(async () => {
    await c?.stop();
    rx?.server.close();
  });

  it('a receiver that fails twice then succeeds gets exactly three signed deliveries of one id; the job view lists them', async () => {
    const r = await c.post('/v1/jobs', gen({ callback_url: hook('/flaky-job') }));
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const id = r.body.id as string;
    const view = await waitFor(async () => {
      const v = (await c.get(`/v1/jobs/${id}`)).body;
      return v.callback?.deliveries?.some((d: any) => d.ok) ? v : null;
    }, { timeoutMs: 20_000, what: 'a successful delivery in the job view' });
    expect(view.callback.url).toBe(hook('/flaky-job'));
    expect(view.callback.deliveries.map((d: any) => [d.attempt, d.status_code, d.ok])).toEqual([
      [1, 500, false],
      [2, 500, false],
      [3, 200, true],
    ]);
    for (const d of view.callback.deliveries) {
      expect(Date.parse(d.at)).toBeGreaterThan(0);
      expect(d.duration_ms).toBeGreaterThanOrEqual(0);
    }
    // The delivery is done for good: BullMQ holds it completed after 3 attempts, and nothing more arrives.
    const dj = await c.ctx.deliveries.queue().getJob(deliveryId('job', id));
    expect(await dj?.getState()).toBe('completed');
    expect(dj?.attemptsMade).toBe(3);
    const got = rx.on('/flaky-job');
    expect(got).toHaveLength(3);
    expect(new Set(got.map((g) => g.headers['x-hydra-delivery']))).toEqual(new Set([deliveryId('job', id)]));
    expect(got.every(verifies)).toBe(true);
    expect(got.every((g) => g.headers['x-hydra-event'] === 'job.completed' && g.headers['content-type'] === 'application/json')).toBe(true);
    // Every retry sends the same body; it is the job view.
    expect(new Set(got.map((g) => g.body)).size).toBe(1);
    const body = JSON.parse(got[0]!.body);
    expect(body).toMatchObject({ event: 'job.completed', data: { id, state: 'completed', model: MODEL } });
    expect(body.data.result.response).toEqual(expect.any(String));
    // A tampered body does not verify.
    expect(verifies({ ...got[0]!, body: got[0]!.body.replace('completed', 'failed') })).toBe(false);
  }, 30_000);

  it('refuses callbacks to link-local / metadata and uncovered loopback addresses at submit; the receiver gets nothing', async () => {
    const before = rx.got.length;
    for (const url of ['http://169.254.169.254/latest/meta-data/', `http://[::1]:${rx.port}/x`, `http://10.0.0.1:${rx.port}/x`, 'http://0xa9fea9fe/']) {
      const r = await c.post('/v1/jobs', gen({ callback_url: url }));
      expect(r.status, url).toBe(400);
      expect(r.body.error.code).toBe('bad_request');
      expect(r.body.error.details.fields[0].field).toBe('callback_url');
      expect(r.body.error.message).toMatch(/may not be called: .*(link-local|loopback|private)/);
    }
    expect((await c.post('/v1/jobs', gen({ callback_url: 'ftp://example.com/' }))).status).toBe(400);
    expect((await c.post('/v1/workflows', { steps: [{ id: 'a', model: MODEL, prompt: 'x' }], callback_url: 'http://169.254.169.254/' })).status).toBe(400);
    const b = await c.post('/v1/batches', { requests: [{ type: 'embed', model: 'nomic-embed-text', input: 'x', callback_url: 'http://169.254.169.254/' }] });
    expect(b.status).toBe(400);
    expect(b.body.error.details.fields[0].field).toBe('requests[0].callback_url');

    // With WEBHOOK_ALLOW empty, loopback in any spelling is refused too.
    const closed = await startCluster({ WEBHOOK_SECRET: SECRET });
    try {
      await closed.simWorker('n2', { vramGb: 24, models: [{ name: MODEL, sizeGb: 2.5 }], tokensPerSecond: 2000, loadMsPerGb: 0 });
      for (const url of [`http://localhost:${rx.port}/x`, `http://127.0.0.1:${rx.port}/x`, `http://2130706433:${rx.port}/x`, `http://0x7f.1:${rx.port}/x`, `http://[::ffff:127.0.0.1]:${rx.port}/x`]) {
        const r = await closed.post('/v1/jobs', gen({ callback_url: url }));
        expect(r.status, url).toBe(400);
        expect(r.body.error.message).toContain('WEBHOOK_ALLOW does not cover it');
      }
    } finally {
      await closed.stop();
    }
    expect(rx.got.length).toBe(before);
  }, 60_000);

  it('checks again at delivery: an address no longer allowed is logged as refused and not retried', async () => {
    const allow = c.ctx.config.WEBHOOK_ALLOW;
    // 1,000 tokens at 2,000/s: the job runs ~0.5 s, so the allow-list changes (as a DNS answer would) before it ends.
    const r = await c.post('/v1/jobs', gen({ callback_url: hook('/late'), options: { sim_answer_tokens: 1000, num_predict: 1000 } }));
    expect(r.status).toBe(202);
    (c.ctx.config as { WEBHOOK_ALLOW: string[] }).WEBHOOK_ALLOW = [];
    try {
      const view = await waitFor(async () => {
        const v = (await c.get(`/v1/jobs/${r.body.id}`)).body;
        return v.callback?.deliveries?.length ? v : null;
      }, { timeoutMs: 20_000, what: 'the refused delivery in the job view' });
      expect(view.state).toBe('completed');
      expect(view.callback.deliveries).toHaveLength(1);
      expect(view.callback.deliveries[0]).toMatchObject({ attempt: 1, ok: false, status_code: null, error: expect.stringMatching(/^refused: .*127\.0\.0\.1 is loopback/) });
      const dj = await c.ctx.deliveries.queue().getJob(deliveryId('job', r.body.id));
      await waitFor(async () => (await dj?.getState()) === 'failed', { what: 'the delivery to fail for good' });
      expect((await c.ctx.deliveries.queue().getJob(deliveryId('job', r.body.id)))?.attemptsMade).toBe(1);
    } finally {
      (c.ctx.config as { WEBHOOK_ALLOW: string[] }).WEBHOOK_ALLOW = allow;
    }
    expect(rx.on('/late')).toHaveLength(0);
  }, 30_000);

  it('delivers a batch callback and a workflow callback once each', async () => {
    const b = await c.post('/v1/batches', { requests: [0, 1, 2].map((i) => ({ type: 'embed', model: 'nomic-embed-text', input: `b${i}` })), callback_url: hook('/batch') });
    expect(b.status, JSON.stringify(b.body)).toBe(202);
    const w = await c.post('/v1/workflows', { steps: [{ id: 'a', model: MODEL, prompt: 'first', options: { sim_answer_tokens: 4 } }, { id: 'b', model: MODEL, prompt: 'then {{steps.a.output}}', depends_on: ['a'], options: { sim_answer_tokens: 4 } }], callback_url: hook('/workflow') });
    expect(w.status, JSON.stringify(w.body)).toBe(202);
    await waitFor(() => rx.on('/batch').length === 1 && rx.on('/workflow').length === 1, { timeoutMs: 20_000, what: 'both callbacks' });
    const batch = JSON.parse(rx.on('/batch')[0]!.body);
    expect(batch).toMatchObject({ event: 'batch.completed', data: { id: b.body.id, object: 'batch', state: 'completed', counts: { total: 3, completed: 3 } } });
    const wf = JSON.parse(rx.on('/workflow')[0]!.body);
    expect(wf).toMatchObject({ event: 'workflow.completed', data: { id: w.body.id, state: 'completed' } });
    expect(rx.on('/workflow')[0]!.headers['x-hydra-event']).toBe('workflow.completed');
    expect(verifies(rx.on('/batch')[0]!) && verifies(rx.on('/workflow')[0]!)).toBe(true);
    // Once each: both deliveries are complete, nothing else is queued for them.
    const q = c.ctx.deliveries.queue();
    expect(q.name).toBe(DELIVERY_QUEUE);
    expect(await (await q.getJob(deliveryId('batch', b.body.id)))?.getState()).toBe('completed');
    expect(await (await q.getJob(deliveryId('workflow', w.body.id)))?.getState()).toBe('completed');
    expect(rx.on('/batch')).toHaveLength(1);
  }, 30_000);

  it('delivers job.cancelled for a job cancelled before it ran', async () => {
    // The node's 4 slots busy with long jobs (~20 s each), so the job with the callback waits and the cancel removes it.
    const long = await Promise.all([0, 1, 2, 3].map((i) => c.post('/v1/jobs', gen({ prompt: `hold ${i}`, options: { sim_answer_tokens: 40_000, num_predict: 40_000 } }))));
    await waitFor(async () => (await Promise.all(long.map((l) => c.get(`/v1/jobs/${l.body.id}`)))).every((v) => v.body.state === 'active'), { what: 'four long jobs running' });
    try {
      const r = await c.post('/v1/jobs', gen({ callback_url: hook('/cancelled'), prompt: 'never runs' }));
      expect(r.status).toBe(202);
      expect((await c.get(`/v1/jobs/${r.body.id}`)).body.state).toBe('waiting');
      const d = await c.del(`/v1/jobs/${r.body.id}`);
      expect(d.body).toEqual({ id: r.body.id, state: 'cancelled' });
      await waitFor(() => rx.on('/cancelled').length === 1, { timeoutMs: 20_000, what: 'the job.cancelled callback' });
      const got = rx.on('/cancelled')[0]!;
      expect(got.headers['x-hydra-event']).toBe('job.cancelled');
      expect(JSON.parse(got.body)).toEqual({ event: 'job.cancelled', data: { id: r.body.id, state: 'cancelled' } });
      expect(verifies(got)).toBe(true);
    } finally {
      await Promise.all(long.map((l) => c.del(`/v1/jobs/${l.body.id}`)));
    }
  }, 40_000);
});
