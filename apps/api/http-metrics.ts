// The API's metrics: requests and their latency per surface (Hydra /v1, Ollama /api, OpenAI /v1/chat...), this
// process's Redis commands, and the cluster-wide collector GET /metrics serves (libs/metrics).
import type { RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import { Counter, Histogram, Registry } from 'prom-client';
import type { Config } from '../../libs/config/index.js';
import { JOB_TYPES } from '../../libs/core/index.js';
import { ClusterMetrics, MetricsStore, ModelLabels, RedisMetrics, type ClusterSnapshot } from '../../libs/metrics/index.js';
import type { HydraKeys } from '../../libs/queue/index.js';
import type { NodeList, NodeView } from '../../libs/registry/index.js';
import { surfaceOf } from './errors.js';

export interface ApiMetrics {
  /** This API context's own metrics (HTTP, Redis commands); process metrics come from processMetrics(). */
  registry: Registry;
  /** The cluster-wide job metrics in Redis (the API records cancellations of jobs that never ran). */
  store: MetricsStore;
  labels: ModelLabels;
  requests: Counter<'surface' | 'type' | 'model' | 'outcome'>;
  duration: Histogram<'surface' | 'type'>;
  /** Everything cluster-wide, read from Redis now. */
  cluster(): Promise<ClusterSnapshot>;
}

export function createApiMetrics(
  config: Config,
  deps: { redis: Redis; keys: HydraKeys; nodes: NodeList<NodeView> },
): ApiMetrics {
  const registry = new Registry();
  new RedisMetrics(registry).observe(deps.redis, 'producer');
  const store = new MetricsStore(deps.redis, deps.keys, config.METRICS_MAX_MODELS);
  const labels = new ModelLabels(async () => (await deps.nodes()).flatMap((n) => n.models_available.map((m) => m.name)), config.METRICS_MAX_MODELS);
  const requests = new Counter({
    name: 'hydra_http_requests_total',
    help: 'API requests of this process by surface (hydra, ollama, openai), type (generate, chat, embed, workflow, other), model and outcome.',
    labelNames: ['surface', 'type', 'model', 'outcome'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'hydra_http_request_duration_seconds',
    help: 'Time from a request’s arrival to the end of its answer (a stream’s last byte), this process.',
    labelNames: ['surface', 'type'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [registry],
  });
  const collector = new ClusterMetrics({
    redis: deps.redis,
    keys: deps.keys,
    nodes: deps.nodes,
    graceMs: config.MODEL_GRACE_MS,
  });
  return {
    registry,
    store,
    labels,
    requests,
    duration,
    async cluster() {
      const snap = await collector.collect();
      labels.setKnown(snap.models);
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
