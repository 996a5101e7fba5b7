// Runs one taken job on the backend by its kind (inference, or admin: pull/delete/unload): validate, stream, complete or fail (retry or final), publish the end.
import { UnrecoverableError } from 'bullmq';
import { ErrorCode, HydraError, routingDecision, toHydraError, type InferResult, type InferenceOutput, type NodeRecord } from '../../libs/core/index.js';
import type { Logger } from '../../libs/logger/index.js';
import {
  checkPayload,
  DONE_MESSAGE_RESULT_LIMIT,
  encodeFailure,
  holdsLock,
  kindOfJobName,
  modelOfJobName,
  RequestIdSchema,
  TokenStream,
  type DoneMessage,
  type HydraKeys,
  type InferJob,
  type JobKind,
  type JobLifecycle,
  type EndWrite,
  type EndWriter,
  type JobEnder,
  type JobPayload,
  type RedisClient,
} from '../../libs/queue/index.js';
import type { NodeRegistry, PerfStore } from '../../libs/registry/index.js';
import { perfSampleOf, type PerfSample } from '../../libs/scheduling/index.js';
import type { InferenceBackend } from './backends/backend.js';
import { runAdmin, type AdminResult } from './admin-job.js';
import type { ActiveJob } from './dispatcher.js';
import type { CircuitBreaker } from './circuit-breaker.js';
import type { JobTracker } from './liveness.js';
import type { WorkerSettings } from './settings.js';

type FinalOutcome = { state: 'completed'; result: InferResult } | { state: 'failed'; error: HydraError };

export interface RunDeps {
  redis: RedisClient;
  keys: HydraKeys;
  lifecycle: JobLifecycle;
  registry: NodeRegistry;
  backend: InferenceBackend;
  logger: Logger;
  node: () => NodeRecord | null;
  breaker: CircuitBreaker;
  /** Where each completed inference job's speed goes (tokens/s, first token, load: EWMAs per node × model). */
  perf?: PerfStore;
  /**
   * Called once a job has ended for good (completed, or failed with no retry left), after BullMQ recorded it.
   * Workflows and the cache hang off this; errors are logged, never fatal for the job.
   */
  onFinished?: (job: ActiveJob['job'], outcome: FinalOutcome) => Promise<void>;
  /**
   * A job's records once it ended for good (job metrics, activity, history), as writes of its end: inside the call that
   * completes it (`ender`), or after a final failure in one call of their own (`writer`).
   */
  records?: (job: ActiveJob['job'], outcome: FinalOutcome) => EndWrite[];
  /** Sends writes of a job's end in one call of their own (libs/queue/job-end.ts `endWriter`). */
  writer?: EndWriter;
  /** Fast failover (liveness.ts): the jobs this process runs, so a live process can requeue them if it dies. */
  liveness?: JobTracker;
  /** Completes a job and writes the rest of its end in one call (libs/queue/job-end.ts). */
  ender: JobEnder;
}

/** Abort reason for a job handed back because its worker is shutting down (SIGTERM drain). */
export const DRAIN = new HydraError(ErrorCode.Unavailable, 'the worker is shutting down; the job was handed back to the queue', { retryable: true });

/**
 * Abort reason for a job whose lock this run no longer holds (renewal refused): the process was paused (SIGSTOP, GC) or
 * cut off from Redis for longer than LOCK_DURATION_MS, or taken for dead, and the job runs, or will run, elsewhere.
 * Nothing is recorded for it: that run reports the end.
 */
const LOCK_LOST = new HydraError(ErrorCode.Unavailable, 'this worker lost the job\'s lock (paused or cut off from Redis for longer than LOCK_DURATION_MS); it runs again elsewhere', { retryable: true });

/** Failures that say something about the node's backend, and so count for its circuit breaker. */
const blamesBackend = (e: HydraError): boolean =>
  e.retryable && (e.code === ErrorCode.BackendUnavailable || e.code === ErrorCode.BackendError || e.code === ErrorCode.Timeout);

/** The job kinds a node agent runs, and what each returns. */
type RunKind = Extract<JobKind, 'infer' | 'admin'>;
interface Results {
  infer: InferResult;
  admin: AdminResult;
}
/** What a handler measured of its run, for the node's speed figures. */
interface Metered {
  sample?: PerfSample;
}
type Handler<K extends RunKind> = (data: JobPayload<K>, a: ActiveJob, s: WorkerSettings, d: RunDeps, stream: TokenStream, m: Metered) => Promise<Results[K]>;

