// A node agent: the per-node part of a worker process, in front of one inference backend: its circuit breaker,
// heartbeat (probe, registry record), dispatcher and the jobs it runs. Everything else comes from its process
// (worker-process.ts), which may run many agents (DISCOVER); it drains and leaves the node on stop.
import type { ActivityLog } from '../../libs/activity/index.js';
import type { L1Cache } from '../../libs/cache/index.js';
import type { Config } from '../../libs/config/index.js';
import type { NodeRecord } from '../../libs/core/index.js';
import type { Logger } from '../../libs/logger/index.js';
import { createHistoryWriter } from '../../libs/memory/index.js';
import { metricsRecordLua } from '../../libs/metrics/index.js';
import { createDeliveries, endWriter, jobEnder, type HydraKeys, type Producer, type RedisClient } from '../../libs/queue/index.js';
import { nodePerfLua, redisBreakerStore, type NodeRegistry, type NodeView, type PerfStore } from '../../libs/registry/index.js';
import type { QueueInfo } from '../../libs/scheduling/index.js';
import type { Coordinator } from '../../libs/workflows/index.js';
import { createAfterJob } from './after-job.js';
import type { InferenceBackend } from './backends/backend.js';
import { SharedBreaker } from './circuit-breaker.js';
import { Dispatcher, type QueueWorkers } from './dispatcher.js';
import { Heartbeat } from './heartbeat.js';
import type { Liveness } from './liveness.js';
import type { WorkerMetrics } from './metrics-server.js';
import { DRAIN, runJob } from './run-job.js';
import { workerSettings } from './settings.js';

/** What a node agent takes from its process: shared parts, and the process's latest view of the cluster. */
export interface AgentHost {
  config: Config;
  logger: Logger;
  keys: HydraKeys;
  redis: RedisClient;
  registry: NodeRegistry;
  perf: PerfStore;
  producer: Producer;
  cache: L1Cache;
  coordinator: Coordinator;
  activity: ActivityLog;
  liveness: Liveness;
  metrics: WorkerMetrics;
  workers: QueueWorkers;
  /** This process: owner of locks it takes, and its membership of each node it serves in the registry. */
  procId: string;
  /** The registered nodes other than `nodeId`, as of the process's last refresh. */
  others(nodeId: string): readonly NodeView[];
  self(nodeId: string): NodeView | undefined;
  queues(): readonly QueueInfo[];
  /** Re-read the node list and the queues now (joins a refresh already running). */
  refresh(): Promise<void>;
  /** The agent stopped: it is no longer woken, and no longer counts as live for the rehomer. */
  detach(agent: NodeAgent): void;
}

export interface NodeAgentOptions {
  backend: InferenceBackend;
  nodeId: string;
  /** Jobs this agent runs at once. */
  slots: number;
  /** A discovered server on another host (heartbeat.ts `remote`). */
  remote?: { host: string };
  /** After each heartbeat, with the record it published (DISCOVER counts unhealthy ones to drop dead hosts). */
  onBeat?: (rec: NodeRecord) => void;
  /** Default: the process's logger. */
  logger?: Logger;
}

export interface NodeAgent {
  nodeId: string;
  record(): NodeRecord | null;
  /** Look at the queues now (a job was added to one this node may serve). */
  wake(): void;
  /** Inference slots free now. */
  freeSlots(): number;
  /** A job of a queue this node may serve waits and no slot is free: the next job end here looks at the queues. */
  slotWanted(): void;
  /** Whether this agent runs the job now. */
  runs(jobId: string): boolean;
  /** Abort the job if this agent runs it; true when it did. */
  cancel(jobId: string, reason: Error): boolean;
  /**
   * Drain: stop pulling; with DRAIN_MODE=requeue hand active jobs back to the queue at once (no attempt spent),
   * with finish let them run up to DRAIN_GRACE_MS and hand back the rest; then leave the node (deregistered only
   * when this was its last live process: several may share a NODE_ID) and close the backend. Idempotent.
   */
  stop(): Promise<void>;
}

