// The staggered wake of a new job goes out only while the job still waits (wake-if-waiting.lua): a job the first node
// took wakes nobody else, a job still in its queue wakes every node named. Real Redis, real BullMQ queue and pub/sub.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Worker } from 'bullmq';
import { jobSettingsOf, loadConfig } from '../config/index.js';
import { bullConnection, createRedis } from './connection.js';
import { hydraKeys } from './keys.js';
import { Producer } from './producer.js';

describe('wakeIfWaiting (wake-if-waiting.lua)', () => {
  const keys = hydraKeys(`{wk${randomBytes(4).toString('hex')}}`);
  let admin: Redis;
  let sub: Redis;
  let redis: ReturnType<typeof createRedis>;
  let producer: Producer;
  const heard: { channel: string; queue: string }[] = [];
  beforeAll(async () => {
    admin = new Redis(inject('redisUrl'));
    sub = new Redis(inject('redisUrl'));
    await sub.psubscribe(`${keys.prefix}:ch:wake*`);
    sub.on('pmessage', (_p: string, channel: string, queue: string) => heard.push({ channel, queue }));
    redis = createRedis(inject('redisUrl'), 'worker');
    producer = new Producer(redis, keys, jobSettingsOf(loadConfig({})));
  });
  afterAll(async () => {
    await producer.close();
    await redis.quit();
    const found = await admin.keys(`${keys.prefix}:*`);
    if (found.length > 0) await admin.del(...found);
    sub.disconnect();
    admin.disconnect();
  });
  const settle = () => new Promise((r) => setTimeout(r, 50));

  it('wakes every node named while the job waits in its queue, on their own channels', async () => {
    const q = producer.queue('infer.wk');
    await q.add('infer:m', { x: 1 }, { jobId: 'wk-1', priority: 3 });
    heard.length = 0;
    expect(await producer.lifecycle.wakeIfWaiting(q.keys.prioritized!, 'infer.wk', 'wk-1', ['n2', 'n3'])).toBe('woken');
    await settle();
    expect(heard).toEqual([
      { channel: keys.channels.wakeNode('n2'), queue: 'infer.wk' },
      { channel: keys.channels.wakeNode('n3'), queue: 'infer.wk' },
    ]);
  });

  it('wakes nobody once the job was taken (active), or is gone', async () => {
    const q = producer.queue('infer.wk');
    const w = new Worker('infer.wk', null, { connection: bullConnection(redis), prefix: keys.prefix, autorun: false, skipVersionCheck: true });
    const taken = await w.getNextJob('tok-1');
    expect(taken?.id).toBe('wk-1');
    heard.length = 0;
    expect(await producer.lifecycle.wakeIfWaiting(q.keys.prioritized!, 'infer.wk', 'wk-1', ['n2'])).toBe('taken');
    expect(await producer.lifecycle.wakeIfWaiting(q.keys.prioritized!, 'infer.wk', 'no-such-job', ['n2'])).toBe('taken');
    await settle();
    expect(heard).toEqual([]);
    await w.close();
  });
});
