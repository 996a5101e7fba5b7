// Aging with a backlog bigger than one read: the oldest waiting jobs are promoted, and run in FIFO order among themselves.
import { randomBytes, randomUUID } from 'node:crypto';
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Ager } from '../apps/worker/aging.js';
import { createLogger } from '../libs/logger/index.js';
import { hydraKeys, prioritizedOldest } from '../libs/queue/index.js';
import { toBullPriority } from '../libs/scheduling/index.js';

describe('aging a backlog of 600 low-priority jobs', () => {
  const keys = hydraKeys(`{ag${randomBytes(4).toString('hex')}}`);
  const name = 'infer.m_1b_latest';
  const stepMs = 1000;
  let redis: Redis;
  let queue: Queue;
  let worker: Worker;
  let ager: Ager;

  beforeAll(() => {
    redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
    queue = new Queue(name, { connection: redis, prefix: keys.prefix });
    worker = new Worker(name, undefined, { connection: redis, prefix: keys.prefix, autorun: false });
    ager = new Ager(redis, keys, stepMs, createLogger({ name: 'aging-test', level: 'silent' }));
  });
  afterAll(async () => {
    await Promise.all([ager.close(), worker.close(), queue.close()]);
    const left = await redis.keys(`${keys.prefix}*`);
    if (left.length) await redis.del(...left);
    redis.disconnect();
  });

  it('promotes the oldest 500, which then run before younger jobs and in the order they were added', async () => {
    // Hydra's job ids are uuids: with changePriority lifo, promoted jobs would run in id order, not age order.
    const low = Array.from({ length: 600 }, (_, i) => ({ name: 'infer:m:1b', data: { i }, opts: { jobId: randomUUID(), priority: toBullPriority(1) } }));
    const lowIds = (await queue.addBulk(low)).map((j) => j.id!);
    // A job already waiting one band up, added after the backlog and (by its timestamp) not yet due for aging.
    const at = Date.now() + stepMs;
    const mid = (await queue.add('infer:m:1b', { mid: true }, { jobId: randomUUID(), priority: toBullPriority(2), timestamp: at })).id!;

    // One step later every low job is due one level; the pass reads the oldest 500 of the band.
    const promoted = await ager.pass([{ kind: 'class', name, model: 'm:1b', min_vram_mb: 0 }], 'test', at);
    expect(promoted).toBe(500);
    const band9 = await prioritizedOldest(redis, keys, name, [toBullPriority(2)], 1000);
    expect(band9.map((e) => e.id)).toEqual([mid, ...lowIds.slice(0, 500)]);
    const band10 = await prioritizedOldest(redis, keys, name, [toBullPriority(1)], 1000);
    expect(band10.map((e) => e.id)).toEqual(lowIds.slice(500));

    // The order BullMQ hands them out: the job already in the band, the promoted in add order, then the young rest.
    const ran: string[] = [];
    for (;;) {
      const token = randomUUID();
      const job = (await worker.getNextJob(token, { block: false })) as Job | undefined;
      if (!job) break;
      ran.push(job.id!);
      await job.moveToCompleted('ok', token, false);
    }
    expect(ran).toEqual([mid, ...lowIds]);
  });
});