async function handleInfer(data: InferJob, a: ActiveJob, s: WorkerSettings, d: RunDeps, stream: TokenStream, m: Metered): Promise<InferResult> {
  // Time to the first piece (text or reasoning), from the call's start: the backend's own durations say when decoding
  // began, not when the client saw it.
  const callStart = performance.now();
  let firstAt: number | undefined;
  const first = () => (firstAt ??= performance.now());
  const hooks = {
    signal: a.abort.signal,
    onToken: (t: string) => {
      first();
      stream.push(t);
    },
    onThinking: (t: string) => {
      first();
      stream.push(t, 'thinking');
    },
  };
  const call = data.call;
  let out: InferenceOutput;
  if (call.type === 'generate') out = await d.backend.generate(call, hooks);
  else if (call.type === 'chat') out = await d.backend.chat(call, hooks);
  else out = await d.backend.embed(call, hooks);
  const sample = perfSampleOf(out, { callMs: performance.now() - callStart, ...(firstAt === undefined ? {} : { firstTokenMs: firstAt - callStart }), loaded: !a.choice.warm });
  if (sample) m.sample = sample;
  const job = a.job;
  const started = job.processedOn ?? Date.now();
  return {
    ...out,
    node_id: s.nodeId,
    node_url: d.backend.url,
    simulated: d.node()?.simulated ?? false,
    routing_decision: routingDecision(data.route, data.attempts_log, { node_id: s.nodeId, reason: a.choice.reason, queued_ms: started - job.timestamp, attempt: job.attemptsMade + 1, at: started }),
  };
}

/** Admin jobs never use the backend deadline: a pull of a large model may take far longer than any inference. */
const handleAdmin: Handler<'admin'> = (data, a, s, d, stream) => runAdmin(data, d.backend, s.nodeId, a.abort.signal, stream);

/**
 * The job kinds a node agent runs, by the queues it pulls from: inference (class and node queues) and admin (its
 * node queue). Workflow parents are run by the workflow finaliser and gates by nobody; the catalog lists them so
 * their payloads are checked when enqueued.
 */
const handlers = { infer: handleInfer, admin: handleAdmin } satisfies { [K in RunKind]: Handler<K> };

const isRunKind = (k: string): k is RunKind => k === 'infer' || k === 'admin';

