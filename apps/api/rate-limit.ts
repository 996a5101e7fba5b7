// Requests per minute per API key (or client IP), counted in Redis so every API replica draws on one budget.
import { createHash } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import { ErrorCode, HydraError } from '../../libs/core/index.js';
import type { Logger } from '../../libs/logger/index.js';
import { loadScript, QUEUE_SCRIPTS, replyCode, type RedisClient } from '../../libs/queue/index.js';
import { presentedKey } from './auth.js';
import { sendError } from './errors.js';

export interface RateDecision {
  allowed: boolean;
  remaining: number;
  retryAfterMs: number;
}

/**
 * Count one request of `key` against `limit` per `windowMs`: an exact sliding log on Redis' clock
 * (libs/queue/scripts/rate-limit.lua), so every API replica draws on one budget.
 */
export async function hitRateLimit(redis: RedisClient, key: string, limit: number, windowMs: number): Promise<RateDecision> {
  const hit = loadScript<[string, number, number]>(redis, QUEUE_SCRIPTS, 'rate-limit');
  const [code, remaining, retryAfterMs] = await hit([key], [windowMs, limit]);
  return { allowed: replyCode('rate-limit', code, ['allowed', 'limited']) === 'allowed', remaining, retryAfterMs };
}

/**
 * Who a request counts against: its API key (hashed: the key itself is never stored or logged), or without
 * API_KEYS its client address (the socket's, as express sees it; behind a proxy that is the proxy's address).
 */
export function rateIdentity(req: Request, keyed: boolean): string {
  const key = keyed ? presentedKey(req.header('authorization')) : null;
  if (key) return `key:${createHash('sha256').update(key).digest('hex').slice(0, 32)}`;
  return `ip:${req.ip ?? req.socket.remoteAddress ?? 'unknown'}`;
}

export interface RateLimitOptions {
  redis: RedisClient;
  /** Key prefix (the queue hash tag), so the counters live beside the queues. */
  prefix: string;
  perMinute: number;
  /** Whether API keys are configured: then each key has its own budget, else each client address. */
  keyed: boolean;
  logger: Logger;
  /** Window length (ms); one minute unless a test needs a shorter one. */
  windowMs?: number;
}

/**
 * Express middleware: 429 with Retry-After (seconds) past the limit; RateLimit-Limit / RateLimit-Remaining on every
 * answer. If Redis cannot be asked, the request goes through: the route itself then answers 503 if it needs Redis.
 */
export function rateLimit(opts: RateLimitOptions): RequestHandler {
  const windowMs = opts.windowMs ?? 60_000;
  const per = windowMs === 60_000 ? 'minute' : `${windowMs} ms`;
  let warned = 0;
  return (req, res, next) => {
    const id = rateIdentity(req, opts.keyed);
    hitRateLimit(opts.redis, `${opts.prefix}:ratelimit:${id}`, opts.perMinute, windowMs).then(
      (d) => {
        res.setHeader('RateLimit-Limit', String(opts.perMinute));
        res.setHeader('RateLimit-Remaining', String(Math.max(0, d.remaining)));
        if (d.allowed) return next();
        const s = Math.max(1, Math.ceil(d.retryAfterMs / 1000));
        res.setHeader('Retry-After', String(s));
        const who = id.startsWith('key:') ? 'this API key' : 'this client address';
        sendError(res, new HydraError(ErrorCode.RateLimited, `rate limit of ${opts.perMinute} requests per ${per} exceeded for ${who} (RATE_LIMIT_PER_MIN); retry after ${s} s`, { retryable: true, details: { retry_after_s: s, limit: opts.perMinute } }));
      },
      (e: Error) => {
        if (Date.now() - warned > 10_000) {
          warned = Date.now();
          opts.logger.warn({ err: e.message }, 'rate limit not checked: Redis unavailable');
        }
        next();
      },
    );
  };
}
