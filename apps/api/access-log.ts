// The HTTP access log (pino-http, one line per request) and the request id: taken from a sane X-Request-Id, else made.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import { pinoHttp } from 'pino-http';
import type { Logger } from '../../libs/logger/index.js';
import { RequestIdSchema } from '../../libs/queue/index.js';

const REQUEST_ID_HEADER = 'X-Request-Id';

/** The client's id when it is one we can log and store as is (RequestIdSchema), else a fresh uuid. */
function requestIdFrom(header: string | string[] | undefined): string {
  const v = Array.isArray(header) ? header[0] : header;
  return RequestIdSchema.safeParse(v).success ? v! : randomUUID();
}

/** The id the access log gave this request (undefined for a request that did not pass through it). */
export const requestIdOf = (req: IncomingMessage): string | undefined => (typeof req.id === 'string' ? req.id : undefined);

/**
 * Polled paths (probes, scrapes, the dashboard's 1.5 s refresh) log at debug: at info they would bury the requests
 * people look for.
 */
const POLLED = /^\/(healthz|livez|readyz|metrics|dashboard\/state)$/;

const pathOf = (req: IncomingMessage): string => {
  const url = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '';
  // The query stays out: it may hold a key or a prompt. The path alone names the route.
  return url.split('?', 1)[0] ?? '';
};

/**
 * One line per answered (or abandoned) request: requestId, method, path, status, ms. Never headers, query strings or
 * bodies, so no Authorization header, key or prompt reaches the log (and the logger's redaction is there too).
 * Sets X-Request-Id on every answer, before any route runs, so every surface (/v1, /api, OpenAI, errors) echoes it.
 */
export function accessLog(logger: Logger): RequestHandler {
  const line = (req: IncomingMessage, res: ServerResponse, ms: number) => ({ method: req.method, path: pathOf(req), status: res.statusCode, ms });
  return pinoHttp({
    logger: logger.child({ part: 'http' }),
    genReqId: (req, res) => {
      const id = requestIdFrom(req.headers['x-request-id']);
      res.setHeader(REQUEST_ID_HEADER, id);
      return id;
    },
    // Only the request id is bound to the line's logger (no serialized req or res with their headers).
    quietReqLogger: true,
    quietResLogger: true,
    customAttributeKeys: { reqId: 'requestId' },
    customLogLevel: (req, res, err) => (err || res.statusCode >= 500 ? 'error' : POLLED.test(pathOf(req)) ? 'debug' : res.statusCode >= 400 ? 'warn' : 'info'),
    customSuccessMessage: (req, res) => (res.writableEnded ? 'request completed' : 'request aborted'),
    customSuccessObject: (req, res, val: { responseTime: number }) => line(req, res, val.responseTime),
    customErrorMessage: () => 'request failed',
    customErrorObject: (req, res, err, val: { responseTime: number }) => ({ ...line(req, res, val.responseTime), err: err.message }),
  }) as unknown as RequestHandler;
}
