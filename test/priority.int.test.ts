// Priorities 1-10 across one busy slot, and aging: a priority-1 job completes under a stream of priority-10 jobs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from './support/cluster.js';
import { waitFor } from './support/wait.js';

const finishedOrder = async (c: TestCluster, ids: string[]) => {
  const views = await waitFor(async () => {
    const v = await Promise.all(ids.map(async (id) => (await c.get(`/v1/jobs/${id}`)).body));
    return v.every((x) => x.state === 'completed') ? v : null;
  }, { timeoutMs: 30_000, what: 'jobs to complete' });
  return views.sort((a, b) => Date.parse(a.started_at) - Date.parse(b.started_at) || a.result.routing_decision.queued_ms - b.result.routing_decision.queued_ms);
};

describe('priorities with one busy slot', () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({ AGING_STEP_MS: '600000', WORKER_CONCURRENCY: '1' });
    // ~20 tokens/s for a 9.3 GB model: each 4-token job takes ~200 ms, so the queue builds up behind the slot.
    await c.simWorker('one', { vramGb: 24, models: [{ name: 'm:1b', sizeGb: 9.3 }], tokensPerSecond: 20, loadMsPerGb: 0 });
  });
  afterAll(async () => c?.stop());

  it('runs higher priorities first', async () => {
    const blocker = (await c.post('/v1/jobs', { type: 'generate', model: 'm:1b', prompt: 'block', options: { num_predict: 8 } })).body.id;
    await waitFor(async () => (await c.get(`/v1/jobs/${blocker}`)).body.state === 'active', { what: 'the blocker to start' });
    const prios = [1, 5, 10, 3, 8, 2, 9];
    const ids: Record<string, number> = {};
    for (const p of prios) ids[(await c.post('/v1/jobs', { type: 'generate', model: 'm:1b', prompt: `p${p}`, priority: p, options: { num_predict: 2 } })).body.id] = p;
    const order = await finishedOrder(c, Object.keys(ids));
    expect(order.map((v) => v.priority)).toEqual([10, 9, 8, 5, 3, 2, 1]);
  });
});

describe('aging', () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({ AGING_STEP_MS: process.env.TEST_AGING_STEP_MS ?? '250', WORKER_CONCURRENCY: '1' });
    // 100 tokens/s for an 8 GB model: an 8-token job holds the only slot ~80 ms, so the stream below keeps the queue full.
    await c.simWorker('one', { vramGb: 24, models: [{ name: 'm:1b', sizeGb: 8 }], tokensPerSecond: 100, loadMsPerGb: 0 });
  });
  afterAll(async () => c?.stop());

  it('completes a priority-1 job under a sustained stream of priority-10 jobs', async () => {
    const submit = async (priority: number) => (await c.post('/v1/jobs', { type: 'generate', model: 'm:1b', prompt: `p${priority}`, priority, options: { num_predict: 8 } })).body.id as string;
    // Keep several priority-10 jobs waiting at all times.
    const highs: string[] = [];
    for (let i = 0; i < 4; i++) highs.push(await submit(10));
    const low = await submit(1);
    let lowDone = false;
    const deadline = Date.now() + 25_000;
    while (!lowDone && Date.now() < deadline) {
      const waiting = (await c.get('/v1/cluster/stats')).body.totals.waiting;
      if (waiting < 5) highs.push(await submit(10));
      lowDone = (await c.get(`/v1/jobs/${low}`)).body.state === 'completed';
      await new Promise((r) => setTimeout(r, 20)); // pacing of the load generator, not synchronisation
    }
    expect(lowDone).toBe(true);
    // It overtook priority-10 jobs that were already waiting when it started.
    const lowView = (await c.get(`/v1/jobs/${low}`)).body;
    const views = await Promise.all(highs.map(async (id) => (await c.get(`/v1/jobs/${id}`)).body));
    const lowStart = Date.parse(lowView.started_at);
    const overtaken = views.filter((h) => Date.parse(h.submitted_at) < lowStart && (h.started_at === null || Date.parse(h.started_at) > lowStart));
    expect(overtaken.length).toBeGreaterThan(0);
    expect(views.filter((h) => Date.parse(h.submitted_at) < Date.parse(lowView.submitted_at)).length).toBeGreaterThan(0);
  });
});
