// The one place that maps error codes to HTTP statuses, and the JSON error body every route returns.
import type { ErrorRequestHandler, Response } from 'express';
import { ErrorCode, HydraError, type FieldProblem } from '../../libs/core/index.js';
import type { Logger } from '../../libs/logger/index.js';

export const STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  unauthorized: 401,
  not_found: 404,
  model_not_found: 404,
  conflict: 409,
  cancelled: 409,
  payload_too_large: 413,
  unsatisfiable: 422,
  bad_model_file: 422,
  rate_limited: 429,
  internal: 500,
  backend_error: 502,
  backend_unavailable: 503,
  unavailable: 503,
  out_of_memory: 507,
  timeout: 504,
};

export function sendError(res: Response, e: HydraError): void {
  if (res.headersSent) return;
  res.status(STATUS[e.code] ?? 500).json({ error: e.toJSON() });
}

export const badRequest = (problems: FieldProblem[]): HydraError =>
  new HydraError(ErrorCode.BadRequest, `invalid request body: ${problems.map((p) => `${p.field} ${p.problem}`).join('; ')}`, { details: { fields: problems } });

const REDIS_DOWN = /ECONNREFUSED|Connection is closed|enableOfflineQueue|max retries|MaxRetriesPerRequest|ETIMEDOUT|ENOTFOUND|LOADING|READONLY/i;

/** Express error handler: body-parser errors, HydraErrors, Redis outages (503), anything else (500, logged). */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, _req, res, _next) => {
    const e = err as { type?: string; message?: string; name?: string; limit?: number };
    if (e.type === 'entity.too.large') {
      return sendError(res, new HydraError(ErrorCode.PayloadTooLarge, `request body is larger than the limit of ${e.limit} bytes (BODY_LIMIT_BYTES)`));
    }
    if (e.type === 'entity.parse.failed') {
      return sendError(res, new HydraError(ErrorCode.BadRequest, `malformed JSON body: ${e.message}`));
    }
    if (e.type && /encoding|charset|stream/.test(e.type)) {
      return sendError(res, new HydraError(ErrorCode.BadRequest, `unreadable request body: ${e.message}`));
    }
    if (err instanceof HydraError) return sendError(res, err);
    if (REDIS_DOWN.test(`${e.name} ${e.message}`)) {
      return sendError(res, new HydraError(ErrorCode.Unavailable, `the queue store (Redis) is unavailable: ${e.message}; retry shortly`, { retryable: true }));
    }
    logger.error({ err: e.message, stack: (err as Error).stack }, 'unhandled error');
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
