// After a job ends for good: store its answer in the L1 cache and advance its workflow. Also runs, in every worker
// process, the finaliser of workflow jobs (a BullMQ Worker on the workflow queue) and the workflow repair sweep.
import os from 'node:os';
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { L1Cache } from '../../libs/cache/index.js';
import type { Config } from '../../libs/config/index.js';
import type { NodeRecord } from '../../libs/core/index.js';
import type { Logger } from '../../libs/logger/index.js';
import { createRedis, Producer, type HydraKeys, type InferJob } from '../../libs/queue/index.js';
import { NodeRegistry } from '../../libs/registry/index.js';
import { Coordinator, WORKFLOW_QUEUE } from '../../libs/workflows/index.js';
import type { RunDeps } from './run-job.js';

/** How often the repair sweep runs, and how long a workflow must have been quiet before it looks (ms). */
const SWEEP_EVERY_MS = 3000;
const SWEEP_IDLE_MS = 5000;
/** Workflow jobs finalised at once per process (each is a few Redis reads). */
const FINALISER_CONCURRENCY = 4;

export interface WorkflowHooks {
  onFinished: NonNullable<RunDeps['onFinished']>;
  coordinator: Coordinator;
  close(): Promise<void>;
}

export function startWorkflowHooks(opts: { config: Config; logger: Logger; redis: Redis; keys: HydraKeys }): WorkflowHooks {
  const { config, logger, redis, keys } = opts;
  const log = logger.child({ part: 'workflows' });
  const separateCache = config.CACHE_REDIS_URL !== undefined && config.CACHE_REDIS_URL !== config.REDIS_URL;
  const cacheRedis = separateCache ? createRedis(config.CACHE_REDIS_URL!, 'producer') : redis;
  if (separateCache) cacheRedis.on('error', (e: Error) => log.warn({ err: e.message }, 'cache redis connection error'));
  const cache = new L1Cache({
    store: cacheRedis,
    stats: redis,
    keys,
    ttlS: config.CACHE_TTL_S,
    maxEntryBytes: config.CACHE_MAX_ENTRY_BYTES,
    onError: (op, err) => log.warn({ op, err: err.message }, 'L1 cache unavailable; going on without it'),
  });
  const producer = new Producer({ redis, keys, attempts: config.JOB_ATTEMPTS, backoffMs: config.BACKOFF_MS, retentionS: config.JOB_RETENTION_S });
  const registry = new NodeRegistry(redis, keys);
  let nodesCache: { at: number; nodes: Promise<NodeRecord[]> } | null = null;
  const coordinator = new Coordinator({
    redis,
    keys,
    producer,
    nodes: () => {
      if (!nodesCache || Date.now() - nodesCache.at > 250) nodesCache = { at: Date.now(), nodes: registry.list(Date.now()) };
      return nodesCache.nodes;
    },
    localHosts: [os.hostname(), 'localhost', '127.0.0.1'],
    cache,
    logger: log,
    retentionS: config.JOB_RETENTION_S,
  });

  const finaliser = new Worker(WORKFLOW_QUEUE, (job, token) => coordinator.finalise(job, token), {
    connection: redis,
    prefix: keys.prefix,
    concurrency: FINALISER_CONCURRENCY,
    lockDuration: config.LOCK_DURATION_MS,
    stalledInterval: config.STALLED_INTERVAL_MS,
    maxStalledCount: 2,
    skipVersionCheck: true,
  });
  finaliser.on('error', (err) => log.warn({ err: err.message }, 'workflow finaliser error'));
  // Announced only once BullMQ recorded the end, as single jobs are.
  const announce = (id: string | undefined) => void (id ? coordinator.announceEnd(id).catch((e: Error) => log.warn({ workflow: id, err: e.message }, 'could not announce the workflow end')) : undefined);
  finaliser.on('completed', (job) => announce(job.id));
  finaliser.on('failed', (job) => announce(job?.id));

  let sweeping = false;
  const sweep = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    coordinator
      .reconcile(Date.now(), SWEEP_IDLE_MS)
      .then((n) => n > 0 && log.warn({ repaired: n }, 'workflow sweep repaired steps'))
      .catch((e: Error) => log.warn({ err: e.message }, 'workflow sweep failed'))
      .finally(() => (sweeping = false));
  }, SWEEP_EVERY_MS);
  sweep.unref();

  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    clearInterval(sweep);
    await finaliser.close().catch(() => undefined);
    await coordinator.close();
    await producer.close().catch(() => undefined);
    if (separateCache) cacheRedis.disconnect();
  };
  // The node agent quits this connection when it stops: stop with it.
  redis.once('end', () => void close());

  return {
    coordinator,
    close,
    async onFinished(job, outcome) {
      // runJob validated the payload before running it.
      const data = job.data as InferJob;
      if (outcome.state === 'completed' && data.cache_key) {
        const stored = await cache.put(data.cache_key, outcome.result, job.id);
        if (stored === 'too_large') log.debug({ jobId: job.id, limit: config.CACHE_MAX_ENTRY_BYTES }, 'answer larger than CACHE_MAX_ENTRY_BYTES; not cached');
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
