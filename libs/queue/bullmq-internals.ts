// What Hydra reads of BullMQ's Redis layout directly (not through its API), and the one move it makes itself (a dead
// worker's jobs back to waiting), in one place, for the pinned BullMQ version. (The take, libs/registry/take.ts, runs
// BullMQ's own moveToActive script inside Hydra's: it imports `moveToActive-11.js` by name, so an upgrade that changes
// its keys fails at import; libs/registry/take.int.test.ts checks what it hands out. The job's end, job-end.ts, does the
// same with `moveToFinished-14.js`, its arguments built by BullMQ's own moveToCompletedArgs; job-end.int.test.ts.)
//
// BullMQ does not promise this layout: it is read from its Lua sources (node_modules/bullmq/dist/esm/commands) and
// checked against real jobs by bullmq-internals.test.ts, which fails when an upgrade changes it.
import type { RedisClient } from './connection.js';
import type { HydraKeys } from './keys.js';
import { loadScript, QUEUE_SCRIPTS, replyCode } from './scripts.js';

/** The BullMQ version this layout was read from; the test fails when another is installed. */
export const BULLMQ_LAYOUT_VERSION = '6.7.0';

/**
 * `prioritized` zset score = priority · 2^32 + counter, the counter a per-queue INCR (getPriorityScore.lua), so a
 * band is in add order. `changePriority({lifo: true})` scores priority · 2^32 with no counter (pushBackJobWithPriority.lua).
 */
const PRIORITY_SCALE = 2 ** 32;
export const priorityOfScore = (score: number): number => Math.floor(score / PRIORITY_SCALE);

/**
 * `delayed` zset score = due time (ms) · 4096 + n, where n (< 4096) keeps jobs due in the same ms in add order
 * (getDelayedScore.lua).
 */
const DELAYED_SCALE = 0x1000;
/** The highest `delayed` score that is due at `nowMs`: BullMQ's own bound when it promotes (promoteDelayedJobs.lua). */
export const dueDelayedMaxScore = (nowMs: number): number => (nowMs + 1) * DELAYED_SCALE - 1;

/**
 * A queue's structures: `prioritized` (zset, lowest score next), `wait` (list, next at the right end: BullMQ
 * LPUSHes and RPOPLPUSHes), `delayed` (zset), and each job's hash at `jobPrefix + id`. BullMQ hands out `wait`
 * before `prioritized`, the peek looks at `prioritized` first: they agree because Hydra gives every job a priority
 * (1-10), so a queue never holds both (`wait` is for jobs added without a priority).
 */
export interface QueueStructures {
  prioritized: string;
  wait: string;
  delayed: string;
  jobPrefix: string;
}

export function queueStructures(keys: HydraKeys, queue: string): QueueStructures {
  return {
    prioritized: keys.queueKey(queue, 'prioritized'),
    wait: keys.queueKey(queue, 'wait'),
    delayed: keys.queueKey(queue, 'delayed'),
    jobPrefix: keys.queueKey(queue, ''),
  };
}

/** The job hash fields Hydra reads (storeJob.lua writes them when a job is added). */
export interface JobFields {
  name: string;
  /** When the job was added (ms). */
  timestamp: number;
  /** Current BullMQ priority: `changePriority` moves only this field. */
  priority: number;
  /** The BullMQ priority it was added with (`opts.priority`); undefined when added without one. */
  addedPriority: number | undefined;
}

/** The fields of jobs of one queue in one pipelined read; null for a job that is gone (or not fully written). */
export async function readJobFields(redis: RedisClient, keys: HydraKeys, queue: string, ids: readonly string[]): Promise<(JobFields | null)[]> {
  if (ids.length === 0) return [];
  const { jobPrefix } = queueStructures(keys, queue);
  const p = redis.pipeline();
  for (const id of ids) p.hmget(jobPrefix + id, 'name', 'timestamp', 'priority', 'opts');
  const rows = (await p.exec()) ?? [];
  return ids.map((_, i) => {
    const [name, timestamp, priority, opts] = (rows[i]?.[1] ?? []) as (string | null)[];
    if (name == null || !timestamp || !priority || !opts) return null;
    const added = (JSON.parse(opts) as { priority?: number }).priority;
    return { name, timestamp: Number(timestamp), priority: Number(priority), addedPriority: added };
  });
}

/** A waiting job as its `prioritized` entry says: its band (BullMQ priority) and its place in the queue's add order. */
export interface PrioritizedEntry {
  id: string;
  priority: number;
  /** The per-queue add counter (0 for a job moved with `changePriority({lifo: true})`): lower = added earlier. */
  counter: number;
}

