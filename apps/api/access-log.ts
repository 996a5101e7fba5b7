// The HTTP access log (one line per request) and the request id: taken from a sane X-Request-Id, else made.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';
import type { Logger } from '../../libs/logger/index.js';
import { RequestIdSchema } from '../../libs/queue/index.js';

const REQUEST_ID_HEADER = 'X-Request-Id';

/** The client's id when it is one we can log and store as is (RequestIdSchema), else a fresh uuid. */
function requestIdFrom(header: string | string[] | undefined): string {
  const v = Array.isArray(header) ? header[0] : header;
  return RequestIdSchema.safeParse(v).success ? v! : randomUUID();
}

/** The id the access log gave this request (undefined for a request that did not pass through it). */
export const requestIdOf = (req: IncomingMessage): string | undefined => {
  const id = (req as IncomingMessage & { id?: unknown }).id;
  return typeof id === 'string' ? id : undefined;
};

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
 * Its own few lines, not pino-http: that builds a child logger with the whole request serialized for every request,
 * even when, as here, neither the request nor the response is logged (a tenth of the API's CPU per job, bench/README.md).
 */
export function accessLog(logger: Logger): RequestHandler {
  const http = logger.child({ part: 'http' });
  return (req, res, next) => {
    const id = requestIdFrom(req.headers['x-request-id']);
    (req as IncomingMessage & { id?: string }).id = id;
    res.setHeader(REQUEST_ID_HEADER, id);
    const start = Date.now();
    const ended = () => {
      res.off('finish', ended);
      res.off('close', ended);
      const status = res.statusCode;
      const level = status >= 500 ? 'error' : POLLED.test(pathOf(req)) ? 'debug' : status >= 400 ? 'warn' : 'info';
      if (!http.isLevelEnabled(level)) return;
      const line = { requestId: id, method: req.method, path: pathOf(req), status, ms: Date.now() - start };
      if (status >= 500) http[level]({ ...line, err: `failed with status code ${status}` }, 'request failed');
      else http[level](line, res.writableEnded ? 'request completed' : 'request aborted');
    };
    res.on('finish', ended);
    res.on('close', ended);
    next();
  };
}
