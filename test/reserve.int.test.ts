// The node's reservation step (reserve.lua, fence.lua) against a real Redis: memory once per model, the backend's
// per-model slots, and the fence that holds memory back for a job that does not fit now.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hydraKeys } from '../libs/queue/index.js';
import { NodeRegistry, type ReserveRequest } from '../libs/registry/index.js';

describe('reserve and fence (Lua, real Redis)', () => {
  const keys = hydraKeys(`{rs${randomBytes(4).toString('hex')}}`);
  let redis: Redis;
  let reg: NodeRegistry;
  const now = 1_000_000;
  let n = 0;
  const base = (): Omit<ReserveRequest, 'token' | 'model' | 'mb'> => ({ nodeId: `node-${n}`, capacityMb: 10_000, now, ttlMs: 60_000, parallel: 2 });
  const take = (model: string, mb: number, o: Partial<ReserveRequest> = {}) => reg.reserve({ ...base(), token: randomBytes(6).toString('hex'), model, mb, ...o });

  beforeAll(() => {
    redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
    reg = new NodeRegistry(redis, keys);
  });
  afterAll(async () => {
    const left = await redis.keys(`${keys.prefix}*`);
    if (left.length) await redis.del(...left);
    redis.disconnect();
  });

  it('counts a model once, refuses a third request of it beyond the backend slots, and memory beyond capacity', async () => {
    n = 1;
    expect(await take('a', 4000)).toMatchObject({ ok: true, usedMb: 4000 });
    expect(await take('a', 4000)).toMatchObject({ ok: true, usedMb: 4000 }); // shares the loaded model
    expect(await take('a', 4000)).toMatchObject({ ok: false, why: 'busy' }); // parallel 2
    expect(await take('b', 7000)).toMatchObject({ ok: false, why: 'full', usedMb: 4000 });
    expect(await take('b', 6000)).toMatchObject({ ok: true, usedMb: 10_000 });
  });

  it('a fence refuses less urgent jobs that would delay the fenced one, admits those that fit beside it, lets more urgent ones by', async () => {
    n = 2;
    expect((await take('small', 3000)).ok).toBe(true); // running
    // big (8000) does not fit beside small (3000) in 10 000: fence it at BullMQ priority 5.
    expect(await reg.fence('node-2', { id: 'job-big', model: 'big', mb: 8000, bullPriority: 5 }, now, 5000)).toEqual({ ok: true });
    expect(await reg.fenceOf('node-2', now)).toEqual({ jobId: 'job-big', model: 'big', mb: 8000 });
    // Another small request shares the running model's memory but keeps it busy longer: refused.
    expect(await take('small', 3000, { forJobId: 'j1', bullPriority: 5 })).toMatchObject({ ok: false, why: 'fenced' });
    // A tiny model that fits beside running small + big? 3000 + 8000 > 10 000: no room for anything else.
    expect(await take('tiny', 500, { forJobId: 'j2', bullPriority: 7 })).toMatchObject({ ok: false, why: 'fenced' });
    // A more urgent job is not held back by it.
    expect(await take('tiny', 500, { forJobId: 'j3', bullPriority: 1 })).toMatchObject({ ok: true });
    // Another node cannot fence the same job; this one can refresh it.
    expect(await reg.fence('node-other', { id: 'job-big', model: 'big', mb: 8000, bullPriority: 5 }, now, 5000)).toEqual({ ok: false, owner: 'node-2' });
    expect(await reg.fence('node-2', { id: 'job-big', model: 'big', mb: 8000, bullPriority: 5 }, now, 5000)).toEqual({ ok: true });
    // The fence expires with its TTL (a crashed process does not hold the node for long).
    expect(await reg.fenceOf('node-2', now + 6000)).toBeNull();
  });

  it('backfills: a job that leaves room for the fenced one is admitted; admitting the fenced job lifts the fence', async () => {
    n = 3;
    const running = await take('small', 2000);
    expect(running.ok).toBe(true);
    expect((await reg.fence('node-3', { id: 'job-big-3', model: 'big', mb: 7000, bullPriority: 5 }, now, 5000)).ok).toBe(true);
    // 2000 + 900 + 7000 = 9900 ≤ 10 000: it cannot delay big, so it runs.
    expect(await take('tiny', 900, { forJobId: 'j4', bullPriority: 6 })).toMatchObject({ ok: true });
    expect(await take('tiny2', 200, { forJobId: 'j5', bullPriority: 6 })).toMatchObject({ ok: false, why: 'fenced' });
    // The fenced job itself is admitted once it fits (here: capacity grows), and the fence goes.
    expect(await take('big', 7000, { forJobId: 'job-big-3', bullPriority: 5, capacityMb: 20_000 })).toMatchObject({ ok: true });
    expect(await reg.fenceOf('node-3', now)).toBeNull();
    await reg.unfence('node-3', 'job-big-3');
    expect(await redis.get(keys.fenceClaim('job-big-3'))).toBeNull();
  });
});
