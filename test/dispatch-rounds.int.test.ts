// How many dispatch rounds a job costs a worker. A round starts with the peek of every queue's head (peek-heads.lua),
// so its calls count the rounds. Jobs one at a time used to cost three each: the wake's round, one right after the
// take, and one when the job ended; now only the wake's, since the take says its queue had no other job left
// (take.lua) and a job's end wakes the dispatcher only when its last round left work behind for want of room. That
// last case is checked too: with one slot, queued jobs still start as each one ends, not at the next poll, also when
// the job came while the slot was busy and its wake found no node with a free one. Real
// worker child process, real Redis (MONITOR).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from './support/cluster.js';
import { monitorRedis } from './support/redis-server.js';
import { waitFor } from './support/wait.js';

describe('dispatch rounds per job', () => {
  let c: TestCluster;

  beforeAll(async () => {
    // Polls far apart: anything that starts within POLL_MS was started by a wake, not by a poll.
    c = await startCluster({ POLL_MS: '5000' });
    await c.simWorker('r1', { vramGb: 24, models: [{ name: 'm', sizeGb: 1 }], tokensPerSecond: 4000, loadMsPerGb: 0 }, { WORKER_CONCURRENCY: '1' });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
  });

  /** Count this cluster's peeks (evalsha whose first key is one of its queues' `prioritized`) while `fn` runs. */
  async function peeksDuring(fn: () => Promise<void>): Promise<number> {
    let peeks = 0;
    const mon = await monitorRedis(c.redisUrl, (args, source) => {
      if (source !== 'lua' && String(args[0]).toLowerCase() === 'evalsha' && Number(args[2]) > 0 && String(args[3]).startsWith(`${c.prefix}:`) && String(args[3]).endsWith(':prioritized')) peeks++;
    });
    try {
      await fn();
      // Whatever the end of the last job sets off lands within a few ms.
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      mon.close();
    }
    return peeks;
  }

  it('costs one round per job when jobs come one at a time, and each still starts on its wake', async () => {
    await c.post('/v1/jobs', { type: 'generate', model: 'm', prompt: 'warm', wait: true });
    const JOBS = 10;
    const took: number[] = [];
    const peeks = await peeksDuring(async () => {
      for (let i = 0; i < JOBS; i++) {
        const t0 = Date.now();
        const r = await c.post('/v1/jobs', { type: 'generate', model: 'm', prompt: `one ${i}`, options: { num_predict: 2 }, wait: true });
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        took.push(Date.now() - t0);
      }
    });
    // Three rounds per job before (30 here); one per job now, with room for a poll falling into the run.
    expect(peeks, `${peeks} peeks for ${JOBS} jobs`).toBeLessThanOrEqual(JOBS + 2);
    expect(peeks).toBeGreaterThanOrEqual(JOBS);
    expect(Math.max(...took), `job times ${took.join(' ')}`).toBeLessThan(2500);
  }, 60_000);

  it('starts a queued job as soon as the one holding the only slot ends, not at the next poll', async () => {
    const t0 = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await c.post('/v1/jobs', { type: 'generate', model: 'm', prompt: `queued ${i}`, options: { num_predict: 50 } });
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      ids.push(r.body.id);
    }
    for (const id of ids) await waitFor(async () => (await c.get(`/v1/jobs/${id}`)).body.state === 'completed', { what: `job ${id} completed`, intervalMs: 20 });
    // Four jobs through one slot: three of them waited for an end. Each waiting for a poll would take 3 × 5 s.
    expect(Date.now() - t0).toBeLessThan(4000);
  }, 60_000);

  it('starts a job that came while the only slot was busy, and the view said so, as that slot frees', async () => {
    // The first job holds the slot a few seconds, long enough for the API's view of the registry to show it.
    const long = (await c.post('/v1/jobs', { type: 'generate', model: 'm', prompt: 'long', options: { num_predict: 50_000, sim_answer_tokens: 50_000 } })).body.id as string;
    await waitFor(async () => (await c.get(`/v1/jobs/${long}`)).body.state === 'active', { what: 'the long job to start', intervalMs: 20 });
    await waitFor(async () => (await c.nodes()).find((n) => n.id === 'r1')?.active_jobs === 1, { what: 'the registry to show r1 full', intervalMs: 50 });
    // /v1/nodes reads the registry; what the API wakes by is its shared snapshot, up to ~750 ms older.
    await new Promise((r) => setTimeout(r, 1200));
    // So the API names no node for the next job: its wake goes to every process, whose only agent has no free slot.
    const next = (await c.post('/v1/jobs', { type: 'generate', model: 'm', prompt: 'next', options: { num_predict: 2 } })).body.id as string;
    const ended = async (id: string) => {
      const v = (await c.get(`/v1/jobs/${id}`)).body;
      return v.state === 'completed' ? v : null;
    };
    const a = await waitFor(() => ended(long), { what: 'the long job to end', intervalMs: 20 });
    const b = await waitFor(() => ended(next), { what: 'the next job to end', intervalMs: 20 });
    expect(b.attempts_made).toBe(1);
    // It starts as the long one ends; waiting for the poll (POLL_MS 5 s from the long job's take) was ~3.5 s late.
    const gap = Date.parse(b.started_at) - Date.parse(a.finished_at);
    expect(gap, `started ${gap} ms after the slot freed`).toBeLessThan(1000);
  }, 60_000);
});
