// Recording into the cluster-wide metrics from the places jobs end: a worker's after-job hook (each job that ended for
// good) and the API's cancel of a job that had not started (it never reaches a worker).
import type { Job } from 'bullmq';
import type { HydraError, InferResult } from '../core/index.js';
import type { Logger } from '../logger/index.js';
import { kindOfJobName, modelOfJobName, type EndWrite, type InferJob, type JobLifecycle } from '../queue/index.js';
import { cancelledWaitingIncrements, finishedJobIncrements } from './finished-job.js';
import type { MetricsBatch } from './batch.js';
import type { MetricsStore } from './stored.js';
import type { TokenTiming } from './token-timing.js';

export type JobOutcome = { state: 'completed'; result: InferResult } | { state: 'failed'; error: HydraError };

/**
 * The recording of a job that ended for good (run by this worker on `node`), as a write of the job's end
 * (libs/queue/job-end.ts): with a `batch` (METRICS_FLUSH_MS > 0) a local write that adds the job's increments to it
 * once the end is recorded; without, a write inside the completing call (or in one call with the other records after
 * a final failure). A failed write is only logged.
 */
export function finishedJobWrite(
  store: MetricsStore,
  job: Job,
  outcome: JobOutcome,
  run: { node: string; warm?: boolean; timing?: TokenTiming; logger: Logger },
  batch?: MetricsBatch | null,
): EndWrite {
  const model = modelOfJobName(job.name);
  const incs = incrementsOf(job, outcome, run);
  if (batch) return { kind: 'local', then: () => batch.add(model, incs) };
  return store.recordWrite(model, incs, (e) => run.logger.warn({ jobId: job.id, err: e.message }, 'job metrics not recorded'));
}

function incrementsOf(job: Job, outcome: JobOutcome, run: { node: string; warm?: boolean; timing?: TokenTiming }) {
  const data = job.data as InferJob;
  const now = Date.now();
  return finishedJobIncrements({
    type: data.call.type,
    node: run.node,
    state: outcome.state,
    ...(outcome.state === 'failed' ? { code: outcome.error.code } : {}),
    submittedAt: data.submitted_at,
    startedAt: job.processedOn ?? now,
    finishedAt: now,
    attemptsMade: job.attemptsMade,
    stalls: job.stalledCounter ?? 0,
    ...(run.warm === undefined ? {} : { warm: run.warm }),
    ...(outcome.state === 'completed' ? { result: outcome.result } : {}),
    ...(run.timing ? { timing: run.timing } : {}),
  });
}

/**
 * The lifecycle, with cancellations of jobs that had not started counted (they are removed from their queue, so no
 * worker sees them end). Costs one more lookup per cancel, to learn the job's model and type before it is removed.
 */
export function countingCancels(lifecycle: JobLifecycle, store: MetricsStore, logger: Logger): JobLifecycle {
  const counted = Object.create(lifecycle) as JobLifecycle;
  counted.cancel = async (jobId, why, opts) => {
    const job = (await lifecycle.find(jobId).catch(() => null))?.job;
    const r = await lifecycle.cancel(jobId, why, opts);
    if (r.outcome === 'removed' && job && kindOfJobName(job.name) === 'infer') {
      store.record(modelOfJobName(job.name), cancelledWaitingIncrements((job.data as InferJob).call.type)).catch((e: Error) => logger.warn({ jobId, err: e.message }, 'cancel metrics not recorded'));
    }
    return r;
  };
  return counted;
}
