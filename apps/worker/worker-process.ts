// A worker process, the worker's composition root: builds once what every node agent of the process shares (Redis
// connections, subscriber and its wake/cancel channels, producer, registry, node-list and queue refresh, L1 cache,
// coordinator, finaliser, ager, rehomer, liveness, metrics, queue Workers), then runs node agents on it: one for a
// plain worker, one per discovered server with DISCOVER (docs/discovery.md). Agents are added and stopped while it runs.
import { randomUUID } from 'node:crypto';
import { ActivityLog } from '../../libs/activity/index.js';
import { createL1Cache } from '../../libs/cache/index.js';
import type { Config } from '../../libs/config/index.js';
import { ErrorCode, HydraError } from '../../libs/core/index.js';
import type { Logger } from '../../libs/logger/index.js';
import { createProducer, createRedis, hydraKeys, queueRedisTarget } from '../../libs/queue/index.js';
import { cachedNodeList, NodeRegistry, PerfStore, REGISTRY_SNAPSHOT_MAX_AGE_MS, type NodeView } from '../../libs/registry/index.js';
import { eligibleQueues, WAKE_FANOUT, wakeTargets, type QueueInfo } from '../../libs/scheduling/index.js';
import { createCoordinator } from '../../libs/workflows/index.js';
import { Ager } from './aging.js';
import type { InferenceBackend } from './backends/backend.js';
import { QueueWorkers } from './dispatcher.js';
import { startLiveness } from './liveness.js';
import { startWorkerMetrics } from './metrics-server.js';
import { startNodeAgent, type AgentHost, type NodeAgent, type NodeAgentOptions } from './node-agent.js';
import { Rehomer } from './rehome.js';
import { workerSettings } from './settings.js';
import { startWorkflowFinaliser } from './workflow-finaliser.js';

export interface WorkerProcess {
  /** Start a node agent in this process (first heartbeat done, pulling jobs when it resolves). */
  addNode(opts: NodeAgentOptions): Promise<NodeAgent>;
  agents(): readonly NodeAgent[];
  /** Stop every agent (each drains: DRAIN_MODE) and leave; then close what the process shares. */
  stop(): Promise<void>;
}

