// How many dispatch rounds a job costs a worker. A round starts with the peek of every queue's head (peek-heads.lua),
// so its calls count the rounds. Jobs one at a time used to cost three each: the wake's round, one right after the
// take, and one when the job ended; now only the wake's, since the take says its queue had no other job left
// (take.lua) and a job's end wakes the dispatcher only when its last round left work behind for want of room. That
// last case is checked too: with one slot, queued jobs still start as each one ends, not at the next poll. Real
// worker child process, real Redis (MONITOR).
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from './support/cluster.js';
import { waitFor } from './support/wait.js';

describe('dispatch rounds per job', () => {
  let c: TestCluster;
  let mon: Redis | null = null;

  beforeAll(async () => {
    // Polls far apart: anything that starts within POLL_MS was started by a wake, not by a poll.
    c = await startCluster({ POLL_MS: '5000' });
    await c.simWorker('r1', { vramGb: 24, models: [{ name: 'm', sizeGb: 1 }], tokensPerSecond: 4000, loadMsPerGb: 0 }, { WORKER_CONCURRENCY: '1' });
  }, 60_000);
  afterAll(async () => {
    mon?.disconnect();
    await c?.stop();
  });

  /** Count the peeks (evalsha whose first key is a queue's `prioritized`) while `fn` runs. */
  async function peeksDuring(fn: () => Promise<void>): Promise<number> {
    const admin = new Redis(c.redisUrl);
    mon = await admin.monitor();
    let peeks = 0;
    mon.on('monitor', (_t: string, args: string[], source: string) => {
      if (source !== 'lua' && String(args[0]).toLowerCase() === 'evalsha' && Number(args[2]) > 0 && String(args[3]).endsWith(':prioritized')) peeks++;
    });
    try {
      await fn();
      // Whatever the end of the last job sets off lands within a few ms.
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      mon.disconnect();
      mon = null;
      admin.disconnect();
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
});
