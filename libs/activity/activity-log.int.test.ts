// The activity log against a real Redis: capped, newest first, and its readers.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hydraKeys } from '../queue/index.js';
import { ActivityLog } from './activity-log.js';
import type { ActivityEntry } from './entry.js';

const entry = (i: number, over: Partial<ActivityEntry> = {}): ActivityEntry => ({
  at: 1_000_000 + i,
  job_id: `job-${i}`,
  model: 'm',
  type: 'generate',
  node: 'n1',
  queue: 'infer.m',
  priority: 5,
  outcome: 'completed',
  reason: `reason ${i}`,
  queued_ms: i,
  total_ms: 100 + i,
  ttft_ms: 10 + i,
  ...over,
});

describe('ActivityLog', () => {
  const keys = hydraKeys(`{act${randomBytes(4).toString('hex')}}`);
  let redis: Redis;
  beforeAll(() => void (redis = new Redis(inject('redisUrl'))));
  afterAll(async () => {
    await redis.del(keys.activity);
    redis.disconnect();
  });

  it('keeps the newest `cap` entries, newest first', async () => {
    const log = new ActivityLog(redis, keys, { cap: 5 });
    for (let i = 0; i < 8; i++) await log.record(entry(i));
    expect(await redis.llen(keys.activity)).toBe(5);
    expect((await log.recentDecisions(3)).map((e) => e.job_id)).toEqual(['job-7', 'job-6', 'job-5']);
    expect((await log.recentDecisions(50)).map((e) => e.job_id)).toEqual(['job-7', 'job-6', 'job-5', 'job-4', 'job-3']);
    expect(await log.recentDecisions(0)).toEqual([]);
  });

  it('trims once the list holds a tenth more than the cap, and readers see the newest `cap` only', async () => {
    await redis.del(keys.activity);
    const log = new ActivityLog(redis, keys, { cap: 100 });
    for (let i = 0; i < 110; i++) await log.record(entry(i));
    expect(await redis.llen(keys.activity)).toBe(110);
    expect((await log.recentDecisions(500)).length).toBe(100);
    expect((await log.recentDecisions(1))[0]!.job_id).toBe('job-109');
    await log.record(entry(110));
    expect(await redis.llen(keys.activity)).toBe(100);
    expect((await log.recentDecisions(500)).at(-1)!.job_id).toBe('job-11');
    await redis.del(keys.activity);
  });

  it('skips entries it cannot read instead of failing', async () => {
    const log = new ActivityLog(redis, keys, { cap: 5 });
    await redis.lpush(keys.activity, 'garbage', '{"at":1}');
    await log.record(entry(9));
    expect((await log.recentDecisions(3)).map((e) => e.job_id)).toEqual(['job-9']);
  });

  it('summarizes latency per model over a window, and says when the log is too short for it', async () => {
    await redis.del(keys.activity);
    const log = new ActivityLog(redis, keys, { cap: 10 });
    for (let i = 1; i <= 4; i++) await log.record(entry(i, { model: 'a', at: 10_000 + i, total_ms: i * 100, ttft_ms: i * 10 }));
    await log.record(entry(5, { model: 'b', at: 10_005, outcome: 'failed', error_code: 'timeout' }));
    await log.record(entry(6, { model: 'a', at: 1_000 })); // outside the window
    const s = await log.latencyByModel(5_000, 10_010);
    expect(s.models).toEqual([
      { model: 'a', jobs: 4, failed: 0, total_ms: { p50: 200, p95: 400 }, ttft_ms: { p50: 20, p95: 40 } },
      { model: 'b', jobs: 1, failed: 1, total_ms: null, ttft_ms: null },
    ]);
    expect(s.truncated).toBe(false);
    // Cap 3: the log holds only the three newest entries, which do not reach back to the window's start.
    const short = new ActivityLog(redis, keys, { cap: 3 });
    await short.record(entry(7, { model: 'a', at: 10_009, total_ms: 50 }));
    expect(await short.latencyByModel(5_000, 10_010)).toMatchObject({ truncated: true });
  });
});
