// Producer.addInference in one call (scripts/add-job.lua): Hydra's index, BullMQ's own add, the first node's wake.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { jobSettingsOf, loadConfig } from '../config/index.js';
import type { QueueInfo } from '../scheduling/index.js';
import { monitorRedis } from '../../test/support/redis-server.js';
import { createRedis } from './connection.js';
import { hydraKeys } from './keys.js';
import { Producer } from './producer.js';

const route = { queue: 'infer.m_7b', requested_node: null, reason: 'test', candidates: [] };
const payload = (prompt: string, extra: Record<string, unknown> = {}) => ({ call: { type: 'generate' as const, model: 'm:7b', prompt }, priority: 3, route, submitted_at: 1, attempts_log: [], ...extra });

describe('Producer.addInference', () => {
  const keys = hydraKeys(`{aj${randomBytes(4).toString('hex')}}`);
  const info: QueueInfo = { kind: 'class', name: 'infer.m_7b', model: 'm:7b', min_vram_mb: 0 };
  let admin: Redis;
  let sub: Redis;
  let producer: Producer;
  const heard: [string, string, boolean][] = [];
  beforeAll(async () => {
    admin = new Redis(inject('redisUrl'));
    sub = new Redis(inject('redisUrl'));
    // What a woken node sees: the message, and whether the job is already in the queue when it arrives.
    sub.on('message', (channel: string, queue: string) => {
      void admin.zcard(`${keys.prefix}:${queue}:prioritized`).then((n) => heard.push([channel, queue, n > 0]));
    });
    await sub.subscribe(keys.channels.wake, keys.channels.wakeNode('n1'), keys.channels.wakeNode('n2'));
    producer = new Producer(createRedis(inject('redisUrl'), 'worker'), keys, jobSettingsOf(loadConfig({})));
  });
  afterAll(async () => {
    await producer.close();
    const found = await admin.keys(`${keys.prefix}:*`);
    if (found.length > 0) await admin.del(...found);
    sub.disconnect();
    admin.disconnect();
  });

  it("adds the job exactly as BullMQ's Queue.add does, indexed, and wakes the first node in the same call", async () => {
    const session = 'ab'.repeat(8);
    await producer.addInference('aj-1', payload('one', { session }), info, ['n1', 'n2']);
    // The same job through BullMQ's own Queue.add, in a queue of its own, for comparison.
    const plain = producer.queue('infer.plain');
    const added = (await producer.queue(info.name).getJob('aj-1'))!;
    await plain.add(added.name, added.data, producer.jobOptions('infer', 'aj-1', 3));
    const mine = await admin.hgetall(`${keys.prefix}:${info.name}:aj-1`);
    const theirs = await admin.hgetall(`${keys.prefix}:infer.plain:aj-1`);
    const strip = (h: Record<string, string>) => Object.fromEntries(Object.entries(h).filter(([k]) => k !== 'timestamp'));
    expect(strip(mine)).toEqual(strip(theirs));
    expect(mine.name).toBe('infer:m:7b');
    expect(JSON.parse(mine.data!).call.prompt).toBe('one');
    // Priority and order as BullMQ keeps them: the same score in the prioritized set (Hydra's 3 is BullMQ's 8, times
    // 2^32, plus a counter), the same marker.
    const score = (q: string) => admin.zscore(`${keys.prefix}:${q}:prioritized`, 'aj-1');
    expect(await score(info.name)).toBe(await score('infer.plain'));
    expect(Math.floor(Number(await score(info.name)) / 2 ** 32)).toBe(8);
    expect(await admin.zrange(`${keys.prefix}:${info.name}:marker`, '0', '-1', 'WITHSCORES')).toEqual(await admin.zrange(`${keys.prefix}:infer.plain:marker`, '0', '-1', 'WITHSCORES'));
    // Hydra's index and the session key, with their TTLs.
    expect(await admin.get(keys.jobIndex('aj-1'))).toBe(info.name);
    expect(await admin.ttl(keys.jobIndex('aj-1'))).toBeGreaterThan(0);
    expect(await admin.get(keys.jobSession('aj-1'))).toBe(session);
    expect(await admin.ttl(keys.jobSession('aj-1'))).toBeGreaterThan(0);
    // The first node named is woken by the add itself, the job already in its queue; the rest a little later.
    await expect.poll(() => heard.length, { timeout: 2000 }).toBe(2);
    expect(heard[0]).toEqual([keys.channels.wakeNode('n1'), info.name, true]);
    expect(heard[1]).toEqual([keys.channels.wakeNode('n2'), info.name, true]);
  });

  it('without nodes named it wakes every worker process, in one command; an id added before changes nothing', async () => {
    heard.length = 0;
    // What reaches Redis: one script call (the index, the add and the wake inside it), where there were three commands.
    const mine = `:${(admin as unknown as { stream: { localPort: number } }).stream.localPort}`; // this test's own reads
    const seen: { lua: boolean; cmd: string }[] = [];
    const monitor = await monitorRedis(inject('redisUrl'), (args, source) => {
      if (!source.endsWith(mine) && args.some((a) => a.includes(keys.prefix))) seen.push({ lua: source === 'lua', cmd: args[0]!.toUpperCase() });
    });
    await producer.addInference('aj-3', payload('three'), info);
    await new Promise((r) => setTimeout(r, 50));
    monitor.close();
    expect(seen.filter((c) => !c.lua).map((c) => c.cmd)).toEqual(['EVALSHA']);
    expect(seen.filter((c) => c.lua).map((c) => c.cmd)).toEqual(expect.arrayContaining(['SET', 'HMSET', 'ZADD', 'PUBLISH']));
    await expect.poll(() => heard.length, { timeout: 2000 }).toBe(1);
    expect(heard[0]).toEqual([keys.channels.wake, info.name, true]);
    expect(await admin.exists(keys.jobSession('aj-3'))).toBe(0);
    const before = await admin.hgetall(`${keys.prefix}:${info.name}:aj-3`);
    heard.length = 0;
    await producer.addInference('aj-3', payload('changed'), info, ['n1']);
    expect(await admin.hgetall(`${keys.prefix}:${info.name}:aj-3`)).toEqual(before);
    expect(await admin.zrange(`${keys.prefix}:${info.name}:prioritized`, '0', '-1')).toEqual(['aj-1', 'aj-3']);
  });
});