export async function startNodeAgent(host: AgentHost, opts: NodeAgentOptions): Promise<NodeAgent> {
  const { config, redis, keys, registry, liveness, procId } = host;
  const { backend, nodeId } = opts;
  const logger = opts.logger ?? host.logger;
  const s = workerSettings(config, nodeId, opts.slots);
  const { lifecycle } = host.producer;
  // A job's end writes (speed figures, job metrics, activity, history, done message; libs/queue/job-end.ts): inside the
  // call that completes it (`ender`), or in one call of their own after a final failure (`writer`).
  const endScripts = { jobMetrics: metricsRecordLua(), nodePerf: nodePerfLua() };
  const ender = jobEnder(redis, keys, lifecycle, endScripts);
  const writer = endWriter(redis, endScripts);
  let dispatcher: Dispatcher | null = null;
  const active = () => dispatcher?.active ?? new Map();
  const metrics = host.metrics.addNode({ nodeId, slots: s.slots, backend, active });
  const afterJob = createAfterJob(config, { cache: host.cache, coordinator: host.coordinator, logger: host.logger.child({ part: 'workflows' }), activity: { log: host.activity, nodeId }, metrics, history: createHistoryWriter(config, { redis, keys }), deliveries: createDeliveries(config, { redis, keys }) });
  const tracker = liveness.forNode(nodeId);
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

  const heartbeat: Heartbeat = new Heartbeat(s, config, {
    backend,
    registry,
    breaker,
    procId,
    logger,
    onHealthChange: () => dispatcher?.wake(),
    ...(opts.remote ? { remote: opts.remote } : {}),
  });
  const d: Dispatcher = new Dispatcher(s, {
    redis,
    registry,
    keys,
    logger,
    breaker,
    workers: host.workers,
    node: () => heartbeat.record(),
    others: () => host.others(nodeId),
    self: () => host.self(nodeId),
    queues: () => host.queues(),
    liveEntry: (queue, token) => tracker.entry(queue, token),
    run: (a) =>
      runJob(a, s, { redis, keys, lifecycle, registry, backend: metrics.backend, logger, node: () => heartbeat.record(), breaker, perf: host.perf, onFinished: afterJob.onFinished, records: afterJob.records, writer, liveness: tracker, ender }).finally(() => {
        // A cold job loaded a model (and may have evicted one): report the change soon, at most a few times a second.
        if (!a.choice.warm) heartbeat.soon();
      }),
  });
  dispatcher = d;

  const seen = (rec: NodeRecord | null) => {
    metrics.nodeSeen(rec);
    if (rec) opts.onBeat?.(rec);
  };
  await heartbeat.beat();
  // The models loaded before this process took any job: later differences are loads and unloads.
  seen(heartbeat.record());
  await host.refresh();

  const timer = setInterval(
    () =>
      void heartbeat.beat().then(
        () => seen(heartbeat.record()),
        (e: Error) => logger.warn({ err: e.message }, 'heartbeat failed'),
      ),
    s.heartbeatMs,
  );
  d.start();
  const rec = heartbeat.record();
  logger.info({ node: nodeId, backend: backend.kind, url: backend.url, slots: s.slots, type: rec?.type, models: rec?.models_available.map((m) => m.name) }, 'node agent started');

  let stopped: Promise<void> | null = null;
  const agent: NodeAgent = {
    nodeId,
    record: () => heartbeat.record(),
    wake: () => d.wake(),
    freeSlots: () => d.freeSlots,
    slotWanted: () => d.slotWanted(),
    runs: (jobId) => d.active.has(jobId),
    cancel(jobId, reason) {
      const a = d.active.get(jobId);
      if (!a) return false;
      logger.info({ jobId }, 'cancelling active job');
      a.abort.abort(reason);
      return true;
    },
    stop() {
      stopped ??= (async () => {
        clearInterval(timer);
        // No beat from now on; one under way is waited for before leaving (it would write the node back), not here,
        // so a slow probe does not hold up the drain.
        const beatDone = heartbeat.stop();
        await d.stop();
        const settle = async (ms: number) => {
          const deadline = Date.now() + ms;
          while (d.active.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        };
        if (s.drainMode === 'finish') await settle(s.drainGraceMs);
        const handedBack = d.active.size;
        for (const a of d.active.values()) a.abort.abort(DRAIN);
        await settle(10_000);
        if (handedBack) logger.info({ node: nodeId, jobs: handedBack }, 'handed active jobs back to the queue');
        host.detach(agent);
        await beatDone;
        const gone = await registry.leave(nodeId, procId, Date.now()).catch(() => true);
        if (!gone) logger.info({ node: nodeId }, 'other processes still serve this node: it stays registered');
        metrics.remove();
        await backend.close().catch(() => undefined);
        logger.info({ node: nodeId }, 'node agent stopped');
      })();
      return stopped;
    },
  };
  return agent;
}
