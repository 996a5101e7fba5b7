// The API's metrics: requests and their latency per surface (Hydra /v1, Ollama /api, OpenAI /v1/chat...), this
// process's Redis commands, and the cluster-wide collector GET /metrics serves (libs/metrics).
import type { RequestHandler } from 'express';
import type { Config } from '../../libs/config/index.js';
import { JOB_TYPES } from '../../libs/core/index.js';
import { ClusterMetrics, MetricSet, MetricsStore, ModelLabels, RedisMetrics, type ClusterSnapshot, type LocalCounter, type LocalHistogram } from '../../libs/metrics/index.js';
import { bullConnection, type HydraKeys, type RedisClient } from '../../libs/queue/index.js';
import type { NodeList, NodeView } from '../../libs/registry/index.js';
import { surfaceOf } from './errors.js';

export interface ApiMetrics {
  /** This API context's own metrics (HTTP, Redis commands); process metrics come from processMetrics(). */
  registry: MetricSet;
  /** The cluster-wide job metrics in Redis (the API records cancellations of jobs that never ran). */
  store: MetricsStore;
  labels: ModelLabels;
  requests: LocalCounter<'surface' | 'type' | 'model' | 'outcome'>;
  duration: LocalHistogram<'surface' | 'type'>;
  /**
   * Everything cluster-wide, read from Redis: by this call, or by one that started less than CLUSTER_SHARE_MS ago
   * (still in flight, or done), whose snapshot it shares. `fresh` always reads (and is shared in turn).
   */
  cluster(opts?: { fresh?: boolean }): Promise<ClusterSnapshot>;
}

/**
 * Scrapes of one replica within this long share one read of the cluster half (it is the same for every scraper):
 * two Prometheus servers (an HA pair) or a Prometheus and a Grafana agent then cost one collection, not two. Below any
 * sane scrape interval, so one scraper every 1 s (or 0.5 s) always gets a fresh read; a shared one is at most this
 * old (plus the read's own time). docs/metrics.md says so.
 */
export const CLUSTER_SHARE_MS = 500;

export function createApiMetrics(
  config: Config,
  deps: { redis: RedisClient; keys: HydraKeys; nodes: NodeList<NodeView> },
): ApiMetrics {
  const registry = new MetricSet();
  // BullMQ's connection beside it (bullConnection) counts under the same role: the commands this process sends.
  const redisMetrics = new RedisMetrics(registry);
  redisMetrics.observe(deps.redis, 'producer');
  redisMetrics.observe(bullConnection(deps.redis), 'producer');
  const store = new MetricsStore(deps.redis, deps.keys, config.METRICS_MAX_MODELS);
  const labels = new ModelLabels(async () => (await deps.nodes()).flatMap((n) => n.models_available.map((m) => m.name)), config.METRICS_MAX_MODELS);
  const requests = registry.counter({
    name: 'hydra_http_requests_total',
    help: 'API requests of this process by surface (hydra, ollama, openai), type (generate, chat, embed, workflow, other), model and outcome.',
    labelNames: ['surface', 'type', 'model', 'outcome'],
  });
  const duration = registry.histogram({
    name: 'hydra_http_request_duration_seconds',
    help: "Time from a request's arrival to the end of its answer (a stream's last byte), this process.",
    labelNames: ['surface', 'type'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  });
  const collector = new ClusterMetrics({
    redis: deps.redis,
    keys: deps.keys,
    nodes: deps.nodes,
    graceMs: config.MODEL_GRACE_MS,
  });
  let last: { at: number; snap: Promise<ClusterSnapshot> } | null = null;
  return {
    registry,
    store,
    labels,
    requests,
    duration,
    cluster({ fresh = false } = {}) {
      const now = performance.now();
      if (!fresh && last && now - last.at < CLUSTER_SHARE_MS) return last.snap;
      const snap = collector.collect().then((x) => {
        labels.setKnown(x.models);
        return x;
      });
      const entry = { at: now, snap };
      last = entry;
      // A failed read is not shared beyond the scrapes already waiting on it: the next one tries Redis again.
      snap.catch(() => {
        if (last === entry) last = null;
      });
      return snap;
    },
  };
}

const TYPES: ReadonlySet<string> = new Set(JOB_TYPES);

/** The request type: inference endpoints by path (Ollama, OpenAI) or body (`/v1/jobs`), workflows, else other. */
function typeOf(method: string, path: string, body: unknown): string {
  if (method !== 'POST') return 'other';
  if (path === '/v1/jobs') {
    const t = (body as { type?: unknown } | undefined)?.type;
    return typeof t === 'string' && TYPES.has(t) ? t : 'other';
  }
  if (path === '/api/generate' || path === '/v1/completions') return 'generate';
  if (path === '/api/chat' || path === '/v1/chat/completions') return 'chat';
  if (path === '/api/embed' || path === '/api/embeddings' || path === '/v1/embeddings') return 'embed';
  if (path === '/v1/workflows' || path === '/v1/distribute' || path === '/v1/orchestrate') return 'workflow';
  return 'other';
}

function outcomeOf(status: number, finished: boolean): string {
  if (!finished) return 'aborted';
  if (status < 400) return 'ok';
  if (status === 429) return 'rate_limited';
  if (status < 500) return 'client_error';
  if (status === 503) return 'unavailable';
  return 'server_error';
}

/** The API's surfaces: Hydra's /v1, Ollama's / and /api, OpenAI's /v1/...; Bull Board, the dashboard, /healthz and /metrics are not counted. */
const counted = (path: string): boolean => path === '/' || path.startsWith('/v1/') || path.startsWith('/api/');

/**
 * Count each request and time it when its answer ends (or the client leaves first: outcome "aborted"). The model
 * label is resolved after the answer, off the request's path; models the registry does not know are "other".
 */
export function httpMetrics(m: ApiMetrics): RequestHandler {
  return (req, res, next) => {
    if (!counted(req.path)) return next();
    const start = performance.now();
    let recorded = false;
    const end = () => {
      if (recorded) return;
      recorded = true;
      const seconds = (performance.now() - start) / 1000;
      const surface = surfaceOf(req.path);
      const type = typeOf(req.method, req.path, req.body);
      m.duration.labels(surface, type).observe(seconds);
      const model = type === 'other' || type === 'workflow' ? undefined : (req.body as { model?: unknown } | undefined)?.model;
      void m.labels.resolve(model).then((label) => m.requests.labels(surface, type, label, outcomeOf(res.statusCode, res.writableFinished)).inc());
    };
    res.once('finish', end);
    res.once('close', end);
    next();
  };
}
