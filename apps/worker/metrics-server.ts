// A worker's metrics: its own GET /metrics on METRICS_PORT (Node process, its Redis commands, its jobs in flight), and
// what it records into Redis for the cluster-wide numbers the API serves (each job that ends, the node's model loads).
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { Gauge, Registry } from 'prom-client';
import { isLoopbackHost, type Config } from '../../libs/config/index.js';
import type { NodeRecord } from '../../libs/core/index.js';
import type { Logger } from '../../libs/logger/index.js';
import { finishedJobWrite, MetricsBatch, MetricsStore, processMetrics, RedisMetrics, tokenTimer, type JobOutcome } from '../../libs/metrics/index.js';
import { bullConnection, type EndWrite, type HydraKeys, type RedisClient } from '../../libs/queue/index.js';
import type { InferenceBackend } from './backends/backend.js';
import type { ActiveJob } from './dispatcher.js';

/** The metrics of one node agent of the process. */
export interface NodeMetrics {
  /** The backend with generate and chat timed (first token, inter-token gaps): give it to the job runner. */
  backend: InferenceBackend;
  /**
   * A job ended for good: its recording, as a write of its end (libs/queue/job-end.ts; failures are logged), which adds
   * it to the process's batch (METRICS_FLUSH_MS) once the end is recorded.
   */
  jobFinishedWrite(job: ActiveJob['job'], outcome: JobOutcome): EndWrite;
  /** After a heartbeat: the node's loaded models, for loads and unloads. */
  nodeSeen(rec: NodeRecord | null): void;
  /** The node agent stopped: its gauges leave this process's /metrics. */
  remove(): void;
}

/**
 * The process's metrics: one /metrics (METRICS_PORT) whatever the number of nodes it serves. Process and Redis
 * figures are the process's; `hydra_worker_active_jobs` and `hydra_worker_slots` have one series per node (`node`
 * label); job metrics recorded into Redis carry each job's node.
 */
export interface WorkerMetrics {
  addNode(n: { nodeId: string; slots: number; backend: InferenceBackend; active: () => ReadonlyMap<string, ActiveJob> }): NodeMetrics;
  /** The address /metrics listens on, when METRICS_PORT is set. */
  url: string | null;
  /** Records the job metrics still batched, and stops serving /metrics. */
  close(): Promise<void>;
}

/** Bearer (or HTTP Basic with the key as password), as the API's requireKey; no keys = open (loopback only). */
function authorized(req: IncomingMessage, keys: readonly string[]): boolean {
  if (keys.length === 0) return true;
  const [scheme, value = ''] = (req.headers.authorization ?? '').split(' ', 2);
  const key = /^bearer$/i.test(scheme ?? '') ? value.trim() : /^basic$/i.test(scheme ?? '') ? Buffer.from(value, 'base64').toString('utf8').replace(/^[^:]*:/, '') : '';
  const c = Buffer.from(key);
  return keys.some((k) => Buffer.byteLength(k) === c.length && timingSafeEqual(Buffer.from(k), c));
}

async function listen(config: Config, render: () => Promise<{ type: string; text: string }>, logger: Logger): Promise<{ server: Server; url: string }> {
  // As the API binds: without API_KEYS only loopback, whatever HOST says.
  const host = config.API_KEYS.length === 0 && !isLoopbackHost(config.HOST) ? '127.0.0.1' : config.HOST;
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
    if (!authorized(req, config.API_KEYS)) return void res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer' }).end('missing or invalid API key: send Authorization: Bearer <key>\n');
    render().then(
      ({ type, text }) => res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' }).end(text),
      (e: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${e.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new Error(`cannot serve metrics on ${host}:${config.METRICS_PORT} (METRICS_PORT): ${e.message}`)));
    server.listen(config.METRICS_PORT, host, () => resolve());
  });
  const addr = server.address();
  const url = `http://${host}:${typeof addr === 'object' && addr ? addr.port : config.METRICS_PORT}/metrics`;
  logger.info({ url, auth: config.API_KEYS.length > 0 }, 'worker metrics listening');
  return { server, url };
}

export async function startWorkerMetrics(config: Config, deps: { redis: RedisClient; keys: HydraKeys; logger: Logger }): Promise<WorkerMetrics> {
  const { logger } = deps;
  const registry = new Registry();
  // BullMQ's connection beside it (bullConnection) counts under the same role: the commands this process sends.
  const redisMetrics = new RedisMetrics(registry);
  redisMetrics.observe(deps.redis, 'worker');
  redisMetrics.observe(bullConnection(deps.redis), 'worker');
  const nodes = new Map<string, { slots: number; active: () => ReadonlyMap<string, ActiveJob> }>();
  new Gauge({
    name: 'hydra_worker_active_jobs',
    help: 'Jobs this worker process is running (inference and model management), per node it serves.',
    labelNames: ['node'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [node, n] of nodes) this.set({ node }, n.active().size);
    },
  });
  new Gauge({
    name: 'hydra_worker_slots',
    help: 'Inference jobs this worker process runs at once (WORKER_CONCURRENCY), per node it serves.',
    labelNames: ['node'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [node, n] of nodes) this.set({ node }, n.slots);
    },
  });
  const store = new MetricsStore(deps.redis, deps.keys, config.METRICS_MAX_MODELS);
  // Job metrics of many jobs recorded together (libs/metrics/batch.ts), unless METRICS_FLUSH_MS=0.
  const batch = config.METRICS_FLUSH_MS > 0 ? new MetricsBatch(store, config.METRICS_FLUSH_MS, logger) : null;
  // The loaded set outlives a few missed heartbeats, so a worker restart does not count the node's models as new loads.
  const loadedTtlMs = Math.max(60_000, 10 * config.HEARTBEAT_MS);
  const served =
    config.METRICS_PORT > 0
      ? await listen(config, async () => ({ type: registry.contentType, text: (await processMetrics().metrics()) + (await registry.metrics()) }), logger)
      : null;
  return {
    url: served?.url ?? null,
    addNode({ nodeId, slots, backend, active }) {
      nodes.set(nodeId, { slots, active });
      const timer = tokenTimer(backend);
      const run = (job: ActiveJob['job']) => {
        const a = active().get(job.id ?? '');
        return { node: nodeId, ...(a ? { warm: a.choice.warm } : {}), timing: timer.take(a?.abort.signal), logger };
      };
      return {
        backend: timer.backend,
        jobFinishedWrite(job, outcome) {
          return finishedJobWrite(store, job, outcome, run(job), batch);
        },
        nodeSeen(rec) {
          // An unhealthy probe lists nothing loaded: that is not an unload.
          if (!rec?.healthy) return;
          store.observeLoaded(nodeId, rec.models_loaded.map((m) => m.name), loadedTtlMs).catch((e: Error) => logger.debug({ err: e.message }, 'model load metrics not recorded'));
        },
        remove: () => void nodes.delete(nodeId),
      };
    },
    async close() {
      await batch?.close();
      if (!served) return;
      const closed = new Promise((r) => served.server.close(r));
      served.server.closeAllConnections();
      await closed;
    },
  };
}
