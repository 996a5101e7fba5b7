// The batch service behind /v1/batches: route every request as a single job would be, add them all at once (one
// pipeline for the index and the batch record, one addBulk per queue), answer the batch's view from its counters,
// page through its results, cancel it.
import { cacheDecision, cacheKeyOf } from '../../../libs/cache/index.js';
import { ErrorCode, HydraError, type JobRequest } from '../../../libs/core/index.js';
import { addInferenceBulk, buildInferJob, toCall, waitingCount, type BatchItemRaw, type BatchRecord, type BulkJob } from '../../../libs/queue/index.js';
import type { ApiContext } from '../context.js';
import { cancelJob, confirmDurable, withModelGrace, type Withdrawal } from './jobs.js';

/** The job id of item `index`: deterministic, so a batch's items can be named without reading them. */
const batchJobId = (batchId: string, index: number): string => `${batchId}.${index}`;

interface BatchView {
  id: string;
  object: 'batch';
  state: 'running' | 'completed' | 'cancelled';
  counts: { total: number; waiting: number; active: number; completed: number; failed: number; cancelled: number };
  created_at: string;
  ended_at: string | null;
  callback_url: string | null;
  results_url: string;
}

interface BatchResult {
  index: number;
  job_id: string;
  state: string;
  result?: unknown;
  error?: { code: string; message: string; retryable: boolean };
}

/** Failure codes a resubmit may get past (capacity, a node or backend away, a timeout). */
const RETRYABLE: ReadonlySet<string> = new Set([ErrorCode.Unavailable, ErrorCode.BackendUnavailable, ErrorCode.Timeout, ErrorCode.RateLimited, ErrorCode.OutOfMemory]);

const iso = (ms: number | null): string | null => (ms ? new Date(ms).toISOString() : null);

/**
 * Route and add a validated batch under `id`. Each request is planned as POST /v1/jobs plans it (the same router, model
 * grace and depth limit), but no answer is looked up in the cache: every item is a job (its answer is still stored
 * there). Throws before anything is added when one cannot be routed, naming `requests[i]`.
 */
export async function submitBatch(ctx: ApiContext, id: string, requests: readonly JobRequest[], opts: { callbackUrl?: string | undefined; requestId?: string | undefined; keyId?: string | undefined }): Promise<BatchView> {
  const jobs: BulkJob[] = [];
  const now = Date.now();
  for (const [i, request] of requests.entries()) {
    try {
      const call = toCall(request);
      const { plan, payload } = await withModelGrace(ctx, (nodes, at, recent) => buildInferJob(call, request, nodes, ctx.localHosts, at, recent), request.node_id);
      if (cacheDecision(call, request.cache === 'semantic' ? undefined : request.cache).use) payload.cache_key = cacheKeyOf(call);
      if (opts.requestId) payload.request_id = opts.requestId;
      if (opts.keyId) payload.api_key_id = opts.keyId;
      if (request.callback_url) payload.callback_url = request.callback_url;
      payload.batch = { id, index: i };
      // No client waits on an item: leaving the 202 cancels nothing.
      payload.detach = true;
      jobs.push({ id: batchJobId(id, i), payload, info: plan.queueInfo });
    } catch (e) {
      if (!(e instanceof HydraError)) throw e;
      throw new HydraError(e.code, `requests[${i}]: ${e.message}`, { retryable: e.retryable, details: { index: i, ...(typeof e.details === 'object' && e.details ? e.details : {}) } });
    }
  }
  await checkDepths(ctx, jobs);
  const store = ctx.deliveries.batches;
  const seal = ctx.replicaAck?.seal();
  try {
    await addInferenceBulk(ctx.producer, jobs, { also: (c) => store.create(c, { id, created_at: now, callback_url: opts.callbackUrl, items: jobs.map((j) => ({ queue: j.info.name, jobId: j.id })) }) });
  } catch (e) {
    await withdrawBatch(ctx, id)().catch(() => undefined);
    await store.discard(id).catch(() => undefined);
    throw e;
  }
  if (seal) await confirmDurable(ctx, seal, { kind: 'batch', id, withdraw: withdrawBatch(ctx, id) });
  return (await batchView(ctx, id))!;
}

/** MAX_QUEUE_DEPTH: a batch that would take a queue past it is refused whole (503, retryable), as a single job is. */
async function checkDepths(ctx: ApiContext, jobs: readonly BulkJob[]): Promise<void> {
  const max = ctx.config.MAX_QUEUE_DEPTH;
  if (max <= 0) return;
  const perQueue = new Map<string, number>();
  for (const j of jobs) perQueue.set(j.info.name, (perQueue.get(j.info.name) ?? 0) + 1);
  for (const [queue, n] of perQueue) {
    const waiting = await waitingCount(ctx.redis, ctx.keys, queue);
    if (waiting + n <= max) continue;
    throw new HydraError(ErrorCode.Unavailable, `queue ${queue} holds ${waiting} waiting jobs; this batch's ${n} more would pass MAX_QUEUE_DEPTH ${max}; retry later or send a smaller batch`, {
      retryable: true,
      details: { queue, waiting, batch_jobs: n, max_queue_depth: max, retry_after_s: 5 },
    });
  }
}

