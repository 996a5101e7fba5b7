// What Hydra reads of BullMQ's Redis layout directly (not through its API), in one place, for the pinned BullMQ version.
//
// BullMQ does not promise this layout: it is read from its Lua sources (node_modules/bullmq/dist/esm/commands) and
// checked against real jobs by bullmq-internals.test.ts, which fails when an upgrade changes it.
import type { Redis } from 'ioredis';
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
export async function readJobFields(redis: Redis, keys: HydraKeys, queue: string, ids: readonly string[]): Promise<(JobFields | null)[]> {
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

/**
 * The `count` ids with the highest `prioritized` scores, in score order (the last is the least urgent): the least
 * urgent band, and within it the most recently added (the counter grows), not the oldest — see issue #10.
 */
export async function prioritizedTail(redis: Redis, keys: HydraKeys, queue: string, count: number): Promise<string[]> {
  return redis.zrange(queueStructures(keys, queue).prioritized, String(-count), '-1');
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
}

export type HeadPeeker = (queues: readonly string[], nodeId: string, nowMs: number) => Promise<PeekedHead[]>;

/** The head of each queue in one call (scripts/peek-heads.lua), with this node's exclusion flag for it. */
export function headPeeker(redis: Redis, keys: HydraKeys): HeadPeeker {
  const peek = loadScript<(string | number)[]>(redis, QUEUE_SCRIPTS, 'peek-heads');
  return async (queues, nodeId, nowMs) => {
    const structures = queues.map((q) => queueStructures(keys, q));
    const flat = await peek(
      structures.flatMap((s) => [s.prioritized, s.wait, s.delayed]),
      [dueDelayedMaxScore(nowMs), keys.excluded(''), nodeId, ...structures.map((s) => s.jobPrefix)],
    );
    const heads: PeekedHead[] = [];
    for (let i = 0; i + 6 < flat.length; i += 7) {
      const [at, jobId, name, score, priority, timestamp, excluded] = flat.slice(i, i + 7).map(String) as [string, string, string, string, string, string, string];
      heads.push({
        queue: queues[Number(at) - 1]!,
        jobId,
        name,
        // A prioritized head's band is its score; a waiting or delayed one has only its hash's field.
        priority: score ? priorityOfScore(Number(score)) : Number(priority) || 0,
        timestamp: timestamp ? Number(timestamp) : nowMs,
        excluded: replyCode('peek-heads', excluded, ['excluded', 'eligible']) === 'excluded',
      });
    }
    return heads;
  };
}
