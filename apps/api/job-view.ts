// How a job looks to API users: state, attempts, result or error, routing decision. Built from a BullMQ job, from the
// worker's done message, or from an L1 cache hit.
import type { Job, Queue } from 'bullmq';
import type { CacheEntry } from '../../libs/cache/index.js';
import { routingDecision, type InferenceCall, type InferResult, type RoutingDecision } from '../../libs/core/index.js';
import { decodeFailure, readDeliveries, recentFinishes, waitingPosition, type DeliveryAttempt, type DoneMessage, type Failure, type HydraKeys, type InferJob, type RedisClient } from '../../libs/queue/index.js';
import { completionRate, estimatedStartMs, measuredLine, type PerfNode } from '../../libs/scheduling/index.js';

export interface JobView {
  id: string;
  state: string;
  queue: string;
  type: string;
  model: string;
  priority: number;
  attempts_made: number;
  attempts_max: number;
  submitted_at: string;
  started_at: string | null;
  finished_at: string | null;
  result?: InferResult;
  error?: Failure;
  routing_decision: RoutingDecision;
  /** The X-Request-Id of the request that submitted it (the access log's and the worker's log lines carry it). */
  request_id?: string;
  /** A waiting job's place in its queue, 1 = next (absent unless waiting; null when delayed for a retry). */
  queue_position?: number | null;
  /**
   * When it should start: its queue's recent completion rate, else the serving nodes' measured job times, plus the
   * wait for a busy node to free a slot (docs/scheduling.md, "Place in line"); null when nothing is known.
   */
  estimated_start?: string | null;
  /** An active job: the node running it (null for the moment between its take and the worker's record of it). */
  node_id?: string | null;
  /** An active job: which attempt this is, 1 for the first (a retry after a failure or a stall counts on). */
  attempt?: number;
  /** Recall (`memory.recall`): the earlier jobs put in front of the prompt. */
  recalled?: InferJob['recalled'];
  /** Webhook: the callback URL and each delivery attempt so far (`withDeliveries` fills them in). */
  callback?: { url: string; deliveries: DeliveryAttempt[] };
}

/** A job view with its callback's delivery log (one LRANGE, only for a job that has a callback). */
export async function withDeliveries(redis: RedisClient, keys: HydraKeys, view: JobView): Promise<JobView> {
  if (!view.callback) return view;
  return { ...view, callback: { url: view.callback.url, deliveries: await readDeliveries(redis, keys, view.id) } };
}

/**
 * Where an active job runs: BullMQ writes the taking Worker's name (the worker process id, dispatcher.ts) into the job
 * as `processedBy`, and that process's liveness record (`live:<proc>:jobs`, liveness.ts) names the node. One HGET.
 */
export async function whereRunning(redis: RedisClient, keys: HydraKeys, job: Job): Promise<{ node_id: string | null; attempt: number }> {
  const attempt = Math.max(job.attemptsStarted ?? 0, job.attemptsMade + 1);
  if (!job.processedBy || !job.id) return { node_id: null, attempt };
  const raw = await redis.hget(keys.liveJobs(job.processedBy), job.id);
  let node: unknown = null;
  try {
    node = raw ? (JSON.parse(raw) as { n?: unknown }).n : null;
  } catch {
    node = null;
  }
  return { node_id: typeof node === 'string' ? node : null, attempt };
}

/** Completions sampled for a queue's rate: enough to smooth single jobs, few enough to follow a change in load. */
const RATE_SAMPLE = 20;

/**
 * Where a waiting job stands: its place in line and an estimated start (two cheap reads, no job hashes). With `line`
 * (the registry's nodes and the job's model), the nodes' measured speed fills in a rate the queue has not shown yet and
 * adds the wait until a busy node frees a slot.
 */
