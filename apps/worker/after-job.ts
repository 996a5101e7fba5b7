// What runs after a job ends for good (completed, or failed with no retry left): its answer goes into the L1 cache,
// when it is a workflow step, its workflow advances, and the dashboard's activity log, the job metrics and the results
// history (libs/memory) record it; a callback is queued and a batch counted down when the job asks for them. The three
// records are writes of the job's end (`records`, libs/queue/job-end.ts): inside the call that completes it, or in one
// call of their own after a final failure; `onFinished` does the rest.
import { finishedEntry, type ActivityLog } from '../../libs/activity/index.js';
import type { L1Cache } from '../../libs/cache/index.js';
import type { Config } from '../../libs/config/index.js';
import type { Logger } from '../../libs/logger/index.js';
import { jobRecord, type HistoryWriter } from '../../libs/memory/index.js';
import type { JobOutcome } from '../../libs/metrics/index.js';
import type { Deliveries, EndWrite, InferJob } from '../../libs/queue/index.js';
import type { Coordinator } from '../../libs/workflows/index.js';
import type { RunDeps } from './run-job.js';

type FinishedJob = Parameters<NonNullable<RunDeps['onFinished']>>[0];

export interface AfterJob {
  onFinished: NonNullable<RunDeps['onFinished']>;
  records: NonNullable<RunDeps['records']>;
}

export function createAfterJob(
  config: Config,
  deps: {
    cache: L1Cache;
    coordinator: Coordinator;
    logger: Logger;
    activity: { log: ActivityLog; nodeId: string };
    metrics?: { jobFinishedWrite(job: FinishedJob, outcome: JobOutcome): EndWrite };
    history?: HistoryWriter | null;
    deliveries?: Deliveries;
  },
): AfterJob {
  const { cache, coordinator, logger } = deps;
  const warn = (job: FinishedJob, what: string) => (e: Error) => logger.warn({ jobId: job.id, err: e.message }, what);
  return {
    records(job, outcome) {
      const now = Date.now();
      const writes: EndWrite[] = [];
      if (deps.metrics) writes.push(deps.metrics.jobFinishedWrite(job, outcome));
      writes.push(deps.activity.log.recordWrite(finishedEntry(job, outcome, deps.activity.nodeId, now), warn(job, 'activity not recorded')));
      if (deps.history) writes.push(deps.history.recordWrite(jobRecord(job, outcome, deps.activity.nodeId, now), warn(job, 'history record not written')));
      return writes;
    },
    async onFinished(job, outcome) {
      // runJob validated the payload before running it.
      const data = job.data as InferJob;
      // Webhooks and batches (libs/queue/deliveries.ts): a delivery queued, a batch counted down; only for jobs that ask.
      if (deps.deliveries && (data.callback_url || data.batch)) {
        const end = outcome.state === 'completed' ? 'completed' : outcome.error.code === 'cancelled' ? 'cancelled' : 'failed';
        void deps.deliveries.jobEnded(job.id!, data, end).catch(warn(job, 'callback or batch count not recorded'));
      }
      if (outcome.state === 'completed' && data.cache_key) {
        const stored = await cache.put(data.cache_key, outcome.result, job.id);
        if (stored === 'too_large') logger.debug({ jobId: job.id, limit: config.CACHE_MAX_ENTRY_BYTES }, 'answer larger than CACHE_MAX_ENTRY_BYTES; not cached');
      }
      if (data.workflow) {
        await coordinator.stepFinished(
          data.workflow,
          job,
          outcome.state === 'completed' ? { state: 'completed', result: outcome.result } : { state: 'failed', error: { code: outcome.error.code, message: outcome.error.message } },
        );
      }
    },
  };
}
