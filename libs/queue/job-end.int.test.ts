// Completing a job in one call (job-end.lua: BullMQ's moveToFinished + the stream's end + retire + the reservation and
// liveness entries) against real BullMQ: BullMQ then holds the job completed exactly as job.moveToCompleted leaves it;
// a run that lost its lock gets BullMQ's error and writes nothing.
import { randomBytes, randomUUID } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { jobLockKey } from './bullmq-internals.js';
import { jobEnder, type JobEnder } from './job-end.js';
import { hydraKeys } from './keys.js';
import { JobLifecycle } from './lifecycle.js';
import { TokenStream } from './token-stream.js';

describe('jobEnder (job-end.lua)', () => {
  const keys = hydraKeys(`{je${randomBytes(4).toString('hex')}}`);
  let redis: Redis;
  let end: JobEnder;
  let lifecycle: JobLifecycle;
  let q: Queue;
  let w: Worker;
  beforeAll(() => {
    redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
    q = new Queue('infer.e', { connection: redis, prefix: keys.prefix });
    w = new Worker('infer.e', undefined, { connection: redis, prefix: keys.prefix, autorun: false, lockDuration: 5000, metrics: { maxDataPoints: 100 } });
    lifecycle = new JobLifecycle({ redis, keys, retentionS: 60, settings: { retentionS: 60, retentionCount: 1000, failedRetentionCount: 1000 } as never, queue: () => q });
    end = jobEnder(redis, keys, lifecycle);
  });
  afterAll(async () => {
    await Promise.all([w.close(), q.close()]);
    const left = await redis.keys(`${keys.prefix}*`);
    if (left.length) await redis.del(...left);
    redis.disconnect();
  });
  const events = async (k: string) => (await redis.xrange(k, '-', '+')).map(([, f]) => `${f[1]}:${f[3]}`);

  it('completes the job as BullMQ does and writes the rest of its end in the same call', async () => {
    const added = await q.add('infer:m:1b', { n: 1 }, { priority: 2, removeOnComplete: { count: 10 } });
    const token = randomUUID();
    const job = (await w.getNextJob(token, { block: false }))!;
    const live = keys.liveJobs('p1');
    await redis.hset(keys.reservations('n1'), token, `m:1b|100|${Date.now() + 60_000}`);
    await redis.hset(live, job.id!, '{}');
    const stream = new TokenStream(redis, keys.stream(job.id!), { flushMs: 1000, retentionS: 60 });
    stream.push('he');
    stream.push('llo'); // held: it goes with the end
    const result = { response: 'hello' };
    const r = await end(job, token, result, {
      stream: { key: keys.stream(job.id!), data: result, tail: stream.takeTail(), retentionS: 60 },
      retire: lifecycle.retirement('infer', 'infer.e', 'completed'),
      nodeId: 'n1',
      liveJobs: live,
    });
    expect(r).toEqual({ stream: 'ended', retired: [] });
    // BullMQ's view: completed with the answer, the lock released, the attempt counted, the metrics point written.
    const again = (await q.getJob(added.id!))!;
    expect(await again.getState()).toBe('completed');
    expect(again.returnvalue).toEqual(result);
    expect(again.attemptsMade).toBe(1);
    expect(again.finishedOn).toBe(job.finishedOn);
    expect(job.attemptsMade).toBe(1);
    expect(await redis.exists(jobLockKey(keys, 'infer.e', job.id!))).toBe(0);
    expect((await q.getMetrics('completed')).meta.count).toBe(1);
    // Hydra's part of the end.
    expect(await events(keys.stream(job.id!))).toEqual(['token:he', 'token:llo', `done:${JSON.stringify(result)}`]);
    expect(await redis.ttl(keys.stream(job.id!))).toBeGreaterThan(50);
    expect(await redis.lrange(keys.retired('infer.e', 'completed'), 0, -1)).toEqual([job.id]);
    expect(await redis.hexists(keys.reservations('n1'), token)).toBe(0);
    expect(await redis.hexists(live, job.id!)).toBe(0);
  });

  it("refuses a run that lost its lock with BullMQ's error, and writes nothing", async () => {
    await q.add('infer:m:1b', { n: 2 }, { priority: 2 });
    const token = randomUUID();
    const job = (await w.getNextJob(token, { block: false }))!;
    await redis.hset(keys.reservations('n2'), token, `m:1b|100|${Date.now() + 60_000}`);
    await expect(
      end(job, randomUUID(), { response: 'x' }, { stream: { key: keys.stream(job.id!), data: {}, tail: [], retentionS: 60 }, retire: lifecycle.retirement('infer', 'infer.e', 'completed'), nodeId: 'n2', liveJobs: keys.liveJobs('p1') }),
    ).rejects.toThrow(/lock/i);
    expect(await job.getState()).toBe('active');
    expect(await redis.exists(keys.stream(job.id!))).toBe(0);
    expect(await redis.hexists(keys.reservations('n2'), token)).toBe(1);
  });
});
