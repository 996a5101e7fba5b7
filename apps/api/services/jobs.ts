// The job service every surface calls: submit (a cached answer, or a routed, queued job with an optional watch),
// wait for its end, look it up, cancel it. Framing-free: routes turn its outcomes into their protocol's answers.
import { randomUUID } from 'node:crypto';
import { cacheDecision, cacheKeyOf } from '../../../libs/cache/index.js';
import { ErrorCode, HydraError, type InferenceCall, type InferResult, type JobRequest, type NodeRecord } from '../../../libs/core/index.js';
import { buildInferJob, recentFinishes, toCall, waitingCount, type AckSeal, type InferJob } from '../../../libs/queue/index.js';
import { completionRate, retryAfterS, wakeNodesFor, type RecentNode, type RoutePlan } from '../../../libs/scheduling/index.js';
import { readRecentNodes } from '../../../libs/registry/index.js';
import type { ApiContext } from '../context.js';
import { isRedisDown, REDIS_RETRY_AFTER_S } from '../errors.js';
import { l2Lookup } from '../l2-cache.js';
import { cachedJobView, placeInLine, viewFromMessage, viewJob, whereRunning, type CachedJobView, type JobView } from '../job-view.js';
import type { Watch } from '../waiters.js';

/** A job the API just added: what it needs to wait for it and to answer about it. */
export interface QueuedJob {
  id: string;
  payload: InferJob;
  plan: RoutePlan;
  /** Watching its done message since before the add (null unless asked). */
  watch: Watch | null;
}

export type SubmitOutcome = { kind: 'cached'; view: CachedJobView } | { kind: 'queued'; job: QueuedJob };
/** A semantic cache hit (cache: "semantic"): only when the caller passed `semantic`. */
export type SemanticOutcome = { kind: 'semantic'; view: unknown };

interface SubmitOptions {
  watch: boolean;
  /** Recall: what was put in front of the prompt (already in `request`), kept in the job for its view. */
  recalled?: InferJob['recalled'];
  requestId?: string | undefined;
  keyId?: string | undefined;
  id?: string | undefined;
}

/** Turns of the wake fan-out, so a flood of one model wakes its nodes in rotation. */
let wakeTurn = 0;

/**
 * Submit a validated request: an L1 cache hit answers at once without a job; otherwise route it (throws
 * `unsatisfiable` when no node could ever run it) and add it. With `watch`, the watch starts before the add so the
 * end cannot be missed. A miss carries the cache key so the worker stores the answer, and the HTTP request's id
 * (`requestId`, the access log's) so the worker's log lines for the job can be found by it. With REDIS_MIN_REPLICAS_ACK
 * the job counts as added only once that many replicas hold it (`confirmDurable`).
 */
/**
 * `id`: the job's id when the caller chose it (an Idempotency-Key claim, idempotency.ts); a new UUID otherwise.
 * `semantic`: asked after an exact cache miss (cache: "semantic", semantic-cache.ts); a view it returns answers.
 */
