// Request limits over real HTTP: rate limit per API key shared by API replicas (429 + Retry-After), per client
// address without keys, the prompt length limit (400 naming the field) and the body size limit (413).
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../apps/api/app.js';
import { createApiContext, type ApiContext } from '../apps/api/context.js';
import { silentLogger } from '../libs/logger/index.js';
import { startCluster, type TestCluster } from './support/cluster.js';

const KEY_A = 'limits-key-a-0123456789';
const KEY_B = 'limits-key-b-0123456789';
const bearer = (k: string) => ({ authorization: `Bearer ${k}` });

/** A second API replica on the same Redis and key prefix, as another process behind a load balancer would be. */
async function replica(c: TestCluster): Promise<{ url: string; close(): Promise<void> }> {
  const ctx: ApiContext = await createApiContext(c.config, silentLogger());
  const server: Server = await new Promise((res) => {
    const s = buildApp(ctx).listen(0, '127.0.0.1', () => res(s));
  });
  const addr = server.address();
  return {
    url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await ctx.close();
    },
  };
}

describe('rate limit per API key', () => {
  let c: TestCluster;
  let other: Awaited<ReturnType<typeof replica>>;
  beforeAll(async () => {
    c = await startCluster({ API_KEYS: `${KEY_A},${KEY_B}`, RATE_LIMIT_PER_MIN: '6' });
    other = await replica(c);
  });
  afterAll(async () => {
    await other?.close();
    await c?.stop();
  });

  it('shares one budget across replicas: the 7th request in a minute gets 429 with Retry-After, other keys are unaffected', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const base = i % 2 === 0 ? c.url : other.url; // alternate replicas, as a load balancer would
      const r = await fetch(`${base}/v1/nodes`, { headers: bearer(KEY_A) });
      expect(r.headers.get('ratelimit-limit')).toBe('6');
      expect(r.headers.get('ratelimit-remaining')).toBe(String(5 - i));
      statuses.push(r.status);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200]);
    for (const base of [c.url, other.url]) {
      const r = await fetch(`${base}/v1/jobs`, { method: 'POST', headers: { ...bearer(KEY_A), 'content-type': 'application/json' }, body: '{}' });
      expect(r.status).toBe(429);
      const retryAfter = Number(r.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(55);
      expect(retryAfter).toBeLessThanOrEqual(60);
      const body = (await r.json()) as any;
      expect(body.error).toMatchObject({ code: 'rate_limited', retryable: true, details: { retry_after_s: retryAfter, limit: 6 } });
      expect(body.error.message).toMatch(/rate limit of 6 requests per minute exceeded for this API key \(RATE_LIMIT_PER_MIN\); retry after \d+ s/);
    }
    expect((await c.get('/v1/nodes', bearer(KEY_B))).status).toBe(200);
    // Health checks and unauthenticated requests do not spend a key's budget; a wrong key is still 401, not 429.
    expect((await c.get('/healthz')).status).toBe(200);
    expect((await c.get('/v1/nodes', bearer('wrong-key-0123456789abc'))).status).toBe(401);
  });

  it('stores a hash of the key, never the key', async () => {
    const keys = await c.ctx.redis.keys(`${c.prefix}:ratelimit:*`);
    expect(keys.length).toBeGreaterThanOrEqual(2);
    expect(keys.join(' ')).not.toContain(KEY_A);
    expect(keys.every((k) => /:ratelimit:key:[0-9a-f]{32}$/.test(k))).toBe(true);
  });
});

describe('rate limit without keys', () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({ RATE_LIMIT_PER_MIN: '3' });
  });
  afterAll(async () => c?.stop());

  it('counts per client address', async () => {
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await c.get('/v1/nodes')).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const keys = await c.ctx.redis.keys(`${c.prefix}:ratelimit:*`);
    expect(keys).toEqual([`${c.prefix}:ratelimit:ip:127.0.0.1`]);
  });
});

describe('prompt and body limits', () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({ MAX_PROMPT_CHARS: '1000', BODY_LIMIT_BYTES: '8192' });
  });
  afterAll(async () => c?.stop());

  it.each([
    ['prompt', { type: 'generate', model: 'm', prompt: 'x'.repeat(1001) }, 'prompt holds 1001 characters of prompt text; the limit is 1000 (MAX_PROMPT_CHARS)'],
    ['prompt + system', { type: 'generate', model: 'm', prompt: 'x'.repeat(600), system: 'y'.repeat(600) }, 'prompt holds 1200 characters of prompt and system text'],
    ['messages', { type: 'chat', model: 'm', messages: [{ role: 'system', content: 'x'.repeat(500) }, { role: 'user', content: 'y'.repeat(501) }] }, 'messages holds 1001 characters of message content'],
    ['input (array)', { type: 'embed', model: 'm', input: ['x'.repeat(700), 'y'.repeat(700)] }, 'input holds 1400 characters of input text'],
  ])('400 naming the field when the %s is too long', async (_name, body, message) => {
    const r = await c.post('/v1/jobs', body);
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('bad_request');
    expect(r.body.error.message).toContain(message);
    expect(r.body.error.details.fields[0].field).toBe(message.split(' ')[0]);
  });

  it('lets a prompt at the limit through to routing (422: no node serves model "m")', async () => {
    const r = await c.post('/v1/jobs', { type: 'generate', model: 'm', prompt: 'x'.repeat(1000) });
    expect(r.status).toBe(422);
  });

  it('keeps the body size limit: 413', async () => {
    const r = await c.post('/v1/jobs', { type: 'generate', model: 'm', prompt: 'x'.repeat(9000) });
    expect(r.status).toBe(413);
    expect(r.body.error.message).toMatch(/larger than the limit of 8192 bytes \(BODY_LIMIT_BYTES\)/);
  });
});
