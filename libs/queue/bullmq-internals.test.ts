// BullMQ's Redis layout as Hydra reads it, checked against real BullMQ jobs: fails when an upgrade changes the layout.
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitFor } from '../../test/support/wait.js';
import {
  BULLMQ_LAYOUT_VERSION,
  deadWorkerRequeuer,
  dueDelayedMaxScore,
  headPeeker,
  holdsLock,
  jobLockKey,
  prioritizedOldest,
  priorityOfScore,
  queueStructures,
  readJobFields,
  recentFinishes,
  waitingCount,
  waitingPosition,
  type HeadPeeker,
} from './bullmq-internals.js';
import { hydraKeys } from './keys.js';

const installed = (JSON.parse(readFileSync(new URL('../../node_modules/bullmq/package.json', import.meta.url), 'utf8')) as { version: string }).version;

describe('bullmq internals', () => {
  const keys = hydraKeys(`{bi${randomBytes(4).toString('hex')}}`);
  let redis: Redis;
  let peek: HeadPeeker;
  const queues: Queue[] = [];
  const workers = new Map<string, Worker>();
  const queue = (name: string) => {
    const q = new Queue(name, { connection: redis, prefix: keys.prefix });
    queues.push(q);
    return q;
  };
  /** The next job BullMQ hands out from `name`, taken (active, locked) under `token`. */
  const take = async (name: string, token: string): Promise<Job | undefined> => {
    let w = workers.get(name);
    if (!w) workers.set(name, (w = new Worker(name, undefined, { connection: redis, prefix: keys.prefix, autorun: false })));
    return (await w.getNextJob(token, { block: false })) as Job | undefined;
  };
  /** What BullMQ itself hands out next from `name`: the job the peek must have predicted. */
  const takeNext = async (name: string): Promise<Job | undefined> => {
    const token = randomUUID();
    const job = await take(name, token);
    if (job) await job.moveToCompleted('ok', token, false);
    return job;
  };

  beforeAll(() => {
    redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
    peek = headPeeker(redis, keys);
  });
  afterAll(async () => {
    await Promise.all([...[...workers.values()].map((w) => w.close()), ...queues.map((q) => q.close())]);
    const left = await redis.keys(`${keys.prefix}*`);
    if (left.length) await redis.del(...left);
    redis.disconnect();
  });

  it('was written for the installed BullMQ', () => {
    expect(
      installed,
      `bullmq ${installed} is installed but libs/queue/bullmq-internals.ts was read from ${BULLMQ_LAYOUT_VERSION}. In bullmq's ` +
        'dist/esm/commands re-check: the prioritized score (includes/getPriorityScore.lua, pushBackJobWithPriority.lua), the ' +
        'delayed score (includes/getDelayedScore.lua, promoteDelayedJobs.lua), which end of `wait` is next (fetchNextJob.lua), ' +
        'the key names and the job hash fields (includes/storeJob.lua), the move back to waiting and the stalled strike ' +
        '(moveJobFromActiveToWait.lua, moveStalledJobsToWait.lua, includes/removeLock.lua); adapt the module, ' +
        'scripts/peek-heads.lua and scripts/requeue-dead.lua, run this test, then set BULLMQ_LAYOUT_VERSION.',
    ).toBe(BULLMQ_LAYOUT_VERSION);
  });

  it('reads priorities from prioritized scores, in the order BullMQ hands the jobs out', async () => {
    const name = 'prio';
    const q = queue(name);
    const added: Job[] = [];
    for (const [i, priority] of [3, 1, 7, 1, 3, 7].entries()) added.push(await q.add(`infer:m${i}`, { i }, { priority }));
    const s = queueStructures(keys, name);
    const scored = await redis.zrange(s.prioritized, '0', '-1', 'WITHSCORES');
    const byId = new Map<string, number>();
    for (let i = 0; i < scored.length; i += 2) byId.set(scored[i]!, priorityOfScore(Number(scored[i + 1])));
    expect(Object.fromEntries(byId)).toEqual(Object.fromEntries(added.map((j) => [j.id, j.opts.priority])));

    // The job fields Hydra reads, exactly as BullMQ stored them.
    const fields = await readJobFields(redis, keys, name, [...added.map((j) => j.id!), 'no-such-job']);
    expect(fields).toEqual([...added.map((j) => ({ name: j.name, timestamp: j.timestamp, priority: j.opts.priority, addedPriority: j.opts.priority })), null]);

    // The oldest of each band, in add order, whatever the band's size (aging reads them: issue #10).
    const oldest = await prioritizedOldest(redis, keys, name, [7, 3, 2], 1);
    expect(oldest.map((e) => [e.id, e.priority])).toEqual([[added[2]!.id, 7], [added[0]!.id, 3]]);
    const band7 = await prioritizedOldest(redis, keys, name, [7], 10);
    expect(band7.map((e) => e.id)).toEqual([added[2]!.id, added[5]!.id]);
    expect(band7[0]!.counter).toBeLessThan(band7[1]!.counter);

    // changePriority moves the current priority and, with lifo, puts the job ahead of its new band.
    await (await q.getJob(added[5]!.id!))!.changePriority({ priority: 1, lifo: true });
    expect((await readJobFields(redis, keys, name, [added[5]!.id!]))[0]).toMatchObject({ priority: 1, addedPriority: 7 });
    // ...with no counter: it leads band 1, where lifo-moved jobs among themselves sort by id, not by age.
    expect(await prioritizedOldest(redis, keys, name, [1], 10)).toEqual([
      { id: added[5]!.id, priority: 1, counter: 0 },
      { id: added[1]!.id, priority: 1, counter: expect.any(Number) },
      { id: added[3]!.id, priority: 1, counter: expect.any(Number) },
    ]);

    const expected = [5, 1, 3, 0, 4, 2].map((i) => added[i]!);
    // Place in line: 1 = handed out next, as BullMQ then hands them out.
    expect(await Promise.all(expected.map((j) => waitingPosition(redis, keys, name, j.id!)))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await waitingCount(redis, keys, name)).toBe(6);
    expect(await waitingPosition(redis, keys, name, 'no-such-job')).toBeNull();
    for (const job of expected) {
      const [head] = await peek([name], 'node-a', Date.now());
      expect(head).toEqual({ queue: name, jobId: job.id, name: job.name, priority: job.id === added[5]!.id ? 1 : job.opts.priority, timestamp: job.timestamp, excluded: false });
      expect((await takeNext(name))?.id).toBe(head!.jobId);
    }
    expect(await peek([name], 'node-a', Date.now())).toEqual([]);
    // Finish times of the completed jobs, newest first, as BullMQ recorded them.
    const done = await Promise.all(expected.map((j) => q.getJob(j.id!)));
    expect(await recentFinishes(redis, keys, name, 3)).toEqual(done.map((j) => j!.finishedOn).sort((a, b) => b! - a!).slice(0, 3));
  });

  it('reads the next waiting job of a queue without priorities, oldest first', async () => {
    const name = 'plain';
    const q = queue(name);
    const added = await Promise.all([0, 1, 2].map((i) => q.add(`infer:w${i}`, { i })));
    const ids = added.map((j) => j.id);
    const inLine = [...ids].sort((a, b) => Number(a) - Number(b));
    expect(await Promise.all(inLine.map((id) => waitingPosition(redis, keys, name, id!)))).toEqual([1, 2, 3]);
    expect(await waitingCount(redis, keys, name)).toBe(3);
    // BullMQ assigns the ids in add order: hand-out order must follow them.
    for (const id of [...ids].sort((a, b) => Number(a) - Number(b))) {
      const [head] = await peek([name], 'node-a', Date.now());
      expect(head).toMatchObject({ queue: name, jobId: id, priority: 0 });
      expect((await takeNext(name))?.id).toBe(id);
    }
  });

  it('encodes delayed jobs as due time · 4096 + n and sees them only once due', async () => {
    const name = 'later';
    const q = queue(name);
    const delay = 300;
    const jobs = [await q.add('infer:d0', {}, { delay, priority: 4 }), await q.add('infer:d1', {}, { delay, priority: 4 })];
    const due = jobs[0]!.timestamp + delay;
    const score = Number(await redis.zscore(queueStructures(keys, name).delayed, jobs[0]!.id!));
    expect(score).toBeGreaterThan(dueDelayedMaxScore(due - 1));
    expect(score).toBeLessThanOrEqual(dueDelayedMaxScore(due));

    expect(await peek([name], 'node-a', due - 1)).toEqual([]);
    const [head] = await peek([name], 'node-a', due);
    // A delayed job has no prioritized score yet: its priority comes from its hash.
    expect(head).toEqual({ queue: name, jobId: jobs[0]!.id, name: 'infer:d0', priority: 4, timestamp: jobs[0]!.timestamp, excluded: false });
    const taken = await waitFor(() => takeNext(name), { timeoutMs: 5000, what: 'BullMQ to hand out the delayed job once due' });
    expect(taken.id).toBe(head!.jobId);
  });

  it('peeks several queues in one call, leaving empty ones out, with the node exclusion flag', async () => {
    const [a, b] = [queue('many.a'), queue('many.b')];
    queue('many.empty');
    // Exclusion flags are keyed by job id alone: Hydra's job ids are unique across queues (BullMQ's counters are not).
    const ja = await a.add('infer:x', {}, { priority: 2, jobId: 'job-x' });
    const jb = await b.add('infer:y', {}, { priority: 9, jobId: 'job-y' });
    await redis.set(keys.excluded(jb.id!), 'node-a', 'PX', 60_000);
    const heads = await peek(['many.empty', 'many.b', 'many.a'], 'node-a', Date.now());
    expect(heads.map((h) => [h.queue, h.jobId, h.priority, h.excluded])).toEqual([
      ['many.b', jb.id, 9, true],
      ['many.a', ja.id, 2, false],
    ]);
    expect((await peek(['many.b'], 'node-b', Date.now()))[0]?.excluded).toBe(false);
  });

  it('puts a dead worker process’s running job back where BullMQ hands it out next, lock released, no strike for its first death', async () => {
    const name = 'dead';
    const q = queue(name);
    const [j0, j1] = [await q.add('infer:d', { i: 0 }, { priority: 3 }), await q.add('infer:d', { i: 1 }, { priority: 3 })];
    const live = `${keys.prefix}:live-test`;
    const resv = keys.reservations('node-a');
    const requeue = deadWorkerRequeuer(redis, keys);
    const mb = `m|100|${Date.now() + 60_000}`;
    /** Process `proc` (connection `client`) takes the next job under a fresh token and registers it, as liveness.ts does. */
    const run = async (proc: string, client: number) => {
      const token = randomUUID();
      const job = (await take(name, token))!;
      await redis.multi().zadd(live, client, proc).hset(`${live}:${proc}`, job.id!, 'x').hset(resv, token, mb).exec();
      return { job, token, dead: { registration: live, jobsKey: `${live}:${proc}`, procId: proc, maxStalledCount: 1, jobs: [{ jobId: job.id!, queue: name, nodeId: 'node-a', token }] } };
    };
    const fields = (id: string) => redis.hmget(`${queueStructures(keys, name).jobPrefix}${id}`, 'stc', 'defa', 'hydraDeaths', 'atm');

    const first = await run('p1', 41);
    expect(first.job.id).toBe(j0.id);
    await redis.hset(resv, 'other-run', mb);
    // The process registered another connection since (a reconnect): it is alive, nothing moves.
    expect(await requeue({ ...first.dead, clientId: '40' })).toEqual({ outcome: 'alive' });
    expect(await holdsLock(redis, keys, name, j0.id!, first.token)).toBe(true);

    expect(await requeue({ ...first.dead, clientId: '41' })).toEqual({ outcome: 'requeued', jobIds: [j0.id] });
    expect(await redis.exists(jobLockKey(keys, name, j0.id!))).toBe(0);
    expect(await q.getJobState(j0.id!)).toBe('prioritized');
    expect(await redis.lrange(keys.queueKey(name, 'active'), 0, -1)).toEqual([]);
    // No attempt spent and no strike; its reservation released, the other run's kept; the registration gone.
    expect(await fields(j0.id!)).toEqual([null, null, '1', null]);
    expect(Object.keys(await redis.hgetall(resv))).toEqual(['other-run']);
    expect(await redis.zscore(live, 'p1')).toBeNull();
    expect(await redis.exists(`${live}:p1`)).toBe(0);
    // The events BullMQ's stalled checker writes.
    const events = (await redis.xrange(keys.queueKey(name, 'events'), '-', '+')).map(([, f]) => f).filter((f) => f.includes(j0.id!));
    expect(events.slice(-2).map((f) => f[1])).toEqual(['waiting', 'stalled']);
    // The dead run can no longer complete it; BullMQ hands it out next, ahead of the job added after it.
    await expect(first.job.moveToCompleted('late', first.token, false)).rejects.toThrow(/lock/i);
    const [head] = await peek([name], 'node-a', Date.now());
    expect(head).toMatchObject({ jobId: j0.id, priority: 3 });
    // Already done by another checker: nothing more.
    expect(await requeue({ ...first.dead, clientId: '41' })).toEqual({ outcome: 'gone' });

    // Its second death is a strike (stc 1, within MAX_STALLED_COUNT 1); its third fails it as a poison pill when next taken.
    const second = await run('p2', 42);
    expect(second.job.id).toBe(j0.id);
    expect(await requeue({ ...second.dead, clientId: '42' })).toEqual({ outcome: 'requeued', jobIds: [j0.id] });
    expect(await fields(j0.id!)).toEqual(['1', null, '2', null]);
    const third = await run('p3', 43);
    expect(await requeue({ ...third.dead, clientId: '43' })).toEqual({ outcome: 'requeued', jobIds: [j0.id] });
    expect((await fields(j0.id!)).slice(0, 3)).toEqual(['2', 'its worker process died 3 times while running it', '3']);
    const pill = (await take(name, randomUUID()))!;
    expect(pill.id).toBe(j0.id);
    expect(pill).toMatchObject({ stalledCounter: 2, deferredFailure: 'its worker process died 3 times while running it', attemptsMade: 0 });

    // A job another run took since (its lock holds another token) is left alone.
    const other = await run('p4', 44);
    expect(other.job.id).toBe(j1.id);
    const stale = { ...other.dead, clientId: '44', jobs: [{ ...other.dead.jobs[0]!, token: 'an-older-run' }] };
    expect(await requeue(stale)).toEqual({ outcome: 'requeued', jobIds: [] });
    expect(await holdsLock(redis, keys, name, j1.id!, other.token)).toBe(true);
    expect(await q.getJobState(j1.id!)).toBe('active');
  });
});
