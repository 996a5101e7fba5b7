// The one-call take (take.lua: reserve.lua + BullMQ's moveToActive) against real BullMQ queues: it hands out the job
// BullMQ's own getNextJob would, locked and marked as BullMQ marks it, with the reservation held; it moves nothing
// when the reservation is refused, gives the reservation back when there is no job, and reports the cancel flag.
import { randomBytes, randomUUID } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hydraKeys, jobLockKey, liveEntry, liveRegistrar } from '../queue/index.js';
import { jobTaker, NodeRegistry, type JobTaker } from './index.js';

describe('jobTaker (take.lua)', () => {
  const keys = hydraKeys(`{tk${randomBytes(4).toString('hex')}}`);
  let redis: Redis;
  let take: JobTaker;
  let registry: NodeRegistry;
  const queues: Queue[] = [];
  const workers: Worker[] = [];
  const pair = (name: string) => {
    const q = new Queue(name, { connection: redis, prefix: keys.prefix });
    const w = new Worker(name, undefined, { connection: redis, prefix: keys.prefix, autorun: false, name: 'proc-1', lockDuration: 5000 });
    queues.push(q);
    workers.push(w);
    return { q, w };
  };
  const reserve = { model: 'm:1b', mb: 1000, capacityMb: 4000, ttlMs: 10_000, parallel: 4 };
  const resv = async (node: string) => redis.hgetall(keys.reservations(node));

  beforeAll(() => {
    redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
    take = jobTaker(redis, keys);
    registry = new NodeRegistry(redis, keys);
  });
  afterAll(async () => {
    await Promise.all([...workers.map((w) => w.close()), ...queues.map((q) => q.close())]);
    const left = await redis.keys(`${keys.prefix}*`);
    if (left.length) await redis.del(...left);
    redis.disconnect();
  });

  it('hands out the job BullMQ would, in priority order, locked under the token, with the reservation held', async () => {
    const { q, w } = pair('infer.a');
    await q.add('infer:m:1b', { n: 1 }, { priority: 5 });
    const urgent = await q.add('infer:m:1b', { n: 2 }, { priority: 1 });
    const token = randomUUID();
    const live = { key: keys.liveJobs('proc-1'), value: liveEntry('infer.a', 'n1', token) };
    const r = await take(w, { nodeId: 'n1', token, now: Date.now(), reserve, live });
    expect(r.outcome).toBe('taken');
    if (r.outcome !== 'taken') return;
    expect(r.job.id).toBe(urgent.id);
    expect(r.job.data).toEqual({ n: 2 });
    expect(r.job.token).toBe(token);
    expect(r.cancelled).toBe(false);
    expect(await redis.get(jobLockKey(keys, 'infer.a', urgent.id!))).toBe(token);
    expect(await r.job.getState()).toBe('active');
    // As BullMQ's moveToActive marks it: processedOn, the worker's name, one attempt started.
    expect(r.job.processedOn).toBeGreaterThan(0);
    expect(await redis.hmget(keys.queueKey('infer.a', urgent.id!), 'pb', 'ats')).toEqual(['proc-1', '1']);
    expect(Object.keys(await resv('n1'))).toEqual([token]);
    // Tracked for fast failover in the same call: a process killed now has this job requeued at once.
    expect(await redis.hgetall(live.key)).toEqual({ [urgent.id!]: live.value });
    // The job completes through BullMQ with the token, and the next take gets the other job.
    await r.job.moveToCompleted('ok', token, false);
    expect(await r.job.getState()).toBe('completed');
    await registry.release('n1', token);
    const next = await take(w, { nodeId: 'n1', token: randomUUID(), now: Date.now(), reserve });
    expect(next.outcome === 'taken' && next.job.data).toEqual({ n: 1 });
  });

  it('moves nothing when the reservation is refused', async () => {
    const { q, w } = pair('infer.b');
    const job = await q.add('infer:m:1b', { n: 1 }, { priority: 3 });
    const r = await take(w, { nodeId: 'n2', token: randomUUID(), now: Date.now(), reserve: { ...reserve, mb: 5000 } });
    expect(r).toEqual({ outcome: 'refused', why: 'full' });
    expect(await job.getState()).toBe('prioritized');
    expect(await resv('n2')).toEqual({});
  });

  it('gives the reservation back when the queue has no job', async () => {
    const { w } = pair('infer.c');
    const token = randomUUID();
    const r = await take(w, { nodeId: 'n3', token, now: Date.now(), reserve, live: { key: keys.liveJobs('proc-3'), value: liveEntry('infer.c', 'n3', token) } });
    expect(r).toEqual({ outcome: 'empty' });
    expect(await resv('n3')).toEqual({});
    expect(await redis.exists(keys.liveJobs('proc-3'))).toBe(0);
  });

  it('takes without a reservation when none is asked (admin heads), and reports a cancel flag', async () => {
    const { q, w } = pair('node.n4');
    const job = await q.add('admin:m:1b', { op: 'pull' }, { priority: 1 });
    await redis.set(keys.cancelFlag(job.id!), 'test', 'EX', 60);
    const r = await take(w, { nodeId: 'n4', token: randomUUID(), now: Date.now() });
    expect(r.outcome === 'taken' && { id: r.job.id, cancelled: r.cancelled }).toEqual({ id: job.id, cancelled: true });
    expect(await resv('n4')).toEqual({});
  });

  it('a registration keeps the entries of jobs whose lock still holds their token, and only those', async () => {
    const { q, w } = pair('infer.d');
    const register = liveRegistrar(redis, keys);
    const key = keys.liveJobs('proc-d');
    const [a, b] = [await q.add('infer:m:1b', { n: 1 }, { priority: 1 }), await q.add('infer:m:1b', { n: 2 }, { priority: 2 })];
    const ta = randomUUID();
    const tb = randomUUID();
    // a: taken (its entry written by the take) but not yet tracked by the process; b: taken, then completed, its entry
    // left behind (an HDEL lost with a connection); plus an entry nobody can read.
    await take(w, { nodeId: 'n5', token: ta, now: Date.now(), live: { key, value: liveEntry('infer.d', 'n5', ta) } });
    const took = await take(w, { nodeId: 'n5', token: tb, now: Date.now(), live: { key, value: liveEntry('infer.d', 'n5', tb) } });
    if (took.outcome === 'taken') await took.job.moveToCompleted('ok', tb, false);
    await redis.hset(key, 'junk', 'not json');
    await register('proc-d', '42', new Map([['x9', liveEntry('infer.d', 'n5', 'tx')]]));
    expect(await redis.zscore(keys.live, 'proc-d')).toBe('42');
    expect(Object.keys(await redis.hgetall(key)).sort()).toEqual([a.id!, 'x9'].sort());
    expect(b.id).not.toBe(a.id);
  });
});