export async function submitJob(ctx: ApiContext, request: JobRequest, opts: SubmitOptions): Promise<SubmitOutcome>;
export async function submitJob(ctx: ApiContext, request: JobRequest, opts: SubmitOptions & { semantic: ((call: InferenceCall) => Promise<unknown>) | undefined }): Promise<SubmitOutcome | SemanticOutcome>;
export async function submitJob(ctx: ApiContext, request: JobRequest, opts: SubmitOptions & { semantic?: ((call: InferenceCall) => Promise<unknown>) | undefined }): Promise<SubmitOutcome | SemanticOutcome> {
  const call = toCall(request);
  const cacheKey = cacheDecision(call, request.cache === 'semantic' ? undefined : request.cache).use ? cacheKeyOf(call) : undefined;
  const hit = cacheKey ? await ctx.cache.get<InferResult>(cacheKey) : null;
  if (cacheKey && hit) return { kind: 'cached', view: cachedJobView(call, request.priority, cacheKey, hit) };
  // L2: an exact repeat whose L1 entry aged out is answered from the results history within CACHE_TTL_S (l2-cache.ts).
  const l2 = cacheKey ? await l2Lookup(ctx, call) : null;
  if (cacheKey && l2) return { kind: 'cached', view: cachedJobView(call, request.priority, cacheKey, l2, 'L2') };
  const near = opts.semantic ? await opts.semantic(call) : null;
  if (near) return { kind: 'semantic', view: near };
  const { plan, payload } = await route(ctx, call, request);
  if (cacheKey) payload.cache_key = cacheKey;
  if (opts.requestId) payload.request_id = opts.requestId;
  if (opts.keyId) payload.api_key_id = opts.keyId;
  if (opts.recalled) payload.recalled = opts.recalled;
  if (request.callback_url) payload.callback_url = request.callback_url; // webhook (apps/api/webhooks.ts)
  await checkDepth(ctx, plan.queue);
  const id = opts.id ?? randomUUID();
  const watch = opts.watch ? ctx.waiters.watch(id) : null;
  const seal = ctx.replicaAck?.seal();
  try {
    // A few nodes that can take it now are woken, not every worker process (libs/scheduling/wake.ts).
    const wake = wakeNodesFor(plan, await ctx.nodes().catch(() => []), wakeTurn++);
    await ctx.producer.addInference(id, payload, plan.queueInfo, wake);
    if (seal) await confirmDurable(ctx, seal, { kind: 'job', id, withdraw: withdrawJob(ctx, id) });
  } catch (e) {
    watch?.close();
    throw e;
  }
  return { kind: 'queued', job: { id, payload, plan, watch } };
}

/** What became of an added job (or workflow) that the replicas did not confirm. */
export type Withdrawal = 'withdrawn' | 'ran' | 'unknown';

/**
 * REDIS_MIN_REPLICAS_ACK: a job only the master holds is lost if the master dies before replicating it, so it is not
 * accepted until that many replicas confirm (WAIT). When they do not in time: 503 (retryable), and the job (or
 * workflow) is withdrawn so that the client's retry does not run it twice. Workers see a job the moment it is added,
 * so a short one has often run by then: the error says so (`details.withdrawal`), with the id to look it up.
 */
export async function confirmDurable(ctx: ApiContext, seal: AckSeal, what: { kind: 'job' | 'workflow' | 'batch'; id: string; withdraw: () => Promise<Withdrawal> }): Promise<void> {
  const ack = await ctx.replicaAck!.confirm(seal);
  if (ack.ok) return;
  const withdrawal = await what.withdraw().catch((): Withdrawal => 'unknown');
  const fate = {
    withdrawn: 'it was withdrawn',
    ran: `${what.kind} ${what.id} had already run (its result may not survive a failover either)`,
    unknown: `${what.kind} ${what.id} could not be withdrawn and may still run`,
  }[withdrawal];
  const { REDIS_MIN_REPLICAS_ACK: n, REDIS_REPLICA_ACK_TIMEOUT_MS: ms } = ctx.config;
  throw new HydraError(
    ErrorCode.Unavailable,
    `the ${what.kind} was not accepted: REDIS_MIN_REPLICAS_ACK=${n} asks for ${n} Redis replica(s) to hold it within REDIS_REPLICA_ACK_TIMEOUT_MS=${ms} ms, ` +
      `but ${ack.why}; ${fate}; retry shortly`,
    { retryable: true, details: { [`${what.kind}_id`]: what.id, withdrawal, replicas_acked: ack.replicas, replicas_required: n, retry_after_s: REDIS_RETRY_AFTER_S } },
  );
}

/** Cancel a job that was added but not confirmed: removed before it started, or aborted while it runs, or it already ended. */
const withdrawJob = (ctx: ApiContext, id: string) => async (): Promise<Withdrawal> => {
  const r = await ctx.lifecycle.cancel(id, 'not confirmed by the replicas (REDIS_MIN_REPLICAS_ACK)');
  return r.outcome === 'removed' || r.outcome === 'signalled' ? 'withdrawn' : r.outcome === 'ended' ? 'ran' : 'unknown';
};

/**
 * Route a request. When no live node could serve it, the nodes seen within MODEL_GRACE_MS are asked about too (one
 * read, only then): a model whose nodes are restarting is queued rather than refused.
 */