/**
 * The oldest `count` waiting jobs of each band in `priorities` (BullMQ priorities), each band in add order: one
 * pipelined ZRANGEBYSCORE per band over [priority · 2^32, (priority + 1) · 2^32). Aging reads these, so with a
 * backlog of any size the jobs that waited longest are the ones promoted (issue #10).
 */
export async function prioritizedOldest(redis: RedisClient, keys: HydraKeys, queue: string, priorities: readonly number[], count: number): Promise<PrioritizedEntry[]> {
  const key = queueStructures(keys, queue).prioritized;
  const p = redis.pipeline();
  for (const b of priorities) p.zrangebyscore(key, b * PRIORITY_SCALE, `(${(b + 1) * PRIORITY_SCALE}`, 'WITHSCORES', 'LIMIT', 0, count);
  const rows = (await p.exec()) ?? [];
  const out: PrioritizedEntry[] = [];
  for (const [i, b] of priorities.entries()) {
    const flat = (rows[i]?.[1] ?? []) as string[];
    for (let j = 0; j + 1 < flat.length; j += 2) out.push({ id: flat[j]!, priority: b, counter: Number(flat[j + 1]) - b * PRIORITY_SCALE });
  }
  return out;
}

/** Waiting jobs of a queue: `prioritized` plus `wait` (Hydra's jobs all sit in the first; see QueueStructures). */
export async function waitingCount(redis: RedisClient, keys: HydraKeys, queue: string): Promise<number> {
  const s = queueStructures(keys, queue);
  const [z, l] = (await redis.pipeline().zcard(s.prioritized).llen(s.wait).exec()) ?? [];
  return Number(z?.[1] ?? 0) + Number(l?.[1] ?? 0);
}

/**
 * A waiting job's place in line, 1 = handed out next; null when it is not waiting (active, delayed, ended). `wait`
 * goes before `prioritized` (BullMQ's fetch order) and its next job is at the right end.
 */
export async function waitingPosition(redis: RedisClient, keys: HydraKeys, queue: string, jobId: string): Promise<number | null> {
  const s = queueStructures(keys, queue);
  const [rank, waitLen, inWait] = ((await redis.pipeline().zrank(s.prioritized, jobId).llen(s.wait).lpos(s.wait, jobId).exec()) ?? []).map((r) => r?.[1]) as [
    number | null,
    number,
    number | null,
  ];
  if (inWait != null) return Number(waitLen) - Number(inWait);
  return rank == null ? null : Number(waitLen) + Number(rank) + 1;
}

/** When (ms) the last `count` completed jobs of a queue finished, newest first: the `completed` zset's score is finishedOn. */
export async function recentFinishes(redis: RedisClient, keys: HydraKeys, queue: string, count: number): Promise<number[]> {
  const flat = await redis.zrevrange(keys.queueKey(queue, 'completed'), 0, count - 1, 'WITHSCORES');
  return flat.filter((_, i) => i % 2 === 1).map(Number);
}

/** The next job a queue would hand out, as the peek script reads it. */
export interface PeekedHead {
  queue: string;
  jobId: string;
  name: string;
  priority: number;
  /** When the job was added (ms). */
  timestamp: number;
  /** This node just failed the job: it leaves it to other nodes for a while. */
  excluded: boolean;
  /** Session affinity: the node that ran the last job of this job's session, if any. */
  sessionNode?: string;
}

export type HeadPeeker = (queues: readonly string[], nodeId: string, nowMs: number) => Promise<PeekedHead[]>;

/** The head of each queue in one call (scripts/peek-heads.lua), with this node's exclusion flag for it. */
export function headPeeker(redis: RedisClient, keys: HydraKeys): HeadPeeker {
  const peek = loadScript<(string | number)[]>(redis, QUEUE_SCRIPTS, 'peek-heads');
  return async (queues, nodeId, nowMs) => {
    // No queue, no key: on a Redis Cluster a call without keys would go to a random node (and it has nothing to read).
    if (queues.length === 0) return [];
    const structures = queues.map((q) => queueStructures(keys, q));
    const flat = await peek(
      structures.flatMap((s) => [s.prioritized, s.wait, s.delayed]),
      [dueDelayedMaxScore(nowMs), keys.excluded(''), nodeId, keys.jobSession(''), keys.sessionNode(''), ...structures.map((s) => s.jobPrefix)],
    );
    const heads: PeekedHead[] = [];
    for (let i = 0; i + 7 < flat.length; i += 8) {
      const [at, jobId, name, score, priority, timestamp, excluded, sessionNode] = flat.slice(i, i + 8).map(String) as [string, string, string, string, string, string, string, string];
      heads.push({
        queue: queues[Number(at) - 1]!,
        jobId,
        name,
        // A prioritized head's band is its score; a waiting or delayed one has only its hash's field.
        priority: score ? priorityOfScore(Number(score)) : Number(priority) || 0,
        timestamp: timestamp ? Number(timestamp) : nowMs,
        excluded: replyCode('peek-heads', excluded, ['excluded', 'eligible']) === 'excluded',
        ...(sessionNode ? { sessionNode } : {}),
      });
    }
    return heads;
  };
}

