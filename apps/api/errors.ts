// The one place that maps error codes to HTTP statuses, and the JSON error body every route returns.
import type { ErrorRequestHandler, Response } from 'express';
import { ErrorCode, HydraError, type FieldProblem } from '../../libs/core/index.js';
import type { Logger } from '../../libs/logger/index.js';
import { requestIdOf } from './access-log.js';
import { ollamaError } from './ollama/errors.js';
import { openaiError } from './openai/errors.js';

export const STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  unauthorized: 401,
  not_found: 404,
  model_not_found: 404,
  conflict: 409,
  cancelled: 409,
  payload_too_large: 413,
  unsatisfiable: 422,
  idempotency_conflict: 422,
  bad_model_file: 422,
  rate_limited: 429,
  internal: 500,
  poison_pill: 500,
  backend_error: 502,
  backend_unavailable: 503,
  unavailable: 503,
  out_of_memory: 507,
  timeout: 504,
};

/** Which protocol a path speaks: errors are answered in the caller's own shape. */
export type Surface = 'hydra' | 'ollama' | 'openai';
const OPENAI_PATH = /^\/v1\/(chat\/completions|completions|embeddings|models)(\/|$)/;
export const surfaceOf = (path: string): Surface => (path === '/' || path.startsWith('/api/') || path === '/api' ? 'ollama' : OPENAI_PATH.test(path) ? 'openai' : 'hydra');

export function sendError(res: Response, e: HydraError): void {
  if (res.headersSent) return;
  const status = STATUS[e.code] ?? 500;
  // A refusal that knows when to come back says so on every surface (a full queue: MAX_QUEUE_DEPTH).
  const retryAfter = (e.details as { retry_after_s?: unknown } | undefined)?.retry_after_s;
  if (e.retryable && typeof retryAfter === 'number' && !res.hasHeader('Retry-After')) res.setHeader('Retry-After', String(Math.max(1, Math.ceil(retryAfter))));
  // originalUrl: under app.use('/v1', ...) req.path is relative to the mount point.
  const surface = surfaceOf(res.req.originalUrl.split('?')[0] ?? '');
  if (surface === 'ollama') {
    const o = ollamaError(e, status);
    return void res.status(o.status).json(o.body);
  }
  if (surface === 'openai') {
    const o = openaiError(e, status);
    for (const [k, v] of Object.entries(o.headers)) res.setHeader(k, v);
    return void res.status(o.status).json(o.body);
  }
  res.status(status).json({ error: e.toJSON() });
}

export const badRequest = (problems: FieldProblem[]): HydraError =>
  new HydraError(ErrorCode.BadRequest, `invalid request body: ${problems.map((p) => `${p.field} ${p.problem}`).join('; ')}`, { details: { fields: problems } });

// The last line: a Redis Cluster in a failover (ioredis gives up following redirections, or cannot read the slot map).
const REDIS_DOWN =
  /ECONNREFUSED|ECONNRESET|EPIPE|Connection is closed|enableOfflineQueue|max retries|MaxRetriesPerRequest|Command timed out|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|LOADING|READONLY|NOAUTH|WRONGPASS|MASTERDOWN|CLUSTERDOWN|Too many Cluster redirections|Failed to refresh slots cache|None of startup nodes is available|^\S* ?(MOVED|TRYAGAIN) /i;

/** Seconds a client should wait before retrying while Redis is unavailable (reconnects are attempted every second). */
export const REDIS_RETRY_AFTER_S = 2;

/** ioredis' wording, in words a user of the API can act on. */
function redisProblem(message: string): string {
  if (/WRONGPASS|NOAUTH/i.test(message)) return 'authentication failed (check the password in REDIS_URL, and REDIS_SENTINEL_PASSWORD with Sentinel)';
  if (/Command timed out/i.test(message)) return 'no reply within the command timeout (Redis hung or unreachable)';
  if (/LOADING/.test(message)) return 'Redis is loading its data after a restart';
  if (/READONLY|MASTERDOWN|CLUSTERDOWN|Cluster redirections|MOVED|TRYAGAIN/.test(message)) return 'Redis cannot accept writes right now (failover in progress)';
  if (/ENOTFOUND|EAI_AGAIN/.test(message)) return 'the Redis host name does not resolve';
  if (/certificate|SSL|TLS|self.signed|handshake/i.test(message)) return 'the TLS handshake failed (check the rediss:// URL and tls_ca_file)';
  return 'no connection to Redis';
}

/** The 503 for a Redis outage: what happened and that a retry is the fix. */
export function redisUnavailable(message: string): HydraError {
  return new HydraError(ErrorCode.Unavailable, `the queue store (Redis) is unavailable: ${redisProblem(message)}; retry shortly`, { retryable: true, details: { redis_error: message } });
}

export const isRedisDown = (e: { name?: string; message?: string }): boolean => REDIS_DOWN.test(`${e.name} ${e.message}`);

/** Express error handler: body-parser errors, HydraErrors, Redis outages (503), anything else (500, logged). */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const e = err as { type?: string; message?: string; name?: string; limit?: number; status?: number; expose?: boolean };
    if (e.type === 'entity.too.large') {
      return sendError(res, new HydraError(ErrorCode.PayloadTooLarge, `request body is larger than the limit of ${e.limit} bytes (BODY_LIMIT_BYTES)`));
    }
    if (e.type === 'entity.parse.failed') {
      return sendError(res, new HydraError(ErrorCode.BadRequest, `malformed JSON body: ${e.message}`));
    }
    if (e.type && /encoding|charset|stream/.test(e.type)) {
      return sendError(res, new HydraError(ErrorCode.BadRequest, `unreadable request body: ${e.message}`));
    }
    // Any other client error raised while reading the request: http-errors with a 4xx status (body parsing), or the
    // router's URIError for a path parameter that is not valid percent-encoding (status 400, not marked exposable).
    if (typeof e.status === 'number' && e.status >= 400 && e.status < 500 && (e.expose === true || err instanceof URIError)) {
      return sendError(res, new HydraError(ErrorCode.BadRequest, `unreadable request: ${e.message}`));
    }
    if (err instanceof HydraError) return sendError(res, err);
    if (isRedisDown(e)) {
      if (!res.headersSent) res.setHeader('Retry-After', String(REDIS_RETRY_AFTER_S));
      return sendError(res, redisUnavailable(e.message ?? 'no connection'));
    }
    logger.error({ requestId: requestIdOf(req), err: e.message, stack: (err as Error).stack }, 'unhandled error');
    sendError(res, new HydraError(ErrorCode.Internal, 'internal error'));
  };
}

/** Wrap an async route so rejections reach the error handler. */
export const route =
  <A extends unknown[]>(fn: (...args: A) => Promise<unknown>) =>
  (...args: A): void => {
    const next = args[2] as (e: unknown) => void;
    fn(...args).catch(next);
  };
