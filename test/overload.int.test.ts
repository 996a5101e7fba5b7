// Overload is explicit: a full queue answers 503 (retryable, with a retry hint), and a waiting job shows its place in line.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from './support/cluster.js';
import { waitFor } from './support/wait.js';

describe('MAX_QUEUE_DEPTH and the place in line', () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({ MAX_QUEUE_DEPTH: '3', WORKER_CONCURRENCY: '1' });
    // 20 tokens/s: a 1-token job takes ~50 ms, the 400-token blocker ~20 s (it is cancelled at the end).
    await c.simWorker('one', { vramGb: 24, models: [{ name: 'm:1b', sizeGb: 4 }], tokensPerSecond: 20, loadMsPerGb: 0 });
  });
  afterAll(async () => c?.stop());

  it('refuses a submit to a full queue with 503, and shows waiting jobs their position and estimated start', async () => {
    const job = (prompt: string, n: number) => ({ type: 'generate', model: 'm:1b', prompt, options: { num_predict: n } });
    // A few completions give the queue a measured rate.
    for (let i = 0; i < 3; i++) expect((await c.post('/v1/jobs', { ...job(`warm${i}`, 1), wait: true })).body.state).toBe('completed');

    const blocker = (await c.post('/v1/jobs', job('block', 400))).body.id as string;
    await waitFor(async () => (await c.get(`/v1/jobs/${blocker}`)).body.state === 'active', { what: 'the blocker to start' });
    const waiting: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await c.post('/v1/jobs', job(`w${i}`, 1));
      expect(r.status).toBe(202);
      waiting.push(r.body.id);
    }

    const full = await c.post('/v1/jobs', job('one too many', 1));
    expect(full.status).toBe(503);
    expect(full.body.error).toMatchObject({ code: 'unavailable', retryable: true, details: { queue: 'infer.m_1b', waiting: 3, max_queue_depth: 3 } });
    expect(full.body.error.message).toMatch(/^queue infer\.m_1b is full \(3 waiting, MAX_QUEUE_DEPTH 3\); retry after ~\d+ s$/);
    expect(full.body.error.details.retry_after_s).toBeGreaterThanOrEqual(1);
    const raw = await fetch(`${c.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(job('still too many', 1)) });
    expect(raw.status).toBe(503);
    expect(Number(raw.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

    const views = await Promise.all(waiting.map(async (id) => (await c.get(`/v1/jobs/${id}`)).body));
    expect(views.map((v) => [v.state, v.queue_position])).toEqual([['waiting', 1], ['waiting', 2], ['waiting', 3]]);
    const starts = views.map((v) => Date.parse(v.estimated_start));
    expect(starts.every((t) => Number.isFinite(t) && t >= Date.parse(views[0].submitted_at))).toBe(true);
    expect([...starts].sort((a, b) => a - b)).toEqual(starts);
    // Only waiting jobs have a place in line.
    expect((await c.get(`/v1/jobs/${blocker}`)).body).not.toHaveProperty('queue_position');

    // Room again once the line moves: cancel the blocker, the waiting jobs run, a submit is accepted.
    await c.del(`/v1/jobs/${blocker}`);
    await waitFor(async () => (await Promise.all(waiting.map(async (id) => (await c.get(`/v1/jobs/${id}`)).body.state))).every((s) => s === 'completed'), {
      timeoutMs: 30_000,
      what: 'the waiting jobs to complete',
    });
    expect((await c.post('/v1/jobs', job('after', 1))).status).toBe(202);
  });
});
