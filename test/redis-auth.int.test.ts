// Redis passwords and TLS through the URL, end to end with real processes (API, worker, redis-server --requirepass,
// redis-server --tls-port), and no secret (Redis password, API key) in any process output.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HYDRA_BIN, startCluster, testEnv, type TestCluster } from './support/cluster.js';
import { makeTlsFiles, redisHasTls, startPrivateRedis, type PrivateRedis } from './support/redis-server.js';
import { freePort, waitFor } from './support/wait.js';

const M = 'm:7b';
const SIM = { vramGb: 24, models: [{ name: M, sizeGb: 4 }], tokensPerSecond: 2000, loadMsPerGb: 0 };
// Characters that must be percent-encoded in a URL, so the test also proves the decoding.
const PASSWORD = 'S3cret:p@ss/w0rd%hydra';
const API_KEY = 'auth-test-api-key-0123456789abcdef';
const WRONG_KEY = 'auth-test-wrong-key-0123456789abc';
const generate = { type: 'generate', model: M, prompt: 'hello', wait: true };

interface Proc {
  proc: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** `hydra api` as its own process (the harness' in-process API logs nothing), at trace level so every log line shows. */
async function spawnApi(env: Record<string, string>): Promise<Proc & { url: string }> {
  const port = await freePort();
  let out = '';
  const proc = spawn(process.execPath, [HYDRA_BIN, 'api'], { env: { ...process.env, ...env, PORT: String(port), LOG_LEVEL: 'trace' }, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  await waitFor(() => fetch(`${url}/healthz`, { signal: AbortSignal.timeout(3000) }).then(() => true, () => false), { timeoutMs: 20_000, what: `hydra api on ${port}` }).catch((e: Error) => {
    throw new Error(`${e.message}\n${out}`);
  });
  return {
    proc,
    url,
    output: () => out,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

const secretsIn = (text: string): string[] =>
  [PASSWORD, encodeURIComponent(PASSWORD), API_KEY, WRONG_KEY, Buffer.from(`admin:${API_KEY}`).toString('base64')].filter((s) => text.includes(s));

async function call(url: string, path: string, init: { method?: string; body?: unknown; key?: string } = {}): Promise<{ status: number; body: any }> {
  const r = await fetch(`${url}${path}`, {
    method: init.method ?? 'GET',
    headers: { ...(init.key ? { authorization: `Bearer ${init.key}` } : {}), ...(init.body ? { 'content-type': 'application/json' } : {}) },
    ...(init.body ? { body: JSON.stringify(init.body) } : {}),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await r.text();
  return { status: r.status, body: text.startsWith('{') ? JSON.parse(text) : text };
}

describe('Redis password (redis://:password@host:port)', () => {
  let redis: PrivateRedis;
  let c: TestCluster;
  let api: Awaited<ReturnType<typeof spawnApi>> | undefined;
  beforeAll(async () => {
    redis = await startPrivateRedis({ password: PASSWORD });
    c = await startCluster({ REDIS_URL: redis.url, LOG_LEVEL: 'trace' });
    await c.simWorker('n1', SIM);
  });
  afterAll(async () => {
    await api?.stop();
    await c?.stop();
    await redis?.destroy();
  });

  it('serves jobs end to end through a password-protected Redis (API and worker as real processes)', async () => {
    expect(redis.url).toContain(encodeURIComponent(PASSWORD));
    api = await spawnApi({ ...testEnv(c.prefix, redis.url), API_KEYS: API_KEY });
    expect((await call(api.url, '/healthz')).body).toEqual({ ok: true, redis: 'up' });
    const r = await call(api.url, '/v1/jobs', { method: 'POST', body: generate, key: API_KEY }).catch((e: Error) => {
      throw new Error(`${e.message}\napi output:\n${api!.output().slice(-3000)}\nworker output:\n${c.workers[0]!.output().slice(-3000)}`);
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ state: 'completed', result: { node_id: 'n1' } });
    // Failed auth paths log too: wrong key, no key, Basic auth for the board.
    expect((await call(api.url, '/v1/nodes', { key: WRONG_KEY })).status).toBe(401);
    expect((await call(api.url, '/v1/jobs', { method: 'POST', body: generate })).status).toBe(401);
    const board = await fetch(`${api.url}/admin/queues`, { headers: { authorization: `Basic ${Buffer.from(`admin:${API_KEY}`).toString('base64')}` }, signal: AbortSignal.timeout(15_000) });
    expect(board.status).toBe(200);
  });

  it('never prints the Redis password or an API key (API and worker output at trace level)', async () => {
    expect(api).toBeDefined();
    await api!.stop();
    const outputs = { api: api!.output(), worker: c.workers[0]!.output() };
    expect(outputs.api).toMatch(/api listening/);
    expect(outputs.worker.length).toBeGreaterThan(0);
    expect({ api: secretsIn(outputs.api), worker: secretsIn(outputs.worker) }).toEqual({ api: [], worker: [] });
  });

  it('a wrong password: the API still starts and answers 503 saying authentication failed, without printing either password', async () => {
    const wrongUrl = redis.url.replace(encodeURIComponent(PASSWORD), 'not-the-password-42');
    const bad = await spawnApi(testEnv(c.prefix, wrongUrl));
    try {
      const h = await call(bad.url, '/healthz');
      expect(h.status).toBe(503);
      expect(h.body.error.message).toMatch(/Redis\) is unavailable: authentication failed \(check the password in REDIS_URL, and REDIS_SENTINEL_PASSWORD with Sentinel\)/);
      const post = await call(bad.url, '/v1/jobs', { method: 'POST', body: generate });
      expect(post.status).toBe(503);
    } finally {
      await bad.stop();
    }
    expect(bad.output()).toMatch(/WRONGPASS|NOAUTH/);
    expect(secretsIn(bad.output())).toEqual([]);
    expect(bad.output()).not.toContain('not-the-password-42');
  });
});

const tlsReady = redisHasTls();
describe.skipIf(!tlsReady)('Redis over TLS (rediss:// with tls_ca_file)', () => {
  let dir: string;
  let files: NonNullable<ReturnType<typeof makeTlsFiles>>;
  let redis: PrivateRedis;
  let c: TestCluster;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hydra-tls-'));
    const made = makeTlsFiles(dir);
    if (!made) throw new Error('openssl is needed for the TLS test');
    files = made;
    redis = await startPrivateRedis({ password: PASSWORD, tls: files });
    c = await startCluster({ REDIS_URL: `${redis.url}?tls_ca_file=${encodeURIComponent(files.ca)}` });
    await c.simWorker('n1', SIM);
  });
  afterAll(async () => {
    await c?.stop();
    await redis?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves jobs end to end over TLS with a private CA, password included', async () => {
    expect(redis.url).toMatch(/^rediss:\/\//);
    const r = await c.post('/v1/jobs', generate);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ state: 'completed', result: { node_id: 'n1' } });
    expect(secretsIn(c.workers[0]!.output())).toEqual([]);
  });

  it('refuses a server it cannot verify (no tls_ca_file): 503 naming the TLS handshake; tls_insecure=1 connects anyway', async () => {
    const unverified = await spawnApi(testEnv(c.prefix, redis.url));
    try {
      const h = await call(unverified.url, '/healthz');
      expect(h.status).toBe(503);
      expect(h.body.error.message).toMatch(/TLS handshake failed/);
    } finally {
      await unverified.stop();
    }
    const insecure = await spawnApi(testEnv(c.prefix, `${redis.url}?tls_insecure=1`));
    try {
      expect((await call(insecure.url, '/healthz')).status).toBe(200);
    } finally {
      await insecure.stop();
    }
  });
});
