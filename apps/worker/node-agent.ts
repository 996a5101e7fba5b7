// The node agent: registers and heartbeats the node, keeps the pull loop fed, handles cancels, ages priorities, drains on stop.
import { randomUUID } from 'node:crypto';
import { ErrorCode, HydraError, type BackendProbe, type NodeRecord } from '../../libs/core/index.js';
import type { Config } from '../../libs/config/index.js';
import type { Logger } from '../../libs/logger/index.js';
import { createRedis, hydraKeys, Producer } from '../../libs/queue/index.js';
import { NodeRegistry } from '../../libs/registry/index.js';
import type { QueueInfo } from '../../libs/scheduling/index.js';
import { Ager } from './aging.js';
import { Rehomer } from './rehome.js';
import type { InferenceBackend } from './backends/backend.js';
import { Dispatcher } from './dispatcher.js';
import { buildNodeRecord, osRam, readNvidiaSmi } from './resources.js';
import { CircuitBreaker } from './circuit-breaker.js';
import { DRAIN, runJob } from './run-job.js';
import { startWorkflowHooks } from './workflow-hooks.js';

export interface NodeAgent {
  nodeId: string;
  record(): NodeRecord | null;
  /**
   * Drain: stop pulling; with DRAIN_MODE=requeue hand active jobs back to the queue at once (no attempt spent),
   * with finish let them run up to DRAIN_GRACE_MS and hand back the rest; then deregister and close.
   */
  stop(): Promise<void>;
}

