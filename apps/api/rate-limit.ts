// Requests per minute per API key (or client IP), counted in Redis so every API replica draws on one budget.
import { createHash } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import { ErrorCode, HydraError } from '../../libs/core/index.js';
import type { Logger } from '../../libs/logger/index.js';
import { presentedKey } from './auth.js';
import { sendError } from './errors.js';

/**
 * Sliding-window counter in one call: the current window's count plus the previous window's, weighted by the share
 * of it that still lies within the last `win` ms. One hash per client (field = window number, value = count), on
 * Redis' clock so replicas with skewed clocks agree. A refused request is not counted, so hammering does not
 * extend the wait. Returns {allowed 1|0, remaining, retry after (ms)}.
 */
const RATE_LUA = `
local win = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cur = math.floor(now / win)
local elapsed = now - cur * win
local c = tonumber(redis.call('HGET', KEYS[1], tostring(cur)) or '0')
local p = tonumber(redis.call('HGET', KEYS[1], tostring(cur - 1)) or '0')
local est = p * (win - elapsed) / win + c
if est + 1 <= limit then
  redis.call('HINCRBY', KEYS[1], tostring(cur), 1)
  for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
    if tonumber(f) < cur - 1 then redis.call('HDEL', KEYS[1], f) end
  end
  redis.call('PEXPIRE', KEYS[1], win * 2)
  return {1, math.floor(limit - est - 1), 0}
end
local wait
if c + 1 <= limit then
  -- p > 0 here: wait until p * (win - e) / win <= limit - c - 1
  wait = math.ceil(win - (limit - c - 1) * win / p) - elapsed
else
  -- this window is full: in the next one it is the previous, and c * (win - e) / win <= limit - 1
  wait = (win - elapsed) + math.ceil(win - (limit - 1) * win / c)
end
return {0, 0, math.max(wait, 1)}
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