/** A job's lock: its value is the token of the worker run holding it (prepareJobForProcessing.lua, extendLock.lua). */
export const jobLockKey = (keys: HydraKeys, queue: string, jobId: string): string => `${queueStructures(keys, queue).jobPrefix}${jobId}:lock`;

/** Whether run `token` still holds `jobId`'s lock: false once it expired, or another worker took the job since. */
export async function holdsLock(redis: RedisClient, keys: HydraKeys, queue: string, jobId: string, token: string): Promise<boolean> {
  return (await redis.get(jobLockKey(keys, queue, jobId))) === token;
}

/** A job a worker process was running, as it registered it: its queue, its node (for the reservation) and lock token. */
export interface OrphanedJob {
  jobId: string;
  queue: string;
  nodeId: string;
  token: string;
}

export interface DeadWorker {
  /** Zset process id → CLIENT ID of its liveness connection, and this process's hash of running jobs. */
  registration: string;
  jobsKey: string;
  procId: string;
  /** The connection found gone: nothing moves if the process has registered another one since. */
  clientId: string;
  jobs: readonly OrphanedJob[];
  maxStalledCount: number;
}

export type RequeueOutcome = { outcome: 'requeued'; jobIds: string[] } | { outcome: 'alive' | 'gone' };
export type DeadWorkerRequeuer = (w: DeadWorker) => Promise<RequeueOutcome>;

/**
 * Put a dead worker process's running jobs back in their queues in one atomic step (scripts/requeue-dead.lua): BullMQ's
 * own move from active to waiting, with the lock, the stalled set, the marker and the events, but without a stalled
 * strike for the first death of a job's worker; the process's memory reservations are released with them.
 */
export function deadWorkerRequeuer(redis: RedisClient, keys: HydraKeys): DeadWorkerRequeuer {
  const requeue = loadScript<string[]>(redis, QUEUE_SCRIPTS, 'requeue-dead');
  return async (w) => {
    const k = w.jobs.flatMap((j) => {
      const s = queueStructures(keys, j.queue);
      const part = (p: string) => keys.queueKey(j.queue, p);
      return [s.jobPrefix + j.jobId, jobLockKey(keys, j.queue, j.jobId), part('active'), s.wait, s.prioritized, part('marker'), part('meta'), part('events'), part('stalled'), keys.reservations(j.nodeId)];
    });
    const reply = await requeue([w.registration, w.jobsKey, ...k], [w.procId, w.clientId, w.maxStalledCount, ...w.jobs.flatMap((j) => [j.jobId, j.token])]);
    const outcome = replyCode('requeue-dead', reply[0], ['requeued', 'alive', 'gone']);
    return outcome === 'requeued' ? { outcome, jobIds: reply.slice(1).map(String) } : { outcome };
  };
}

/** A running job's entry in its process's liveness hash (keys.liveJobs): its queue, node and lock token. */
export const liveEntry = (queue: string, nodeId: string, token: string): string => JSON.stringify({ q: queue, n: nodeId, t: token });

export type LiveRegistrar = (procId: string, clientId: string, running: ReadonlyMap<string, string>) => Promise<void>;

/**
 * Register a process's liveness connection and the jobs it runs (scripts/live-register.lua): entries of jobs whose
 * lock no longer holds their token are dropped, entries of jobs it holds (`running`: jobId → liveEntry, and any a
 * take wrote that the process has not tracked yet) kept.
 */
export function liveRegistrar(redis: RedisClient, keys: HydraKeys): LiveRegistrar {
  const register = loadScript<string>(redis, QUEUE_SCRIPTS, 'live-register');
  return async (procId, clientId, running) => {
    const reply = await register([keys.live, keys.liveJobs(procId)], [procId, clientId, `${keys.prefix}:`, ...[...running].flat()]);
    replyCode('live-register', reply, ['registered']);
  };
}