export async function startWorkerProcess(config: Config, logger: Logger): Promise<WorkerProcess> {
  // Settings of the process-wide parts (lock, stalled checks, backoff, aging, polling): the same for every node.
  const s = workerSettings(config, '', 1);
  const keys = hydraKeys(config.QUEUE_PREFIX);
  const redis = createRedis(queueRedisTarget(config), 'worker');
  const sub = createRedis(queueRedisTarget(config), 'subscriber');
  redis.on('error', (e) => logger.warn({ err: e.message }, 'redis connection error'));
  sub.on('error', () => {});
  // Metrics: this process's /metrics (METRICS_PORT) and the job metrics it records into Redis (docs/metrics.md).
  const metrics = await startWorkerMetrics(config, { redis, keys, logger });
  const producer = createProducer(config, { redis });
  const registry = new NodeRegistry(redis, keys);
  const perf = new PerfStore(redis, keys);
  // Routing needs no fresher than heartbeats: the shared registry snapshot (one key; see REGISTRY_SNAPSHOT_MAX_AGE_MS).
  const nodes = cachedNodeList({ list: () => registry.shared(REGISTRY_SNAPSHOT_MAX_AGE_MS) });
  const wfLogger = logger.child({ part: 'workflows' });
  const cache = createL1Cache(config, { redis, keys, logger: wfLogger });
  const coordinator = createCoordinator(config, { redis, producer, nodes, cache, logger: wfLogger });
  const finaliser = startWorkflowFinaliser(config, { redis, keys, coordinator, logger: wfLogger });
  const ager = new Ager(redis, keys, s.agingStepMs, logger);
  const rehomer = new Rehomer(s, { redis, keys, producer, logger });
  const procId = randomUUID();
  const workers = new QueueWorkers(s, { redis, keys, logger, procId });
  // Fast failover: this process's connection and running jobs (of all its nodes), watched by the others (liveness.ts).
  const liveness = await startLiveness(config, { redis, keys, lifecycle: producer.lifecycle, logger, procId });

  const agents = new Set<NodeAgent>();
  // A wake for one node: its channel is subscribed while its agent runs here.
  const byChannel = new Map<string, NodeAgent>();
  let all: NodeView[] = [];
  let byId = new Map<string, NodeView>();
  let queues: QueueInfo[] = [];
  const queueByName = new Map<string, QueueInfo>();
  // One registry read and one listQueues per process per interval, whatever the number of nodes it serves.
  const refreshMs = Math.min(s.pollMs, 1000);
  let refreshing: Promise<void> | null = null;
  const refresh = (): Promise<void> =>
    (refreshing ??= (async () => {
      // The shared snapshot: one key read, not 4 per node, per process.
      const [listed, qs] = await Promise.all([registry.shared(Math.min(REGISTRY_SNAPSHOT_MAX_AGE_MS, refreshMs / 2)), producer.listQueues()]);
      all = listed;
      byId = new Map(listed.map((n) => [n.id, n]));
      queues = qs;
      for (const q of qs) queueByName.set(q.name, q);
      await rehomer.pass(qs, new Set([...[...agents].map((a) => a.nodeId), ...listed.map((n) => n.id)]), procId);
    })().finally(() => (refreshing = null)));

  const host: AgentHost = {
    config,
    logger,
    keys,
    redis,
    registry,
    perf,
    producer,
    cache,
    coordinator,
    activity: new ActivityLog(redis, keys),
    liveness,
    metrics,
    workers,
    procId,
    others: (nodeId) => all.filter((n) => n.id !== nodeId),
    self: (nodeId) => byId.get(nodeId),
    queues: () => queues,
    refresh,
    detach: (agent) => {
      agents.delete(agent);
      const ch = keys.channels.wakeNode(agent.nodeId);
      if (byChannel.get(ch) === agent) {
        byChannel.delete(ch);
        void sub.unsubscribe(ch).catch(() => undefined);
      }
    },
  };

  /**
   * A wake for every process (no nodes named): wake the agents here that could take a job of `queue`: its node, or
   * for a class queue a few of those that qualify and have a free slot (libs/scheduling/wake.ts). Waking every
   * qualifying agent made each new job cost one dispatch round per node: with 100 nodes in one process Redis commands
   * per job went 416 -> 998 from 25 nodes (bench:scale). The API names the nodes of a new job (their own channels).
   */
  let wakeTurn = 0;
  const wakeFor = (queue: string): void => {
    const info = queueByName.get(queue);
    const eligible = [...agents].filter((a) => {
      const rec = a.record();
      return !info || (rec !== null && eligibleQueues([info], rec).length > 0);
    });
    if (!info || info.kind !== 'class') return eligible.forEach((a) => a.wake());
    const cands = eligible.map((a) => ({ warm: a.record()?.models_loaded.some((m) => m.name === info.model) === true, free: a.freeSlots() }));
    const woken = wakeTargets(cands, WAKE_FANOUT, wakeTurn++);
    for (const i of woken) eligible[i]!.wake();
    // None here has a free slot: the job waits for one, so each qualifying agent looks at the queues when its next job
    // ends (no round now: a full agent would take nothing from a class queue). Otherwise it waited for a poll.
    if (woken.length === 0) for (const a of eligible) a.slotWanted();
  };

  const wakeOne = (agent: NodeAgent, queue: string): void => {
    if (!queueByName.has(queue)) refresh().then(() => agent.wake(), () => undefined);
    else agent.wake();
  };

  await sub.subscribe(keys.channels.wake, keys.channels.cancel);
  sub.on('message', (channel: string, msg: string) => {
    const one = byChannel.get(channel);
    if (one) {
      wakeOne(one, msg);
    } else if (channel === keys.channels.wake) {
      if (!queueByName.has(msg)) refresh().then(() => wakeFor(msg), () => undefined);
      else wakeFor(msg);
    } else if (channel === keys.channels.cancel) {
      // The reason is the cancel flag's value (set before the message: a DELETE, a client that left, a stream reader
      // that did not come back, ...), read only by the process that runs the job.
      const jobId = msg;
      const cancel = (agent: NodeAgent) =>
        void redis
          .get(keys.cancelFlag(jobId))
          .catch(() => null)
          .then((why) => agent.cancel(jobId, new HydraError(ErrorCode.Cancelled, `the job was cancelled (${why ?? 'DELETE /v1/jobs/:id'})`)));
      const agent = [...agents].find((a) => a.runs(jobId));
      if (agent) return cancel(agent);
      // The take reads the cancel flag as it takes a job (take.lua), so a flag set just after it is announced here,
      // and Redis sent the take's reply first: by the end of this poll round that reply has been read and the job
      // launched, so one more look then finds it.
      setImmediate(() => {
        const late = [...agents].find((a) => a.runs(jobId));
        if (late) cancel(late);
      });
    }
  });

  const timers = [
    setInterval(() => void refresh().catch(() => undefined), refreshMs),
    setInterval(() => void ager.pass(queues, procId, Date.now()).catch(() => undefined), Math.max(50, Math.floor(s.agingStepMs / 2))),
  ];

  let stopped: Promise<void> | null = null;
  return {
    async addNode(opts) {
      // Subscribed before the node registers (the API names only registered nodes), so no wake for it is missed:
      // one that came while the agent was starting is acted on by the extra wake once it runs.
      const ch = keys.channels.wakeNode(opts.nodeId);
      await sub.subscribe(ch);
      let agent: NodeAgent;
      try {
        agent = await startNodeAgent(host, opts);
      } catch (e) {
        if (![...agents].some((a) => a.nodeId === opts.nodeId)) await sub.unsubscribe(ch).catch(() => undefined);
        throw e;
      }
      agents.add(agent);
      byChannel.set(ch, agent);
      agent.wake();
      return agent;
    },
    agents: () => [...agents],
    stop() {
      stopped ??= (async () => {
        for (const t of timers) clearInterval(t);
        await Promise.all([...agents].map((a) => a.stop()));
        await liveness.stop();
        await finaliser.close().catch(() => undefined);
        await coordinator.close().catch(() => undefined);
        await workers.close();
        await ager.close();
        await rehomer.close();
        await producer.close().catch(() => undefined);
        cache.close();
        await metrics.close();
        sub.disconnect();
        await redis.quit().catch(() => redis.disconnect());
      })();
      return stopped;
    },
  };
}

/** The node agent of a plain worker (no DISCOVER): the process and its one node, stopped together. */
export async function startSingleNode(config: Config, logger: Logger, node: { backend: InferenceBackend; nodeId: string; slots: number }): Promise<WorkerProcess> {
  const proc = await startWorkerProcess(config, logger);
  try {
    await proc.addNode(node);
  } catch (e) {
    await proc.stop().catch(() => undefined);
    throw e;
  }
  return proc;
}
