// Builds the express app (never listens): drain, JSON limits, auth, /v1 routes, Bull Board, the dashboard, probes, /metrics.
import express, { type Express, type Request, type Response } from 'express';
import { ErrorCode, HydraError } from '../../libs/core/index.js';
import { pingServer } from '../../libs/queue/index.js';
import type { ApiContext } from './context.js';
import { accessLog } from './access-log.js';
import { requireKey } from './auth.js';
import { BOARD_PATH, boardRouter } from './board.js';
import { DASHBOARD_PATH, dashboardRouter } from './dashboard/dashboard.route.js';
import { Drain, DRAIN_RETRY_AFTER_S, drainingError } from './drain.js';
import { errorHandler, REDIS_RETRY_AFTER_S, redisUnavailable, route, sendError } from './errors.js';
import { httpMetrics } from './http-metrics.js';
import { jobsRouter } from './routes/jobs.route.js';
import { batchesRouter } from './routes/batches.route.js';
import { metricsRouter } from './routes/metrics.route.js';
import { openApiRouter } from './routes/openapi.route.js';
import { ollamaRouter } from './routes/ollama.route.js';
import { openaiRouter } from './routes/openai.route.js';
import { nodesRouter } from './routes/nodes.route.js';
import { distributeRouter } from './routes/distribute.route.js';
import { orchestrateRouter } from './routes/orchestrate.route.js';
import { workflowsRouter } from './routes/workflows.route.js';
import { historyRouter } from './routes/history.route.js';
import { memoryRouter } from './routes/memory.route.js';
import { nestingLimit, promptLimit } from './body-guards.js';
import { rateLimit } from './rate-limit.js';

/** `drain`: this replica's shutdown (apps/api/main.ts starts it on SIGTERM); a fresh one, never started, by default. */
export function buildApp(ctx: ApiContext, drain: Drain = new Drain(ctx.config.SHUTDOWN_GRACE_MS)): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // First, so every answer (errors and 404s too) carries X-Request-Id and gets its access-log line.
  app.use(accessLog(ctx.logger));
  // Counts and times every request of the API surfaces, whatever answers it (auth, limits, routes, errors).
  app.use(httpMetrics(ctx.metrics));
  // Counts requests in flight; while draining, refuses new ones (503, retryable) so no job is taken that would go unanswered.
  app.use(drain.middleware);

  // Liveness: the process serves HTTP. A draining replica is alive: restarting it would only cut its drain short.
  app.get('/livez', (_req, res) => void res.status(200).json({ ok: true, draining: drain.draining }));

  // Readiness (/readyz, and /healthz, which load balancers already probe): whether to send this replica new requests.
  // Not while it drains, not while Redis is down.
  app.get(
    ['/readyz', '/healthz'],
    route(async (_req: Request, res: Response) => {
      if (drain.draining) {
        res.setHeader('Retry-After', String(DRAIN_RETRY_AFTER_S));
        return void res.status(503).json({ ok: false, draining: true, error: drainingError().toJSON() });
      }
      const down = await pingServer(ctx.redis, ctx.keys.prefix).then(
        () => null,
        (e: Error) => e.message,
      );
      if (down === null) return void res.status(200).json({ ok: true, redis: 'up' });
      res.setHeader('Retry-After', String(REDIS_RETRY_AFTER_S));
      // The command's own error only says "not connected"; the connection's last error says why. No raw details:
      // /healthz answers without a key, and the raw error names Redis' address.
      const { details: _raw, ...error } = redisUnavailable(ctx.redisError() ?? down).toJSON();
      res.status(503).json({ ok: false, redis: 'down', error });
    }),
  );

  // Prometheus: behind the API key when API_KEYS is set (like /v1); without keys the server is loopback-only anyway.
  app.use(metricsRouter(ctx));
  // The OpenAPI document of the /v1 API and its reference page: no key (a description, not data).
  app.use(openApiRouter());

  const board = boardRouter(ctx);
  app.use(BOARD_PATH, requireKey(ctx.config.API_KEYS, { basicRealm: 'hydra' }), board.sync, board.router);
  // The live cluster page and its state: a browser page like Bull Board, behind the same key (HTTP Basic or Bearer).
  app.use(DASHBOARD_PATH, requireKey(ctx.config.API_KEYS, { basicRealm: 'hydra' }), dashboardRouter(ctx));

  // Hydra's own API and the OpenAI surface live under /v1, the Ollama surface under /api: the same key, rate limit,
  // body limit and prompt checks for all three. (`GET /` answers "Ollama is running" without a key, as Ollama does.)
  const guarded = ['/v1', '/api'];
  app.use(guarded, requireKey(ctx.config.API_KEYS));
  if (ctx.config.RATE_LIMIT_PER_MIN > 0) {
    app.use(guarded, rateLimit({ redis: ctx.redis, prefix: ctx.keys.prefix, perMinute: ctx.config.RATE_LIMIT_PER_MIN, keyed: ctx.config.API_KEYS.length > 0, logger: ctx.logger }));
  }
  app.use(guarded, express.json({ limit: ctx.config.BODY_LIMIT_BYTES, strict: false, type: () => true }));
  app.use(guarded, nestingLimit(), promptLimit(ctx.config.MAX_PROMPT_CHARS));
  app.use(ollamaRouter(ctx));
  app.use(openaiRouter(ctx));
  app.use(jobsRouter(ctx, drain));
  app.use(batchesRouter(ctx));
  app.use(nodesRouter(ctx));
  app.use(workflowsRouter(ctx, drain));
  app.use(distributeRouter(ctx, drain));
  app.use(orchestrateRouter(ctx, drain));
  app.use(historyRouter(ctx));
  app.use(memoryRouter(ctx));
  app.use((req, res) => sendError(res, new HydraError(ErrorCode.NotFound, `no route ${req.method} ${req.path}`)));
  app.use(errorHandler(ctx.logger));
  return app;
}