export async function placeInLine(
  redis: RedisClient,
  keys: HydraKeys,
  queue: string,
  jobId: string,
  now: number,
  line?: { model: string; nodes: readonly PerfNode[] },
): Promise<Pick<JobView, 'queue_position' | 'estimated_start'>> {
  const [position, finishes] = await Promise.all([waitingPosition(redis, keys, queue, jobId), recentFinishes(redis, keys, queue, RATE_SAMPLE)]);
  if (position === null) return { queue_position: null, estimated_start: null };
  const rate = completionRate(finishes, now);
  const measured = line ? measuredLine(line.nodes, line.model) : { perSecond: null, firstFreeMs: null };
  const at = estimatedStartMs(position, rate.perSecond === null ? { ...rate, perSecond: measured.perSecond } : rate, now);
  return { queue_position: position, estimated_start: at === null ? null : new Date(at + Math.round(measured.firstFreeMs ?? 0)).toISOString() };
}

const iso = (ms: number | undefined): string | null => (ms ? new Date(ms).toISOString() : null);

/** BullMQ's "prioritized" and "waiting" are both waiting to a user. */
const publicState = (s: string): string => (s === 'prioritized' || s === 'waiting-children' ? 'waiting' : s === 'unknown' ? 'cancelled' : s);

export async function viewJob(queue: Queue, fetched: Job): Promise<JobView> {
  const state = publicState(await fetched.getState());
  // The job may have ended between fetching it and reading its state: read it again for its result or error.
  const job = (state === 'completed' || state === 'failed') && fetched.finishedOn === undefined ? ((await queue.getJob(fetched.id!)) ?? fetched) : fetched;
  const data = job.data as InferJob;
  const result = job.returnvalue as InferResult | null;
  return {
    id: job.id!,
    state,
    queue: queue.name,
    type: data.call.type,
    model: data.call.model,
    priority: data.priority,
    attempts_made: job.attemptsMade,
    attempts_max: job.opts.attempts ?? 1,
    submitted_at: new Date(job.timestamp).toISOString(),
    started_at: iso(job.processedOn),
    finished_at: iso(job.finishedOn),
    ...(state === 'completed' && result ? { result } : {}),
    ...(state === 'failed' ? { error: decodeFailure(job.failedReason) } : {}),
    routing_decision: result?.routing_decision ?? routingDecision(data.route, data.attempts_log ?? []),
    ...(data.request_id ? { request_id: data.request_id } : {}),
    ...(data.recalled ? { recalled: data.recalled } : {}),
    ...(data.callback_url ? { callback: { url: data.callback_url, deliveries: [] } } : {}),
  };
}

/** The same view, built from the payload the API just enqueued and the worker's done message (no Redis reads). */
export function viewFromMessage(id: string, data: InferJob, queue: string, msg: DoneMessage, attemptsMax: number): JobView {
  const result = msg.result as InferResult;
  return {
    id,
    state: 'completed',
    queue,
    type: data.call.type,
    model: data.call.model,
    priority: data.priority,
    attempts_made: msg.attempts_made ?? 1,
    attempts_max: attemptsMax,
    submitted_at: new Date(data.submitted_at).toISOString(),
    started_at: iso(msg.started_at),
    finished_at: iso(msg.finished_at),
    result,
    routing_decision: result.routing_decision,
    ...(data.request_id ? { request_id: data.request_id } : {}),
    ...(data.recalled ? { recalled: data.recalled } : {}),
  };
}

/** A job answered from the L1 cache: the job view's shape, `cached: true`, no queue, the original routing decision. */
export function cachedJobView(call: InferenceCall, priority: number, key: string, hit: CacheEntry<InferResult>, tier: 'L1' | 'L2' = 'L1') {
  const stored = new Date(hit.stored_at).toISOString();
  return {
    id: hit.source_job_id ?? null,
    state: 'completed',
    cached: true,
    queue: null,
    type: call.type,
    model: call.model,
    priority,
    attempts_made: 0,
    submitted_at: new Date().toISOString(),
    started_at: null,
    finished_at: stored,
    result: { ...hit.value, cached: true },
    cache: { hit: true, tier, key, stored_at: stored, source_job_id: hit.source_job_id ?? null },
    routing_decision: hit.value.routing_decision,
  };
}
export type CachedJobView = ReturnType<typeof cachedJobView>;
