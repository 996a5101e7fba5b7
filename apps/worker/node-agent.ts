// The node agent, the worker's composition root: builds every part once from config (connections, producer, registry,
// heartbeat, dispatcher, job runner, L1 cache, coordinator, after-job hooks, workflow finaliser, metrics), wires the wake and
// cancel channels, runs the periodic passes, and drains on stop.
import { randomUUID } from 'node:crypto';
import { ActivityLog } from '../../libs/activity/index.js';
import { createL1Cache } from '../../libs/cache/index.js';
import type { Config } from '../../libs/config/index.js';
import { ErrorCode, HydraError, type NodeRecord } from '../../libs/core/index.js';
import type { Logger } from '../../libs/logger/index.js';
import { createProducer, createRedis, hydraKeys, queueRedisTarget } from '../../libs/queue/index.js';
import { cachedNodeList, NodeRegistry, PerfStore, redisBreakerStore, type NodeView } from '../../libs/registry/index.js';
import type { QueueInfo } from '../../libs/scheduling/index.js';
import { createCoordinator } from '../../libs/workflows/index.js';
import { createAfterJob } from './after-job.js';
import { Ager } from './aging.js';
import type { InferenceBackend } from './backends/backend.js';
import { SharedBreaker } from './circuit-breaker.js';
import { Dispatcher } from './dispatcher.js';
import { Heartbeat } from './heartbeat.js';
import { startLiveness } from './liveness.js';
import { startWorkerMetrics } from './metrics-server.js';
import { Rehomer } from './rehome.js';
import { DRAIN, runJob } from './run-job.js';
import { workerSettings } from './settings.js';
import { startWorkflowFinaliser } from './workflow-finaliser.js';

export interface NodeAgent {
  nodeId: string;
  record(): NodeRecord | null;
  /**
   * Drain: stop pulling; with DRAIN_MODE=requeue hand active jobs back to the queue at once (no attempt spent),
   * with finish let them run up to DRAIN_GRACE_MS and hand back the rest; then leave the node (deregistered only
   * when this was its last live process: several may share a NODE_ID) and close.
   */
  stop(): Promise<void>;
}

