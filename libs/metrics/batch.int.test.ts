// The job metrics batch against a real Redis: the jobs of an interval recorded in one call per model, adding up to
// exactly what recording each job on its own writes; nothing before the interval, what is left on close.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { silentLogger } from '../logger/index.js';
import { hydraKeys, type HydraKeys } from '../queue/index.js';
import { monitorRedis } from '../../test/support/redis-server.js';
import { MetricsBatch } from './batch.js';
import { finishedJobIncrements } from './finished-job.js';
import { MetricsStore, STORED } from './stored.js';

const jobIncs = (i: number) =>
  finishedJobIncrements({
    type: i % 3 === 0 ? 'chat' : 'generate',
    node: 'n1',
    state: i % 5 === 4 ? 'failed' : 'completed',
    ...(i % 5 === 4 ? { code: 'backend_error' } : {}),
    submittedAt: 1000,
    startedAt: 1000 + (i % 7) * 30,
    finishedAt: 1500 + i * 40,
    attemptsMade: 1 + (i % 2),
    stalls: 0,
    warm: true,
    ...(i % 5 === 4 ? {} : { result: { prompt_tokens: 10 + i, completion_tokens: 20 + i, eval_duration_ms: 100 + i, load_duration_ms: i % 2 ? 0 : 250 } }),
  });

describe('MetricsBatch (real Redis)', () => {
  let redis: Redis;
  const fresh = () => hydraKeys(`{mb${randomBytes(4).toString('hex')}}`);
  const used: HydraKeys[] = [];
  const all = async (keys: HydraKeys) => Object.fromEntries(await Promise.all(Object.values(STORED).map(async (m) => [m.key, await redis.hgetall(keys.metric(m.key))] as const)));

  beforeAll(() => {
    redis = new Redis(inject('redisUrl'));
  });
  afterAll(async () => {
    for (const k of used) {
      const left = await redis.keys(`${k.prefix}*`);
      if (left.length) await redis.del(...left);
    }
    redis.disconnect();
  });

  it('records the jobs of an interval in one call per model, adding up to what recording each job writes', async () => {
    const one = fresh();
    const batched = fresh();
    used.push(one, batched);
    const each = new MetricsStore(redis, one, 10);
    for (let i = 0; i < 20; i++) await each.record(i % 4 === 0 ? 'other-model' : 'm', jobIncs(i));

    const store = new MetricsStore(redis, batched, 10);
    const batch = new MetricsBatch(store, 60_000, silentLogger());
    let calls = 0;
    let inside = 0;
    const mon = await monitorRedis(inject('redisUrl'), (args, source) => {
      if (!args.some((a) => String(a).startsWith(batched.prefix))) return;
      if (source === 'lua') inside++;
      else if (/^evalsha$/i.test(String(args[0]))) calls++;
    });
    try {
      for (let i = 0; i < 20; i++) batch.add(i % 4 === 0 ? 'other-model' : 'm', jobIncs(i));
      await new Promise((r) => setTimeout(r, 100));
      // Nothing before the interval (60 s here): held in the process.
      expect(Object.values(await all(batched)).every((h) => Object.keys(h).length === 0)).toBe(true);
      await batch.flush();
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      mon.close();
    }
    // The same fields with the same values (sums of seconds to float precision: added up here, not in Redis).
    const [got, want] = [await all(batched), await all(one)];
    for (const m of Object.keys(want)) {
      expect(Object.keys(got[m]!).sort(), m).toEqual(Object.keys(want[m]!).sort());
      for (const [f, v] of Object.entries(want[m]!)) expect(Number(got[m]![f]), `${m} ${f}`).toBeCloseTo(Number(v), 6);
    }
    expect(Object.keys(want.jobs!).length).toBeGreaterThan(2);
    // Two models: two calls, where each job's end carried one of its own (20).
    expect(calls).toBe(2);
    // Per job, one by one, each call made ~13 inside Lua; batched, the same fields add up into one HINCRBY each.
    expect(inside).toBeLessThan(20 * 5);
  });

  it('records by itself once the interval is over, and what is left on close', async () => {
    const keys = fresh();
    used.push(keys);
    const store = new MetricsStore(redis, keys, 10);
    const batch = new MetricsBatch(store, 50, silentLogger());
    const finished = async () => Number((await redis.hgetall(keys.metric(STORED.jobsFinished.key)))['generate|m|n1|completed'] ?? 0);
    batch.add('m', jobIncs(1));
    batch.add('m', jobIncs(2));
    await expect.poll(finished, { timeout: 2000 }).toBe(2);
    batch.add('m', jobIncs(7));
    await batch.close();
    expect(await finished()).toBe(3);
  });
});
