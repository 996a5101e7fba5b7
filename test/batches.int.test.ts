// Batches against a real cluster (simulated nodes): 1,000 embeddings in one POST /v1/batches run to completed=1000, their
// results page through in request order and download as NDJSON; a bad or unroutable item or too many items refuse the
// whole batch with nothing added; a cancel removes waiting items and aborts running ones; an Idempotency-Key replays.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classQueueName } from '../libs/scheduling/index.js';
import { startCluster, type TestCluster } from './support/cluster.js';
import { waitFor } from './support/wait.js';

const EMBED = 'nomic-embed-text';
const SLOW = 'qwen3:4b';
const WIDTH = 32;

describe('POST /v1/batches', () => {
  let c: TestCluster;
  /** Jobs ever added to a model's class queue (waiting, running or ended). */
  const jobsIn = async (model: string) => {
    const q = c.ctx.producer.queue(classQueueName(model));
    const n = await q.getJobCounts('waiting', 'prioritized', 'active', 'completed', 'failed', 'delayed');
    return Object.values(n).reduce((a, b) => a + b, 0);
  };
  const batchKeys = async () => c.ctx.redis.keys(`${c.prefix}:batch:*`);

  beforeAll(async () => {
    c = await startCluster({ JOB_ATTEMPTS: '1', BATCH_MAX_REQUESTS: '1000' });
    await Promise.all([
      c.simWorker('emb1', { vramGb: 8, models: [{ name: EMBED, sizeGb: 0.27, embeddingLength: WIDTH }], parallel: 8, loadMsPerGb: 0 }, { WORKER_CONCURRENCY: '8' }),
      c.simWorker('emb2', { vramGb: 8, models: [{ name: EMBED, sizeGb: 0.27, embeddingLength: WIDTH }], parallel: 8, loadMsPerGb: 0 }, { WORKER_CONCURRENCY: '8' }),
      // 2 slots, 20 tokens/s: a 2000-token answer runs ~100 s, so its jobs are still running or waiting when cancelled.
      c.simWorker('slow', { vramGb: 24, models: [{ name: SLOW, sizeGb: 2.5 }], parallel: 2, tokensPerSecond: 20, loadMsPerGb: 0 }, { WORKER_CONCURRENCY: '2' }),
    ]);
  });
  afterAll(async () => c?.stop());

  it('runs 1,000 embeddings: counts reach completed=1000, results page in order, NDJSON has every line', async () => {
    const requests = Array.from({ length: 1000 }, (_, i) => ({ type: 'embed', model: EMBED, input: `item number ${i}` }));
    const t0 = Date.now();
    const r = await c.post('/v1/batches', { requests });
    expect(r.status, JSON.stringify(r.body).slice(0, 500)).toBe(202);
    const id = r.body.id as string;
    expect(r.body).toMatchObject({ object: 'batch', state: 'running', callback_url: null, results_url: `/v1/batches/${id}/results` });
    expect(r.body.counts.total).toBe(1000);
    expect(r.body.counts.waiting + r.body.counts.active + r.body.counts.completed).toBe(1000);
    const submitMs = Date.now() - t0;

    const done = await waitFor(async () => {
      const v = (await c.get(`/v1/batches/${id}?limit=1`)).body;
      return v.state === 'completed' ? v : null;
    }, { timeoutMs: 120_000, intervalMs: 250, what: 'the batch to complete' });
    expect(done.counts).toEqual({ total: 1000, waiting: 0, active: 0, completed: 1000, failed: 0, cancelled: 0 });
    expect(done.ended_at).not.toBeNull();
    // Each was routed like a single job, to the model's class queue.
    expect(await jobsIn(EMBED)).toBe(1000);

    // Paged: offset/limit, next_offset until the last page.
    const seen: any[] = [];
    let offset: number | null = 0;
    let pages = 0;
    while (offset !== null) {
      const p: { status: number; body: any } = await c.get(`/v1/batches/${id}?offset=${offset}&limit=300`);
      expect(p.status).toBe(200);
      seen.push(...p.body.results);
      offset = p.body.next_offset;
      pages++;
    }
    expect(pages).toBe(4);
    expect(seen.map((x) => x.index)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(seen.every((x) => x.state === 'completed' && x.job_id === `${id}.${x.index}` && x.result.embeddings[0].length === WIDTH)).toBe(true);
    // The same answer as the job view shows.
    const job = await c.get(`/v1/jobs/${seen[7].job_id}`);
    expect(job.body.result.embeddings).toEqual(seen[7].result.embeddings);

    const nd = await fetch(`${c.url}/v1/batches/${id}/results`);
    expect(nd.status).toBe(200);
    expect(nd.headers.get('content-type')).toContain('application/x-ndjson');
    const lines = (await nd.text()).trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(1000);
    expect(lines.map((l) => l.index)).toEqual(seen.map((x) => x.index));
    expect(lines[999]).toEqual(seen[999]);
    console.log(`batch of 1000 embeddings: submitted in ${submitMs} ms, completed in ${Date.parse(done.ended_at) - Date.parse(done.created_at)} ms`);
  }, 180_000);

  it('refuses a batch with a bad item (400 naming requests[i].field), an unroutable one (422) or too many items; nothing is added', async () => {
    const before = await jobsIn(EMBED);
    const keys = (await batchKeys()).length;
    const bad = await c.post('/v1/batches', { requests: [{ type: 'embed', model: EMBED, input: 'fine' }, { type: 'embed', model: EMBED }, { type: 'embed', model: EMBED, input: 'x', wait: true }] });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('bad_request');
    expect(bad.body.error.details.fields.map((f: any) => f.field)).toEqual(['requests[1].input', 'requests[2].wait']);
    const unknown = await c.post('/v1/batches', { requests: [{ type: 'embed', model: EMBED, input: 'fine' }, { type: 'embed', model: 'no-such-model', input: 'x' }] });
    expect(unknown.status).toBe(422);
    expect(unknown.body.error.message).toMatch(/^requests\[1\]: /);
    const over = await c.post('/v1/batches', { requests: Array.from({ length: 1001 }, (_, i) => ({ type: 'embed', model: EMBED, input: `x${i}` })) });
    expect(over.status).toBe(400);
    expect(over.body.error.message).toContain('at most 1000 per batch (BATCH_MAX_REQUESTS)');
    expect((await c.post('/v1/batches', { requests: [] })).status).toBe(400);
    expect(await jobsIn(EMBED)).toBe(before);
    expect((await batchKeys()).length).toBe(keys);
    expect((await c.get('/v1/batches/batch-nope')).status).toBe(404);
  });

  it('cancels a batch on a slow node: waiting items removed, running ones aborted, state cancelled', async () => {
    const requests = Array.from({ length: 6 }, (_, i) => ({ type: 'generate', model: SLOW, prompt: `long ${i}`, cache: false, options: { num_predict: 2000, sim_answer_tokens: 2000 } }));
    const r = await c.post('/v1/batches', { requests });
    expect(r.status).toBe(202);
    const id = r.body.id as string;
    await waitFor(async () => (await c.get(`/v1/batches/${id}`)).body.counts.active === 2, { timeoutMs: 20_000, what: 'two items running on the slow node' });
    const cancelled = await c.post(`/v1/batches/${id}/cancel`, {});
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.state).toBe('cancelled');
    expect(cancelled.body.counts.cancelled).toBeGreaterThanOrEqual(4);
    const end = await waitFor(async () => {
      const v = (await c.get(`/v1/batches/${id}`)).body;
      return v.ended_at ? v : null;
    }, { timeoutMs: 20_000, what: 'the aborted items to end' });
    expect(end.state).toBe('cancelled');
    expect(end.counts).toMatchObject({ total: 6, waiting: 0, active: 0, completed: 0, cancelled: 6 });
    expect(end.results.every((x: any) => x.state === 'cancelled' && x.error.code === 'cancelled')).toBe(true);
    // A finished batch cannot be cancelled again.
    expect((await c.post(`/v1/batches/${id}/cancel`, {})).status).toBe(409);
    expect((await c.post('/v1/batches/batch-nope/cancel', {})).status).toBe(404);
  }, 60_000);

  it('honours Idempotency-Key: a repeat answers the same batch and adds nothing', async () => {
    const body = { requests: [{ type: 'embed', model: EMBED, input: 'idem a' }, { type: 'embed', model: EMBED, input: 'idem b' }] };
    const send = () => fetch(`${c.url}/v1/batches`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': 'batch-idem-1' }, body: JSON.stringify(body) });
    const first = await send();
    expect(first.status).toBe(202);
    const id = ((await first.json()) as any).id;
    const before = await jobsIn(EMBED);
    const again = await send();
    expect(again.status).toBe(202);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(((await again.json()) as any).id).toBe(id);
    expect(await jobsIn(EMBED)).toBe(before);
    const other = await fetch(`${c.url}/v1/batches`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': 'batch-idem-1' }, body: JSON.stringify({ requests: [body.requests[0]] }) });
    expect(other.status).toBe(422);
  });
});
