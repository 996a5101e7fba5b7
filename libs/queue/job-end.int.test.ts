// Completing a job in one call (job-end.lua: BullMQ's moveToFinished + the stream's end + retire + the reservation and
// liveness entries) against real BullMQ: BullMQ then holds the job completed exactly as job.moveToCompleted leaves it;
// a run that lost its lock gets BullMQ's error and writes nothing.
import { randomBytes, randomUUID } from 'node:crypto';
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { metricsRecordLua, MetricsStore, STORED } from '../metrics/index.js';
import { nodePerfLua, PerfStore } from '../registry/index.js';
import { jobLockKey } from './bullmq-internals.js';
import { endWriter, jobEnder, type JobEnd, type JobEnder } from './job-end.js';
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
    end = jobEnder(redis, keys, lifecycle, { jobMetrics: metricsRecordLua(), nodePerf: nodePerfLua() });
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

  const endOf = (job: Job, nodeId: string, writes: JobEnd['writes']): JobEnd => ({
    stream: { key: keys.stream(job.id!), data: {}, tail: [], retentionS: 60 },
    retire: lifecycle.retirement('infer', 'infer.e', 'completed'),
    nodeId,
    liveJobs: keys.liveJobs('p1'),
    writes,
  });

  it('runs the writes that ride along after the completion, in order, built from the completed job, and hands each its reply', async () => {
    await q.add('infer:m:1b', { n: 3 }, { priority: 2 });
    const token = randomUUID();
    const job = (await w.getNextJob(token, { block: false }))!;
    const sub = new Redis(inject('redisUrl'));
    const heard: string[] = [];
    await sub.subscribe(`${keys.prefix}:test-done`);
    sub.on('message', (_c: string, m: string) => heard.push(m));
    await redis.set(`${keys.prefix}:not-a-list`, 'x');
    const replies: [unknown, string | null][] = [];
    const keep = (reply: unknown, err: Error | null) => void replies.push([reply, err ? err.message : null]);
    let seen: { attemptsMade: number; finishedOn?: number; returnvalue: unknown } | null = null;
    const metrics = new MetricsStore(redis, keys, 10);
    const perf = new PerfStore(redis, keys);
    await end(
      job,
      token,
      { response: 'y' },
      endOf(job, 'n3', (done) => {
        seen = { attemptsMade: done.attemptsMade, returnvalue: done.returnvalue, ...(done.finishedOn === undefined ? {} : { finishedOn: done.finishedOn }) };
        return [
          { kind: 'command', keys: [`${keys.prefix}:log`], args: ['LPUSH', `attempt ${done.attemptsMade}`], then: keep },
          // A write that fails gets its error; the ones after it still run, and the job's end stands.
          { kind: 'command', keys: [`${keys.prefix}:not-a-list`], args: ['LPUSH', 'z'], then: keep },
          { ...metrics.recordWrite('m:1b', [{ metric: STORED.jobsFinished, labels: { type: 'generate', node: 'n3', outcome: 'completed' }, amount: 1 }], (e) => keep(null, e)), then: keep },
          perf.recordWrite('n3', 'm:1b', { tokens_per_s: 10, ttft_ms: 5, job_ms: 100 }, 1000, (n, err) => keep(n, err)),
          // Sent nothing, run here once the end is recorded; the replies of the sent writes around it keep their order.
          { kind: 'local', then: () => void replies.push(['local', null]) },
          { kind: 'command', keys: [], args: ['PUBLISH', `${keys.prefix}:test-done`, `done ${job.id}`], then: keep },
        ];
      }),
    );
    expect(seen).toEqual({ attemptsMade: 1, returnvalue: { response: 'y' }, finishedOn: job.finishedOn });
    expect(await job.getState()).toBe('completed');
    expect(replies).toEqual([
      [1, null],
      [null, expect.stringMatching(/WRONGTYPE/)],
      [['recorded', 'm:1b'], null],
      [1, null],
      [expect.any(Number), null],
      ['local', null],
    ]);
    expect(await redis.lrange(`${keys.prefix}:log`, 0, -1)).toEqual(['attempt 1']);
    expect(Object.keys(await redis.hgetall(keys.metric(STORED.jobsFinished.key)))).toHaveLength(1);
    expect(Object.keys(await new PerfStore(redis, keys).perfOf('n3'))).toEqual(['m:1b']);
    await expect.poll(() => heard).toEqual([`done ${job.id}`]);
    sub.disconnect();
  });

  it('sends the same writes in one call of their own (after a final failure), each handed its reply or its error', async () => {
    const write = endWriter(redis, { jobMetrics: metricsRecordLua(), nodePerf: nodePerfLua() });
    await redis.set(`${keys.prefix}:not-a-list-2`, 'x');
    const replies: [unknown, string | null][] = [];
    const keep = (reply: unknown, err: Error | null) => void replies.push([reply, err ? err.message : null]);
    const metrics = new MetricsStore(redis, keys, 10);
    await write([
      { kind: 'local', then: () => void replies.push(['local', null]) },
      { kind: 'command', keys: [`${keys.prefix}:failed-log`], args: ['LPUSH', 'failed 1'], then: keep },
      { kind: 'command', keys: [`${keys.prefix}:not-a-list-2`], args: ['LPUSH', 'z'], then: keep },
      { ...metrics.recordWrite('m:1b', [{ metric: STORED.jobsFinished, labels: { type: 'generate', node: 'n5', outcome: 'failed' }, amount: 1 }], (e) => keep(null, e)), then: keep },
    ]);
    // The local write first: the end (moveToFailed) is recorded before these writes are sent.
    expect(replies).toEqual([
      ['local', null],
      [1, null],
      [null, expect.stringMatching(/WRONGTYPE/)],
      [['recorded', 'm:1b'], null],
    ]);
    expect(await redis.lrange(`${keys.prefix}:failed-log`, 0, -1)).toEqual(['failed 1']);
    expect(Object.keys(await redis.hgetall(keys.metric(STORED.jobsFinished.key))).some((f) => f.includes('n5'))).toBe(true);
  });

  it('builds the writes but runs none of them when BullMQ refuses, and leaves the Job as it was', async () => {
    await q.add('infer:m:1b', { n: 4 }, { priority: 2 });
    const job = (await w.getNextJob(randomUUID(), { block: false }))!;
    let local = 0;
    await expect(
      end(job, randomUUID(), { response: 'x' }, endOf(job, 'n4', () => [{ kind: 'command', keys: [`${keys.prefix}:never`], args: ['LPUSH', 'x'] }, { kind: 'local', then: () => void local++ }])),
    ).rejects.toThrow(/lock/i);
    expect(await redis.exists(`${keys.prefix}:never`)).toBe(0);
    // A local write (the metrics batch's) runs only for an end that was recorded.
    expect(local).toBe(0);
    expect(job.attemptsMade).toBe(0);
    expect(job.finishedOn).toBeUndefined();
    expect(job.returnvalue).toBeNull();
  });
});
