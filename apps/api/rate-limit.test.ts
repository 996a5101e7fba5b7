// The rate limit's Lua against a real Redis: exact budget per window, per-client isolation, a truthful Retry-After.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { waitFor } from '../../test/support/wait.js';
import { hitRateLimit, rateIdentity } from './rate-limit.js';

describe('hitRateLimit', () => {
  let redis: Redis;
  const prefix = `{rl${randomBytes(4).toString('hex')}}`;
  const key = (n: string) => `${prefix}:ratelimit:${n}`;
  beforeAll(() => {
    redis = new Redis(inject('redisUrl'));
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  it('allows exactly the limit per window, counting down what remains, then refuses with the wait', async () => {
    const got = [];
    for (let i = 0; i < 6; i++) got.push(await hitRateLimit(redis, key('a'), 5, 2000));
    expect(got.map((d) => d.allowed)).toEqual([true, true, true, true, true, false]);
    expect(got.slice(0, 5).map((d) => d.remaining)).toEqual([4, 3, 2, 1, 0]);
    expect(got[5]!.retryAfterMs).toBeGreaterThan(1500);
    expect(got[5]!.retryAfterMs).toBeLessThanOrEqual(2000);
    // One sorted-set entry per counted request (the refused one is not recorded), expiring with the window.
    expect(await redis.zcard(key('a'))).toBe(5);
    expect(await redis.pttl(key('a'))).toBeGreaterThan(0);
  });

  it('keeps clients apart', async () => {
    for (let i = 0; i < 3; i++) await hitRateLimit(redis, key('b'), 3, 5000);
    expect((await hitRateLimit(redis, key('b'), 3, 5000)).allowed).toBe(false);
    expect((await hitRateLimit(redis, key('c'), 3, 5000)).allowed).toBe(true);
  });

  it('lets the client in again when Retry-After says, not before, and never more than the limit in any window', async () => {
    const w = 600;
    const times: number[] = [];
    const hit = async () => {
      const d = await hitRateLimit(redis, key('d'), 4, w);
      if (d.allowed) times.push(Date.now());
      return d;
    };
    for (let i = 0; i < 4; i++) await hit();
    const refused = await hit();
    expect(refused.allowed).toBe(false);
    const promisedAt = Date.now() + refused.retryAfterMs;
    // Hammer for two windows: refused requests do not count, so the budget frees up as the old requests age out.
    await waitFor(async () => (await hit(), Date.now() > promisedAt + w), { timeoutMs: 5000, intervalMs: 5, what: 'two windows of requests' });
    const firstAgain = times[4]!;
    expect(firstAgain).toBeGreaterThanOrEqual(promisedAt - 20);
    expect(firstAgain).toBeLessThan(promisedAt + 300); // slack for a loaded machine; Redis' own clock decides
    for (let i = 0; i < times.length; i++) {
      // Client-side times of the answers only approximate Redis' times of the requests: allow for latency.
      const inWindow = times.filter((t) => t >= times[i]! && t < times[i]! + w - 60).length;
      expect(inWindow).toBeLessThanOrEqual(4);
    }
  });
});

describe('rateIdentity', () => {
  const req = (authorization?: string, ip = '10.0.0.7') => ({ header: () => authorization, ip, socket: { remoteAddress: ip } }) as never;
  it('counts by a hash of the API key when keys are configured, never the key itself', () => {
    const id = rateIdentity(req('Bearer secret-key-0123456789abcdef'), true);
    expect(id).toMatch(/^key:[0-9a-f]{32}$/);
    expect(id).not.toContain('secret');
    expect(rateIdentity(req('Bearer another-key-0123456789abcd'), true)).not.toBe(id);
  });
  it('counts by client address without keys', () => {
    expect(rateIdentity(req('Bearer whatever'), false)).toBe('ip:10.0.0.7');
  });
});