export async function runJob(a: ActiveJob, s: WorkerSettings, d: RunDeps): Promise<void> {
  const { job, token } = a;
  const jobId = job.id!;
  // The API request's id (its access-log line has it), read before validation so even a bad payload's line has it.
  const requestId = RequestIdSchema.safeParse((job.data as { request_id?: unknown } | undefined)?.request_id);
  const log = d.logger.child({ jobId, queue: job.queueName, ...(requestId.success ? { requestId: requestId.data } : {}) });
  const stream = new TokenStream(d.redis, d.keys.stream(jobId), { flushMs: s.streamFlushMs, retentionS: s.retentionS, nodeId: s.nodeId });
  const timers: NodeJS.Timeout[] = [];
  d.liveness?.track(jobId, job.queueName, token, a.tracked);
  let abortReason: HydraError | null = null;
  const abortWith = (e: HydraError) => {
    abortReason ??= e;
    a.abort.abort(e);
  };
  // Keep the BullMQ lock and the memory reservation alive while the job runs. A refused renewal (0: the lock is gone or
  // another run's) stops the backend at once: whatever this run produces now could not be recorded.
  timers.push(
    setInterval(() => {
      job.extendLock(token, s.lockDurationMs).then(
        (held) => {
          if (Number(held) !== 1) abortWith(LOCK_LOST);
        },
        () => undefined,
      );
      d.registry.renew(s.nodeId, [token], Date.now(), s.lockDurationMs * 2).catch(() => undefined);
    }, Math.floor(s.lockDurationMs / 2)),
  );
  const kindName = kindOfJobName(job.name);
  const metered: Metered = {};
  try {
    if (!isRunKind(kindName)) throw new HydraError(ErrorCode.BadRequest, `job ${job.name} is of kind "${kindName}", which node agents do not run`);
    // Validated again on receipt: a payload that fails is failed as unrecoverable, never run nor dropped.
    const typed = kindName === 'infer' ? { kind: kindName, data: checkPayload('infer', job.data) } : { kind: kindName, data: checkPayload('admin', job.data) };
    if (job.deferredFailure) {
      // BullMQ marks a job that stalled more than MAX_STALLED_COUNT times; its processor must fail it.
      throw new HydraError(
        ErrorCode.PoisonPill,
        `the job crashed its worker too many times (${job.deferredFailure}; ${Number(job.stalledCounter ?? 0)} strikes, MAX_STALLED_COUNT allows ${s.maxStalledCount}): failed as a poison pill instead of retried. A prompt that makes the backend run out of memory does this`,
      );
    }
    // The one-call take read the cancel flag already (dispatcher.ts); a job taken otherwise is checked here.
    if (a.cancelled ?? (await d.lifecycle.isCancelled(jobId))) throw new HydraError(ErrorCode.Cancelled, 'the job was cancelled');
    // Each deadline's error is made only when it expires: an Error's stack trace was 2 % of a worker's CPU per job.
    const deadlines: [number, () => HydraError][] = [];
    if (typed.kind === 'infer') {
      const { data } = typed;
      deadlines.push([Date.now() + s.backendTimeoutMs, () => new HydraError(ErrorCode.Timeout, `the backend did not finish within BACKEND_TIMEOUT_MS (${s.backendTimeoutMs} ms)`, { retryable: true })]);
      if (data.timeout_ms) {
        const ms = data.timeout_ms;
        deadlines.push([data.submitted_at + ms, () => new HydraError(ErrorCode.Timeout, `the job's timeout_ms (${ms} ms, queued + running) expired`)]);
      }
    }
    for (const [at, err] of deadlines) {
      if (at <= Date.now()) throw err();
      timers.push(setTimeout(() => abortWith(err()), at - Date.now()));
    }
    a.abort.signal.addEventListener('abort', () => {
      const r: unknown = a.abort.signal.reason;
      if (r instanceof HydraError) abortReason ??= r;
    });
    const outcome =
      typed.kind === 'infer'
        ? { kind: typed.kind, result: await handlers.infer(typed.data, a, s, d, stream, metered) }
        : { kind: typed.kind, result: await handlers.admin(typed.data, a, s, d, stream, metered) };
    const { result } = outcome;
    // An admin op says nothing about the backend's inference health.
    if (outcome.kind === 'infer') d.breaker.success();
    else d.breaker.neutral();
    // The done message rides in the end call too, last, unless something must be in place before it: a cache answer
    // (a client told the job ended finds it for a resend) or a workflow's next step (its hook makes several round trips).
    const inferData = typed.kind === 'infer' ? typed.data : null;
    const doneRides = !inferData?.cache_key && !inferData?.workflow;
    const doneMessage = (): DoneMessage => {
      const json = JSON.stringify(result);
      return {
        id: jobId,
        state: 'completed',
        attempts_made: job.attemptsMade, // the completion has counted this attempt already
        started_at: job.processedOn ?? Date.now(),
        finished_at: Date.now(),
        ...(json.length <= DONE_MESSAGE_RESULT_LIMIT ? { result } : {}),
      };
    };
    const publishFailed = (e: Error) => log.warn({ err: e.message }, 'could not publish the job\'s end');
    // BullMQ's completion, the stream's end (with its last tokens), the retention count, the reservation, the liveness
    // entry, then the writes that ride along (node speed figures, job metrics, activity, history, the done message):
    // one call (job-end.lua), and nothing of it written when BullMQ refuses. The writes are built from the job as
    // BullMQ then holds it (attempt counted, finishedOn).
    const writes = (done: typeof job): EndWrite[] => {
      const w: EndWrite[] = [];
      // The node's speed figures (libs/registry/perf.ts), from completed jobs only. A model's first figure on a node is
      // what estimates and placement start using, so the shared registry snapshot is dropped for it; later ones only move
      // an average, and the snapshot carries them within its max age.
      if (inferData && metered.sample && d.perf) {
        const model = inferData.call.model;
        w.push(
          d.perf.recordWrite(s.nodeId, model, metered.sample, Date.now(), (samples, err) => {
            if (err) log.warn({ err: err.message, model }, 'speed figures not recorded');
            else if (samples === 1) void d.registry.invalidateShared().catch(() => undefined);
          }),
        );
      }
      if (outcome.kind === 'infer' && d.records) w.push(...d.records(done, { state: 'completed', result: outcome.result }));
      if (doneRides) w.push(d.lifecycle.doneWrite(doneMessage(), publishFailed));
      return w;
    };
    try {
      await d.ender(job, token, result, {
        stream: { key: d.keys.stream(jobId), data: result, tail: stream.takeTail(), retentionS: s.retentionS },
        retire: d.lifecycle.retirement(outcome.kind, job.queueName, 'completed'),
        nodeId: s.nodeId,
        liveJobs: d.liveness?.key ?? d.keys.liveJobs(''),
        writes,
      });
      a.ended = true;
    } catch (e) {
      // Lost the lock (e.g. Redis was away longer than LOCK_DURATION_MS): the job was or will be re-run elsewhere,
      // and that run reports the end. Nothing more to record here: not a failure, not an attempt.
      stream.discard();
      log.warn({ err: (e as Error).message }, 'could not complete the job (lock lost); it runs again elsewhere');
      return;
    }
    // The rest of the hook (callback, batch, cache store, workflow), then, if it did not ride along, the done message:
    // sent in one turn they leave in one socket write (coalesceWrites), in this order on this connection.
    const hooks = outcome.kind === 'infer' ? d.onFinished?.(job, { state: 'completed', result: outcome.result }).catch((e: Error) => log.error({ err: e.message }, 'after-completion hook failed')) : undefined;
    if (!doneRides) {
      // A workflow step's hook advances its workflow over several round trips: its done message waits for them.
      if (inferData?.workflow) await hooks;
      void d.lifecycle.publishDone(doneMessage()).catch(publishFailed);
    }
    // Nothing here is awaited: the slot is freed now, so the next dispatch round goes out in this same write.
    log.info({ node: s.nodeId, kind: outcome.kind, model: modelOfJobName(job.name), ms: Date.now() - (job.processedOn ?? Date.now()) }, 'job completed');
  } catch (raw) {
    const err = abortReason ?? toHydraError(raw);
    if (err === LOCK_LOST) {
      d.breaker.neutral();
      stream.discard();
      log.warn({ node: s.nodeId }, 'job stopped: lock lost; it runs again elsewhere');
      return;
    }
    if (err === DRAIN) {
      // Shutting down: back to the queue, no attempt spent, another node (or this one after restart) runs it.
      d.breaker.neutral();
      try {
        await job.moveToWait(token);
        await stream.event('requeued', { node_id: s.nodeId, reason: DRAIN.message });
        log.info({ node: s.nodeId }, 'job handed back to the queue (drain)');
      } catch (e) {
        log.warn({ err: (e as Error).message }, 'could not hand the job back; the stalled checker will re-run it');
      }
      return;
    }
    if (kindName === 'infer' && blamesBackend(err)) {
      if (d.breaker.failure(Date.now())) log.warn({ node: s.nodeId }, 'circuit breaker open: not pulling jobs for a cooldown');
    } else d.breaker.neutral();
    const attempts = job.opts.attempts ?? 1;
    const final = !err.retryable || job.attemptsMade + 1 >= attempts;
    try {
      // A run that lost its lock (woken from a pause after the job ran again elsewhere) must not touch the job: its
      // attempts log and exclusion belong to the run that holds it now. moveToFailed checks the lock, these writes do not.
      if (!(await holdsLock(d.redis, d.keys, job.queueName, jobId, token))) {
        stream.discard();
        log.warn({ node: s.nodeId, code: err.code }, 'could not record the job failure (lock lost); it runs again elsewhere');
        return;
      }
      if (!final) {
        const data = job.data as InferJob;
        const log_ = [...(data.attempts_log ?? []), { attempt: job.attemptsMade + 1, node_id: s.nodeId, error: { code: err.code, message: err.message }, at: Date.now() }];
        await job.updateData({ ...data, attempts_log: log_ });
        if (s.excludeFailedNodeMs > 0) await d.redis.set(d.keys.excluded(jobId), s.nodeId, 'PX', s.excludeFailedNodeMs);
        await stream.event('retry', { attempt: job.attemptsMade + 1, node_id: s.nodeId, error: err.toJSON() });
      }
      // A final failure must not be retried by BullMQ even if attempts remain (non-retryable error).
      const failure = final ? new UnrecoverableError(encodeFailure(err)) : new Error(encodeFailure(err));
      await job.moveToFailed(failure, token, false);
      if (final) {
        await stream.finish('error', { ...err.toJSON(), node_id: s.nodeId, attempts: job.attemptsMade });
        const msg: DoneMessage = { id: jobId, state: 'failed', attempts_made: job.attemptsMade, finished_at: Date.now(), error: { code: err.code, message: err.message } };
        await d.lifecycle.publishDone(msg);
        void d.lifecycle.retire(kindName === 'admin' ? 'admin' : 'infer', job.queueName, 'failed', jobId).catch((e: Error) => log.warn({ err: e.message }, 'could not retire the job'));
        // Records, cache and workflows follow inference jobs only.
        if (kindName === 'infer') {
          const failed = { state: 'failed' as const, error: err };
          if (d.records && d.writer) void d.writer(d.records(job, failed)).catch((e: Error) => log.warn({ err: e.message }, 'the job\'s records were not written'));
          await d.onFinished?.(job, failed).catch((e: Error) => log.error({ err: e.message }, 'after-failure hook failed'));
        }
      }
      log.warn({ node: s.nodeId, code: err.code, err: err.message, final }, final ? 'job failed' : 'job attempt failed; will retry');
    } catch (e) {
      stream.discard();
      log.error({ err: (e as Error).message }, 'could not record the job failure; the stalled checker will re-run it');
    }
  } finally {
    for (const t of timers) clearTimeout(t);
    d.liveness?.untrack(jobId, a.ended);
  }
}
