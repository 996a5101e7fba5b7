// Count retention of a job's side keys against a real Redis: they leave with the jobs BullMQ drops by count, never earlier.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { jobSideKeys, JobLifecycle } from './lifecycle.js';
import { hydraKeys } from './keys.js';
import { retentionCounts, type JobSettings } from './catalog.js';

const settings: JobSettings = { attempts: 1, backoffMs: 0, retentionS: 3600, retentionCount: 20, retentionFailedCount: 30 };

describe('JobLifecycle.retire', () => {
  const keys = hydraKeys(`{ret${randomBytes(4).toString('hex')}}`);
  let redis: Redis;
  let life: JobLifecycle;
  beforeAll(() => {
    redis = new Redis(inject('redisUrl'));
    life = new JobLifecycle({ redis, keys, retentionS: settings.retentionS, settings, queue: () => expect.unreachable() });
  });
  afterAll(async () => {
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${keys.prefix}:*`, 'COUNT', 1000);
      if (found.length > 0) await redis.del(...found);
      cursor = next;
    } while (cursor !== '0');
    redis.disconnect();
  });

  const writeSideKeys = async (id: string) => {
    const m = redis.multi();
    m.set(keys.jobIndex(id), 'infer.m', 'EX', 3600).xadd(keys.stream(id), '*', 'e', 'done', 'd', '{}').set(keys.streamReaders(id), '0', 'EX', 3600);
    await m.exec();
  };
  const alive = async (id: string) => (await redis.exists(...jobSideKeys(keys, id))) > 0;

  it('keeps the side keys of the newest `count` jobs per queue and state, deletes the older ones in batches', async () => {
    const n = 100;
    let deleted = 0;
    for (let i = 0; i < n; i++) {
      await writeSideKeys(`c${i}`);
      deleted += await life.retire('infer', 'infer.m', 'completed', `c${i}`);
    }
    // cap 20, batch 2: the list holds 20-21 ids; every job older than those has no side keys left.
    const kept = await redis.llen(keys.retired('infer.m', 'completed'));
    expect(kept).toBeGreaterThanOrEqual(20);
    expect(kept).toBeLessThan(22);
    expect(deleted).toBe(n - kept);
    for (let i = n - 20; i < n; i++) expect(await alive(`c${i}`)).toBe(true);
    for (let i = 0; i < n - kept; i++) expect(await alive(`c${i}`)).toBe(false);
  });

  it('counts failed jobs and each queue apart, and caps workflow and admin queues as BullMQ does', async () => {
    for (let i = 0; i < 40; i++) {
      await writeSideKeys(`f${i}`);
      await life.retire('infer', 'infer.m', 'failed', `f${i}`);
      await writeSideKeys(`o${i}`);
      await life.retire('infer', 'infer.other', 'completed', `o${i}`);
    }
    expect(await alive('f10')).toBe(true); // 30 failed kept: f10..f39
    expect(await alive('f5')).toBe(false);
    expect(await alive('o20')).toBe(true);
    expect(await alive('o5')).toBe(false);
    expect(retentionCounts({ ...settings, retentionCount: 50_000 }, 'workflow')).toEqual({ completed: 10_000, failed: 30 });
    expect(retentionCounts({ ...settings, retentionCount: 50_000 }, 'infer').completed).toBe(50_000);
  });

  it('deletes what the caller names for its kind (a workflow passes its state keys)', async () => {
    for (let i = 0; i < 25; i++) {
      await redis.set(`${keys.prefix}:wf:w${i}`, 'x');
      await life.retire('workflow', 'workflow', 'completed', `w${i}`, (id) => [`${keys.prefix}:wf:${id}`]);
    }
    expect(await redis.exists(`${keys.prefix}:wf:w0`)).toBe(0);
    expect(await redis.exists(`${keys.prefix}:wf:w24`)).toBe(1);
  });
});