export async function startNodeAgent(opts: { config: Config; logger: Logger; backend: InferenceBackend; nodeId: string; slots: number }): Promise<NodeAgent> {
  const { config, logger, backend, nodeId } = opts;
  const s = workerSettings(config, nodeId, opts.slots);
  const keys = hydraKeys(config.QUEUE_PREFIX);
  const redis = createRedis(queueRedisTarget(config), 'worker');
  const sub = createRedis(queueRedisTarget(config), 'subscriber');
  redis.on('error', (e) => logger.warn({ err: e.message }, 'redis connection error'));
  sub.on('error', () => {});
  // Metrics: this process's /metrics (METRICS_PORT) and the job metrics it records into Redis (docs/metrics.md).
  const metrics = await startWorkerMetrics(config, { redis, keys, logger, nodeId, slots: s.slots, backend, active: () => dispatcher.active });
  const producer = createProducer(config, { redis });
  const { lifecycle } = producer;
  const registry = new NodeRegistry(redis, keys);
  const perf = new PerfStore(redis, keys);
  const nodes = cachedNodeList(registry);
  const wfLogger = logger.child({ part: 'workflows' });
  const cache = createL1Cache(config, { redis, keys, logger: wfLogger });
  const coordinator = createCoordinator(config, { redis, producer, nodes, cache, logger: wfLogger });
  const afterJob = createAfterJob(config, { cache, coordinator, logger: wfLogger, activity: { log: new ActivityLog(redis, keys), nodeId }, metrics });
  const finaliser = startWorkflowFinaliser(config, { redis, keys, coordinator, logger: wfLogger });
  const ager = new Ager(redis, keys, s.agingStepMs, logger);
  const rehomer = new Rehomer(s, { redis, keys, producer, logger });
  // This process: owner of locks it takes, and its membership of the node in the registry.
  const owner = randomUUID();
  // Fast failover: this process's connection and running jobs, watched by the others (liveness.ts).
  const liveness = await startLiveness(config, { keys, lifecycle, logger, procId: owner, nodeId });
  const breakerOpts = {
    failures: config.BREAKER_FAILURES,
    windowMs: config.BREAKER_WINDOW_MS,
    cooldownMs: config.BREAKER_COOLDOWN_MS,
    // A probe whose process died would hold the node's half-open breaker shut; its job's lock ends by then anyway.
    probeTimeoutMs: Math.max(2 * s.lockDurationMs, config.BREAKER_COOLDOWN_MS),
  };
  // One breaker per node id, shared by its processes; its stored state outlives the window and cooldown (ms).
  const breakerStore = redisBreakerStore(redis, keys, nodeId, 2 * (config.BREAKER_WINDOW_MS + config.BREAKER_COOLDOWN_MS + breakerOpts.probeTimeoutMs));
  const breaker = new SharedBreaker(breakerOpts, breakerStore, (e) => logger.warn({ err: e.message }, 'circuit breaker state not written'));

  let others: NodeView[] = [];
  let self: NodeView | undefined;
  let queues: QueueInfo[] = [];
  const knownQueues = new Set<string>();

  const heartbeat: Heartbeat = new Heartbeat(s, config, { backend, registry, breaker, procId: owner, logger, onHealthChange: () => dispatcher.wake() });
  const refresh = async () => {
    const [all, qs] = await Promise.all([registry.list(Date.now()), producer.listQueues()]);
    others = all.filter((n) => n.id !== nodeId);
    self = all.find((n) => n.id === nodeId);
    queues = qs;
    for (const q of queues) knownQueues.add(q.name);
    await rehomer.pass(queues, new Set([nodeId, ...all.map((n) => n.id)]), owner);
  };

  const dispatcher: Dispatcher = new Dispatcher(s, {
    redis,
    registry,
    keys,
    logger,
    breaker,
    node: () => heartbeat.record(),
    others: () => others,
    self: () => self,
    queues: () => queues,
    run: (a) =>
      runJob(a, s, { redis, keys, lifecycle, registry, backend: metrics.backend, logger, node: () => heartbeat.record(), breaker, perf, onFinished: afterJob.onFinished, liveness }).finally(() => {
        // A cold job loaded a model (and may have evicted one): report the change soon, at most a few times a second.
        if (!a.choice.warm) heartbeat.soon();
      }),
  });

  await heartbeat.beat();
  // The models loaded before this process took any job: later differences are loads and unloads.
  metrics.nodeSeen(heartbeat.record());
  await refresh();

  await sub.subscribe(keys.channels.wake, keys.channels.cancel);
  sub.on('message', (channel: string, msg: string) => {
    if (channel === keys.channels.wake) {
      if (!knownQueues.has(msg)) refresh().then(() => dispatcher.wake(), () => undefined);
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
    setInterval(
      () =>
        void heartbeat.beat().then(
          () => metrics.nodeSeen(heartbeat.record()),
          (e: Error) => logger.warn({ err: e.message }, 'heartbeat failed'),
        ),
      s.heartbeatMs,
    ),
    setInterval(() => void refresh().catch(() => undefined), Math.min(s.pollMs, 1000)),
    setInterval(() => void ager.pass(queues, owner, Date.now()).catch(() => undefined), Math.max(50, Math.floor(s.agingStepMs / 2))),
  ];
  dispatcher.start();
  const rec = heartbeat.record();
  logger.info({ node: nodeId, backend: backend.kind, url: backend.url, slots: s.slots, type: rec?.type, models: rec?.models_available.map((m) => m.name) }, 'node agent started');

  return {
    nodeId,
    record: () => heartbeat.record(),
    async stop() {
      for (const t of timers) clearInterval(t);
      heartbeat.stop();
      await dispatcher.stop();
      const settle = async (ms: number) => {
        const deadline = Date.now() + ms;
        while (dispatcher.active.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      };
      if (s.drainMode === 'finish') await settle(s.drainGraceMs);
      const handedBack = dispatcher.active.size;
      for (const a of dispatcher.active.values()) a.abort.abort(DRAIN);
      await settle(10_000);
      if (handedBack) logger.info({ node: nodeId, jobs: handedBack }, 'handed active jobs back to the queue');
      const gone = await registry.leave(nodeId, owner, Date.now()).catch(() => true);
      await liveness.stop();
      if (!gone) logger.info({ node: nodeId }, 'other processes still serve this node: it stays registered');
      await finaliser.close().catch(() => undefined);
      await coordinator.close().catch(() => undefined);
      await dispatcher.close();
      await ager.close();
      await rehomer.close();
      await producer.close().catch(() => undefined);
      cache.close();
      await backend.close().catch(() => undefined);
      await metrics.close();
      sub.disconnect();
      await redis.quit().catch(() => redis.disconnect());
      logger.info({ node: nodeId }, 'node agent stopped');
    },
  };
}