function route(ctx: ApiContext, call: ReturnType<typeof toCall>, request: JobRequest): Promise<ReturnType<typeof buildInferJob>> {
  return withModelGrace(ctx, (nodes, now, recent) => buildInferJob(call, request, nodes, ctx.localHosts, now, recent), request.node_id);
}

/**
 * Run a routing step over the live nodes; when it finds none that could serve (unsatisfiable), run it again with the
 * nodes seen within MODEL_GRACE_MS too. One place for jobs and workflows' steps.
 */
export async function withModelGrace<T>(ctx: ApiContext, plan: (nodes: NodeRecord[], now: number, recent?: RecentNode[]) => T, pinned?: string | null): Promise<T> {
  let nodes = await ctx.nodes();
  // A node the request names that the cached list lacks may have just joined, its announcement not heard yet (the
  // client saw it in /v1/nodes). Read once more, so such a job is not sent to another node.
  if (pinned && !nodes.some((n) => n.id === pinned)) {
    ctx.nodes.invalidate();
    nodes = await ctx.nodes();
  }
  try {
    return plan(nodes, Date.now());
  } catch (e) {
    if (!(e instanceof HydraError && e.code === ErrorCode.Unsatisfiable) || ctx.config.MODEL_GRACE_MS <= 0) throw e;
    const now = Date.now();
    const recent = await readRecentNodes(ctx.redis, ctx.keys, now, ctx.config.MODEL_GRACE_MS);
    if (recent.length === 0) throw e;
    return plan(nodes, now, recent);
  }
}

/**
 * Overload is explicit: a queue already holding MAX_QUEUE_DEPTH waiting jobs refuses more (503, retryable) rather
 * than letting waits grow without bound. One count (ZCARD + LLEN) per submit, only when the limit is set; the check
 * and the add are not atomic, so concurrent submits may pass it by a few. Retry-After: one completion at the queue's
 * recent rate (docs/scheduling.md).
 */
async function checkDepth(ctx: ApiContext, queue: string): Promise<void> {
  const max = ctx.config.MAX_QUEUE_DEPTH;
  if (max <= 0) return;
  const waiting = await waitingCount(ctx.redis, ctx.keys, queue);
  if (waiting < max) return;
  const s = retryAfterS(completionRate(await recentFinishes(ctx.redis, ctx.keys, queue, 20), Date.now()));
  throw new HydraError(ErrorCode.Unavailable, `queue ${queue} is full (${waiting} waiting, MAX_QUEUE_DEPTH ${max}); retry after ~${s} s`, {
    retryable: true,
    details: { queue, waiting, max_queue_depth: max, retry_after_s: s },
  });
}

/** How long a `wait` may last: with timeout_ms the job ends by itself by then, so a little longer than that. */
export const waitLimitMs = (ctx: ApiContext, timeoutMs: number | undefined): number =>
  Math.min(timeoutMs ? timeoutMs + 2000 : ctx.config.WAIT_MAX_MS, ctx.config.WAIT_MAX_MS);

export type EndOutcome =
  | { kind: 'completed'; view: JobView }
  | { kind: 'failed'; view: JobView; error: HydraError }
  | { kind: 'cancelled'; error: HydraError }
  | { kind: 'gone'; error: HydraError }
  /** Still waiting or running at the deadline (or the client left). */
  | { kind: 'running'; state: string }
  /** Redis went away while waiting; the job was accepted and is safe there. */
  | { kind: 'unknown' };

const cancelledError = (id: string) => new HydraError(ErrorCode.Cancelled, `job ${id} was cancelled`);

/**
 * Wait until the job ends, `ms` pass or `signal` aborts. The done message usually carries the result, so the common
 * path reads nothing back from Redis; pub/sub is best-effort, so the job is re-read every second. Closes the watch.
 */
