// One keep-alive undici pool per inference server: JSON requests whose error statuses and transport failures come back as HydraError.
import { Pool, type Dispatcher } from 'undici';
import type { z } from 'zod';
import { ErrorCode, HydraError } from '../../../libs/core/index.js';
import { errorFromStatus, errorFromTransport, errorMessageOf } from './http-errors.js';

export interface SendOptions {
  method: 'GET' | 'POST' | 'DELETE';
  /** Appended to the base URL's path, e.g. "/api/chat". */
  path: string;
  body?: unknown;
  signal?: AbortSignal;
  /** Limit for the response headers to arrive, and for each pause between body chunks. */
  timeoutMs: number;
}

export interface HttpClient {
  /** Base URL without credentials or trailing slash. */
  readonly url: string;
  /** "<kind> at <url>", for messages. */
  readonly label: string;
  /** Sends a request and returns the open response; a status >= 400 throws the mapped HydraError. */
  send(opts: SendOptions): Promise<Dispatcher.ResponseData>;
  /** Sends a request and validates its JSON answer against `schema`. */
  json<S extends z.ZodType>(opts: SendOptions & { schema: S }): Promise<z.infer<S>>;
  close(): Promise<void>;
}

/** Bodies of error answers are read up to this many characters. */
const MAX_ERROR_TEXT = 64 * 1024;

export function createHttpClient(opts: { kind: string; baseUrl: string; headers?: Record<string, string>; connections?: number }): HttpClient {
  let base: URL;
  try {
    base = new URL(opts.baseUrl);
  } catch {
    throw new HydraError(ErrorCode.BadRequest, `${opts.kind} backend URL is not a valid URL: "${opts.baseUrl}" (expected e.g. http://127.0.0.1:11434)`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new HydraError(ErrorCode.BadRequest, `${opts.kind} backend URL must be http or https, got "${base.protocol}"`);
  }
  const prefix = base.pathname.replace(/\/+$/, '');
  const url = `${base.origin}${prefix}`;
  const label = `${opts.kind} at ${url}`;
  const pool = new Pool(base.origin, { connections: opts.connections ?? 32, keepAliveTimeout: 30_000, pipelining: 1 });

  const send = async (o: SendOptions): Promise<Dispatcher.ResponseData> => {
    let res: Dispatcher.ResponseData;
    try {
      res = await pool.request({
        path: `${prefix}${o.path}`,
        method: o.method,
        headers: { accept: 'application/json, application/x-ndjson, text/event-stream', ...(o.body === undefined ? {} : { 'content-type': 'application/json' }), ...opts.headers },
        body: o.body === undefined ? null : JSON.stringify(o.body),
        signal: o.signal ?? null,
        headersTimeout: o.timeoutMs,
        bodyTimeout: o.timeoutMs,
      });
    } catch (e) {
      throw errorFromTransport(label, e, o.signal);
    }
    if (res.statusCode >= 400) {
      let text = '';
      try {
        for await (const chunk of res.body) {
          text += Buffer.from(chunk as Uint8Array).toString('utf8');
          if (text.length > MAX_ERROR_TEXT) break;
        }
      } catch (e) {
        if (o.signal?.aborted) throw errorFromTransport(label, e, o.signal);
      }
      throw errorFromStatus(label, res.statusCode, errorMessageOf(text));
    }
    return res;
  };

  return {
    url,
    label,
    send,
    async json(o) {
      const res = await send(o);
      let body: unknown;
      try {
        body = await res.body.json();
      } catch (e) {
        throw errorFromTransport(label, e, o.signal);
      }
      const parsed = o.schema.safeParse(body);
      if (!parsed.success) {
        const why = parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
        throw new HydraError(ErrorCode.BackendError, `${label} answered ${o.path} in an unexpected shape: ${why}`, { retryable: true });
      }
      return parsed.data;
    },
    async close() {
      const graceful = pool.close();
      const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 1000).unref());
      if ((await Promise.race([graceful.then(() => 'closed' as const), timer])) === 'timeout') await pool.destroy();
    },
  };
}
