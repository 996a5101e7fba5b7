// Requests per minute per API key (or client IP), counted in Redis so every API replica draws on one budget.
import { createHash } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import { ErrorCode, HydraError } from '../../libs/core/index.js';
import type { Logger } from '../../libs/logger/index.js';
import { presentedKey } from './auth.js';
import { sendError } from './errors.js';

/**
 * Sliding log in one call: a sorted set per client of the times (ms, Redis' clock, so replicas with skewed clocks
 * agree) of its requests in the last `win` ms. Exact: never more than `limit` requests in any window-long span.
 * Memory: one entry per counted request, at most `limit` per client. A refused request is not recorded, so
 * hammering does not extend the wait. Returns {allowed 1|0, remaining, retry after (ms)}.
 */
const RATE_LUA = `
local win = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)
local c = redis.call('ZCARD', KEYS[1])
if c < limit then
  -- unique member: within one ms the count only grows (nothing that old is removed in between)
  redis.call('ZADD', KEYS[1], now, now .. ':' .. c)
  redis.call('PEXPIRE', KEYS[1], win)
  return {1, limit - c - 1, 0}
end
-- allowed again once the (c - limit + 1) oldest requests have left the window
local e = redis.call('ZRANGE', KEYS[1], c - limit, c - limit, 'WITHSCORES')
return {0, 0, math.max(tonumber(e[2]) + win - now, 1)}
`;

type Limited = Redis & { hydraRateLimit(key: string, windowMs: string, limit: string): Promise<[number, number, number]> };

export interface RateDecision {
  allowed: boolean;
  remaining: number;
  retryAfterMs: number;
}

/** Count one request of `key` against `limit` per `windowMs`. */
export async function hitRateLimit(redis: Redis, key: string, limit: number, windowMs: number): Promise<RateDecision> {
  if (!('hydraRateLimit' in redis)) redis.defineCommand('hydraRateLimit', { numberOfKeys: 1, lua: RATE_LUA });
  const [allowed, remaining, retryAfterMs] = await (redis as Limited).hydraRateLimit(key, String(windowMs), String(limit));
  return { allowed: allowed === 1, remaining, retryAfterMs };
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
  redis: Redis;
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