/** Withdraw a batch that was added but not confirmed (REDIS_MIN_REPLICAS_ACK): every item cancelled. */
const withdrawBatch = (ctx: ApiContext, id: string) => async (): Promise<Withdrawal> => {
  const n = await cancelItems(ctx, id, 'not confirmed by the replicas (REDIS_MIN_REPLICAS_ACK)');
  return n.ran > 0 ? 'ran' : 'withdrawn';
};

/** The batch's view: its counters, and the open items split into waiting and active (one pipeline over them). */
export async function batchView(ctx: ApiContext, id: string): Promise<BatchView | null> {
  const store = ctx.deliveries.batches;
  const b = await store.read(id);
  if (!b) return null;
  const open = b.total - b.completed - b.failed - b.cancelled;
  const active = open > 0 ? Math.min(open, await store.countStarted(id)) : 0;
  return viewOf(b, { waiting: open - active, active });
}

const viewOf = (b: BatchRecord, open: { waiting: number; active: number }): BatchView => ({
  id: b.id,
  object: 'batch',
  state: b.cancelled_at !== null ? 'cancelled' : b.state,
  counts: { total: b.total, waiting: open.waiting, active: open.active, completed: b.completed, failed: b.failed, cancelled: b.cancelled },
  created_at: new Date(b.created_at).toISOString(),
  ended_at: iso(b.ended_at),
  callback_url: b.callback_url,
  results_url: `/v1/batches/${b.id}/results`,
});

function resultOf(raw: BatchItemRaw): BatchResult {
  const base = { index: raw.index, job_id: raw.jobId };
  switch (raw.end) {
    case 'completed':
      return { ...base, state: 'completed', ...(raw.result !== null ? { result: raw.result } : {}) };
    case 'failed': {
      const f = raw.failure ?? { code: ErrorCode.Internal, message: 'the job failed' };
      return { ...base, state: 'failed', error: { code: f.code, message: f.message, retryable: RETRYABLE.has(f.code) } };
    }
    case 'cancelled':
      return { ...base, state: 'cancelled', error: { code: ErrorCode.Cancelled, message: `job ${raw.jobId} was cancelled`, retryable: false } };
    default:
      return { ...base, state: raw.started ? 'active' : 'waiting' };
  }
}

/** Results `offset`..`offset + limit - 1` in request order, and where the next page starts (null after the last). */
export async function batchResults(ctx: ApiContext, id: string, total: number, offset: number, limit: number): Promise<{ results: BatchResult[]; next_offset: number | null }> {
  const raw = await ctx.deliveries.batches.page(id, offset, limit);
  const next = offset + limit;
  return { results: raw.map(resultOf), next_offset: next < total ? next : null };
}

/** Items cancelled at once while cancelling a batch (each is a few round trips). */
const CANCEL_CONCURRENCY = 16;

/** Cancel every open item: waiting ones are removed (counted as cancelled then), running ones aborted on their node. */
async function cancelItems(ctx: ApiContext, id: string, why: string): Promise<{ ran: number }> {
  const items = (await ctx.deliveries.batches.items(id)).filter((i) => !i.ended);
  let ran = 0;
  let next = 0;
  const one = async () => {
    while (next < items.length) {
      const it = items[next++]!;
      try {
        await cancelJob(ctx, it.jobId, why);
      } catch (e) {
        // Ended meanwhile (a conflict): nothing to cancel, its end is counted by its worker.
        if (e instanceof HydraError && e.code === ErrorCode.Conflict) ran++;
        else if (!(e instanceof HydraError && e.code === ErrorCode.NotFound)) throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CANCEL_CONCURRENCY, items.length) }, one));
  return { ran };
}

/** Cancel a batch: not_found for an unknown one, conflict for one that ended. Answers its view afterwards. */
export async function cancelBatch(ctx: ApiContext, id: string): Promise<BatchView> {
  const store = ctx.deliveries.batches;
  const b = await store.read(id);
  if (!b) throw new HydraError(ErrorCode.NotFound, `no batch with id ${id} (unknown, or removed after JOB_RETENTION_S)`);
  if (!(await store.markCancelled(id, Date.now()))) {
    const again = await store.read(id);
    // Ended (completed, or cancelled and every item settled): nothing to cancel. Cancelled and still winding down: again.
    if (again && again.ended_at !== null) throw new HydraError(ErrorCode.Conflict, `batch ${id} already ${again.state}; nothing to cancel`);
  }
  await cancelItems(ctx, id, `POST /v1/batches/${id}/cancel`);
  return (await batchView(ctx, id))!;
}
