// The workflow finaliser of a worker process: a BullMQ Worker on the workflow queue that finalises workflow jobs once
// their steps have settled, announces each end after BullMQ recorded it (records it in the results history, queues its
// callback), and runs the workflow repair sweep on a timer.
import { Worker, type Job } from 'bullmq';
import type { Config } from '../../libs/config/index.js';
import type { Logger } from '../../libs/logger/index.js';
import { createHistoryWriter, workflowRecord } from '../../libs/memory/index.js';
import { bullConnection, createDeliveries, type HydraKeys, type RedisClient, type WorkflowJob } from '../../libs/queue/index.js';
import { WORKFLOW_QUEUE, type Coordinator } from '../../libs/workflows/index.js';

/** How often the repair sweep runs, and how long a workflow must have been quiet before it looks (ms). */
const SWEEP_EVERY_MS = 3000;
const SWEEP_IDLE_MS = 5000;
/** Workflow jobs finalised at once per process (each is a few Redis reads). */
const FINALISER_CONCURRENCY = 4;
/** A finalisation is a few reads and one write: a second stall means something is wrong with the job, not the worker. */
const FINALISER_MAX_STALLED = 2;

export interface WorkflowFinaliserProcess {
  close(): Promise<void>;
}

export function startWorkflowFinaliser(config: Config, deps: { redis: RedisClient; keys: HydraKeys; coordinator: Coordinator; logger: Logger }): WorkflowFinaliserProcess {
  const { redis, keys, coordinator, logger } = deps;
  const { finaliser, repair } = coordinator;
  const worker = new Worker(WORKFLOW_QUEUE, (job, token) => finaliser.finalise(job, token), {
    connection: bullConnection(redis),
    prefix: keys.prefix,
    concurrency: FINALISER_CONCURRENCY,
    lockDuration: config.LOCK_DURATION_MS,
    stalledInterval: config.STALLED_INTERVAL_MS,
    maxStalledCount: FINALISER_MAX_STALLED,
    skipVersionCheck: true,
  });
  worker.on('error', (err) => logger.warn({ err: err.message }, 'workflow finaliser error'));
  // Announced only once BullMQ recorded the end, as single jobs are.
  const history = createHistoryWriter(config, { redis, keys });
  const announce = (id: string | undefined) => {
    if (!id) return;
    void finaliser.announceEnd(id).catch((e: Error) => logger.warn({ workflow: id, err: e.message }, 'could not announce the workflow end'));
    // The results history (libs/memory): one read of the finished state, one XADD; redelivery stores it once.
    if (history) {
      void coordinator.store
        .snapshot(id)
        .then((w) => {
          if (!w?.finished_at) return;
          return history.record(workflowRecord({ ...w, input: { name: w.name, input: w.input }, finished_at: w.finished_at, steps: w.order.length }));
        })
        .catch((e: Error) => logger.warn({ workflow: id, err: e.message }, 'workflow history record not written'));
    }
  };
  // Webhooks: a workflow submitted with callback_url is delivered once its end is recorded (no read: the URL is in the
  // workflow job's data). `finishedOn`: a finalisation that failed and will be retried is not an end.
  const deliveries = createDeliveries(config, { redis, keys });
  const deliver = (job: Job | undefined) => {
    const url = (job?.data as WorkflowJob | undefined)?.callback_url;
    if (!url || !job?.id || job.finishedOn === undefined) return;
    void deliveries.enqueue('workflow', job.id, url).catch((e: Error) => logger.warn({ workflow: job.id, err: e.message }, 'could not queue the workflow callback'));
  };
  worker.on('completed', (job) => {
    announce(job.id);
    deliver(job);
  });
  worker.on('failed', (job) => {
    announce(job?.id);
    deliver(job);
  });

  let sweeping = false;
  const sweep = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    void repair
      .reconcile(Date.now(), SWEEP_IDLE_MS)
      .then((n) => n > 0 && logger.warn({ repaired: n }, 'workflow sweep repaired steps'))
      .catch((e: Error) => logger.warn({ err: e.message }, 'workflow sweep failed'))
      .finally(() => (sweeping = false));
  }, SWEEP_EVERY_MS);
  sweep.unref();

  let closed: Promise<void> | null = null;
  return {
    close() {
      closed ??= (async () => {
        clearInterval(sweep);
        await worker.close().catch(() => undefined);
        await deliveries.close();
      })();
      return closed;
    },
  };
}