export async function waitForEnd(ctx: ApiContext, job: QueuedJob & { watch: Watch }, ms: number, signal: AbortSignal): Promise<EndOutcome> {
  const { id, payload, plan, watch } = job;
  const deadline = Date.now() + ms;
  try {
    for (;;) {
      const msg = await watch.next(Math.min(1000, Math.max(1, deadline - Date.now())), signal);
      if (msg?.state === 'completed' && msg.result) return { kind: 'completed', view: viewFromMessage(id, payload, plan.queue, msg, ctx.config.JOB_ATTEMPTS) };
      if (msg?.state === 'cancelled') return { kind: 'cancelled', error: cancelledError(id) };
      const queue = ctx.producer.queue(plan.queue);
      let view: JobView | null = null;
      try {
        const found = await queue.getJob(id);
        if (found) view = await viewJob(queue, found);
      } catch (e) {
        // Keep waiting for its end (the done subscription comes back with Redis); at the deadline say so.
        if (!isRedisDown(e as Error)) throw e;
        if (Date.now() < deadline && !signal.aborted) continue;
        return { kind: 'unknown' };
      }
      if (!view) {
        if (await ctx.lifecycle.isCancelled(id)) return { kind: 'cancelled', error: cancelledError(id) };
        return { kind: 'gone', error: new HydraError(ErrorCode.NotFound, `job ${id} no longer exists`) };
      }
      if (view.state === 'completed') return { kind: 'completed', view };
      if (view.state === 'failed') return { kind: 'failed', view, error: failureError(view) };
      if (Date.now() >= deadline || signal.aborted) return { kind: 'running', state: view.state };
    }
  } finally {
    watch.close();
  }
}

/** The HydraError of a failed job's view (its code decides the HTTP status on every surface). */
const failureError = (view: JobView): HydraError => new HydraError((view.error?.code ?? ErrorCode.Internal) as ErrorCode, view.error?.message ?? 'the job failed');

export type JobLookup = { kind: 'found'; view: JobView } | { kind: 'cancelled' } | { kind: 'unknown' };

/** A job by id: its view, or that it was cancelled before it ran (removed), or unknown. */
export async function findJob(ctx: ApiContext, id: string): Promise<JobLookup> {
  const found = await ctx.lifecycle.find(id);
  if (found?.job) {
    const view = await viewJob(found.queue, found.job);
    if (view.state === 'active') return { kind: 'found', view: { ...view, ...(await whereRunning(ctx.redis, ctx.keys, found.job)) } };
    if (view.state !== 'waiting') return { kind: 'found', view };
    const nodes = await ctx.nodes().catch(() => []);
    return { kind: 'found', view: { ...view, ...(await placeInLine(ctx.redis, ctx.keys, found.queue.name, id, Date.now(), { model: view.model, nodes })) } };
  }
  if (await ctx.lifecycle.isCancelled(id)) return { kind: 'cancelled' };
  return { kind: 'unknown' };
}

export type CancelOutcome = { state: 'cancelled' } | { state: 'cancelling' };

/** Cancel a job: throws not_found for an unknown job and conflict for one that already ended. */
export async function cancelJob(ctx: ApiContext, id: string, why: string): Promise<CancelOutcome> {
  const r = await ctx.lifecycle.cancel(id, why);
  if (r.outcome === 'unknown') throw new HydraError(ErrorCode.NotFound, `no job with id ${id}`);
  if (r.outcome === 'ended') throw new HydraError(ErrorCode.Conflict, `job ${id} already ${r.state}; nothing to cancel`);
  // Webhooks and batches: no worker sees a job removed before it ran end, so its callback and batch count start here.
  const unrun = r.outcome === 'removed' ? (r.data as InferJob | undefined) : undefined;
  if (unrun?.callback_url || unrun?.batch) await ctx.deliveries.jobEnded(id, unrun, 'cancelled').catch((e: Error) => ctx.logger.warn({ jobId: id, err: e.message }, 'cancelled job: callback or batch count not recorded'));
  return r.outcome === 'removed' ? { state: 'cancelled' } : { state: 'cancelling' };
}

/** A client that leaves before the answer takes its job with it, unless the job was submitted with `detach`. */
export function cancelOnDisconnect(ctx: ApiContext, id: string, payload: InferJob, why: string): void {
  if (payload.detach) return;
  cancelJob(ctx, id, why).catch(() => undefined);
}