export async function startNodeAgent(opts: { config: Config; logger: Logger; backend: InferenceBackend; nodeId: string; slots: number }): Promise<NodeAgent> {
  const { config, logger, backend, nodeId, slots } = opts;
  const keys = hydraKeys(config.QUEUE_PREFIX);
  const redis = createRedis(config.REDIS_URL, 'worker');
  const sub = createRedis(config.REDIS_URL, 'subscriber');
  redis.on('error', (e) => logger.warn({ err: e.message }, 'redis connection error'));
  sub.on('error', () => {});
  const registry = new NodeRegistry(redis, keys);
  const ager = new Ager(redis, keys, config.AGING_STEP_MS, logger);
  const rehomer = new Rehomer({
    redis,
    keys,
    producer: new Producer({ redis, keys, attempts: config.JOB_ATTEMPTS, backoffMs: config.BACKOFF_MS, retentionS: config.JOB_RETENTION_S }),
    logger,
    lockDurationMs: config.LOCK_DURATION_MS,
    stalledIntervalMs: config.STALLED_INTERVAL_MS,
    maxStalledCount: config.MAX_STALLED_COUNT,
    retentionS: config.JOB_RETENTION_S,
  });
  const owner = randomUUID();
  const breaker = new CircuitBreaker({ failures: config.BREAKER_FAILURES, windowMs: config.BREAKER_WINDOW_MS, cooldownMs: config.BREAKER_COOLDOWN_MS });

  let record = null as NodeRecord | null;
  let others: NodeRecord[] = [];
  let queues: QueueInfo[] = [];
  const knownQueues = new Set<string>();
  let lastHealthy: boolean | null = null;

  const heartbeat = async () => {
    const probe: BackendProbe = await backend.probe(AbortSignal.timeout(Math.max(1000, config.HEARTBEAT_MS)));
    const rec = buildNodeRecord({
      id: nodeId,
      url: config.NODE_URL ?? backend.url,
      backend: backend.kind,
      probe,
      gpu: await readNvidiaSmi(),
      ...(config.NODE_VRAM_GB !== undefined ? { nodeVramGb: config.NODE_VRAM_GB } : {}),
      ...(config.NODE_RAM_GB !== undefined ? { nodeRamGb: config.NODE_RAM_GB } : {}),
      bufferMb: config.VRAM_BUFFER_MB,
      numCtx: config.NUM_CTX,
      numParallel: config.NUM_PARALLEL,
      slots,
      now: Date.now(),
      ram: osRam(),
    });
    rec.breaker = breaker.view(Date.now());
    record = rec;
    await registry.heartbeat(rec, config.HEARTBEAT_MS * 3);
    if (lastHealthy !== rec.healthy) {
      logger[rec.healthy ? 'info' : 'warn']({ node: nodeId, backend: backend.url, err: rec.error }, rec.healthy ? 'backend healthy' : 'backend unhealthy; not pulling jobs');
      lastHealthy = rec.healthy;
      dispatcher.wake();
    }
  };
  let soon: NodeJS.Timeout | null = null;
  const soonHeartbeat = () => {
    soon ??= setTimeout(() => {
      soon = null;
      void heartbeat().catch(() => undefined);
    }, 200);
  };
  const refresh = async () => {
    const [all, qs] = await Promise.all([registry.list(Date.now()), redis.hgetall(keys.queues)]);
    others = all.filter((n) => n.id !== nodeId);
    queues = Object.values(qs).map((v) => JSON.parse(v) as QueueInfo);
    for (const q of queues) knownQueues.add(q.name);
    await rehomer.pass(queues, new Set([nodeId, ...all.map((n) => n.id)]), owner);
  };

  // L1 cache writes and workflow steps hang off every finished job (apps/worker/workflow-hooks.ts).
  const workflowHooks = startWorkflowHooks({ config, logger, redis, keys });
  const dispatcher: Dispatcher = new Dispatcher({
    redis,
    registry,
    keys,
    logger,
    slots,
    lockDurationMs: config.LOCK_DURATION_MS,
    stalledIntervalMs: config.STALLED_INTERVAL_MS,
    maxStalledCount: config.MAX_STALLED_COUNT,
    pollMs: config.POLL_MS,
    localityWaitMs: config.LOCALITY_WAIT_MS,
    nodeId,
    breaker,
    backoffMs: config.BACKOFF_MS,
    backoffMaxMs: config.BACKOFF_MAX_MS,
    node: () => record,
    others: () => others,
    queues: () => queues,
    run: (a) =>
      runJob(a, {
        redis,
        keys,
        registry,
        backend,
        logger,
        node: () => record,
        nodeId,
        lockDurationMs: config.LOCK_DURATION_MS,
        retentionS: config.JOB_RETENTION_S,
        backendTimeoutMs: config.BACKEND_TIMEOUT_MS,
        breaker,
        excludeFailedNodeMs: config.EXCLUDE_FAILED_NODE_MS,
        onFinished: workflowHooks.onFinished,
      }).finally(() => {
        // A cold job loaded a model (and may have evicted one): report the change soon, at most a few times a second.
        if (!a.choice.warm) soonHeartbeat();
      }),
  });

  await heartbeat();
  await refresh();

  await sub.subscribe(keys.channels.wake, keys.channels.cancel);
  sub.on('message', (channel: string, msg: string) => {
    if (channel === keys.channels.wake) {
      if (!knownQueues.has(msg)) void refresh().then(() => dispatcher.wake(), () => undefined);
      else dispatcher.wake();
    } else if (channel === keys.channels.cancel) {
      const a = dispatcher.active.get(msg);
      if (a) {
        logger.info({ jobId: msg }, 'cancelling active job');
        a.abort.abort(new HydraError(ErrorCode.Cancelled, 'the job was cancelled (DELETE /v1/jobs/:id)'));
      }
    }
  });

  const timers = [
    setInterval(() => void heartbeat().catch((e: Error) => logger.warn({ err: e.message }, 'heartbeat failed')), config.HEARTBEAT_MS),
    setInterval(() => void refresh().catch(() => undefined), Math.min(config.POLL_MS, 1000)),
    setInterval(() => void ager.pass(queues, owner, Date.now()).catch(() => undefined), Math.max(50, Math.floor(config.AGING_STEP_MS / 2))),
  ];
  dispatcher.start();
  logger.info({ node: nodeId, backend: backend.kind, url: backend.url, slots, type: (record as NodeRecord | null)?.type, models: (record as NodeRecord | null)?.models_available.map((m) => m.name) }, 'node agent started');

  return {
    nodeId,
    record: () => record,
    async stop() {
      for (const t of timers) clearInterval(t);
      await dispatcher.stop();
      const settle = async (ms: number) => {
        const deadline = Date.now() + ms;
        while (dispatcher.active.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      };
      if (config.DRAIN_MODE === 'finish') await settle(config.DRAIN_GRACE_MS);
      const handedBack = dispatcher.active.size;
      for (const a of dispatcher.active.values()) a.abort.abort(DRAIN);
      await settle(10_000);
      if (handedBack) logger.info({ node: nodeId, jobs: handedBack }, 'handed active jobs back to the queue');
      await registry.deregister(nodeId).catch(() => undefined);
      await workflowHooks.close().catch(() => undefined);
      await dispatcher.close();
      await ager.close();
      await rehomer.close();
      await backend.close().catch(() => undefined);
      sub.disconnect();
      await redis.quit().catch(() => redis.disconnect());
      logger.info({ node: nodeId }, 'node agent stopped');
    },
  };
}

