// Test harness: an in-process API on a free port, simulated nodes, and workers as real child processes, all on one key prefix.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';
import { buildApp } from '../../apps/api/app.js';
import { createApiContext, type ApiContext } from '../../apps/api/context.js';
import { startWebhookWorker } from '../../apps/api/webhooks.js';
import { createSimNode, type SimNode, type SimNodeOptions } from '../../apps/node-sim/sim-server.js';
import { loadConfig, type Config } from '../../libs/config/index.js';
import { silentLogger, type Logger } from '../../libs/logger/index.js';
import { CHECKED_HEADER, openApiCheck, watchAnswers } from './openapi-check.js';
import { waitFor } from './wait.js';

export const HYDRA_BIN = fileURLToPath(new URL('../../bin/hydra.mjs', import.meta.url));

export interface WorkerProc {
  nodeId: string;
  proc: ChildProcess;
  output: () => string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface TestCluster {
  prefix: string;
  redisUrl: string;
  url: string;
  ctx: ApiContext;
  config: Config;
  sims: SimNode[];
  workers: WorkerProc[];
  sim(opts: Omit<SimNodeOptions, 'logger'>): Promise<SimNode>;
  worker(env: Record<string, string>): Promise<WorkerProc>;
  /** A worker in front of a simulated node, registered and healthy before it returns. */
  simWorker(nodeId: string, opts: Omit<SimNodeOptions, 'logger'>, env?: Record<string, string>): Promise<{ sim: SimNode; worker: WorkerProc }>;
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any }>;
  get(path: string, headers?: Record<string, string>): Promise<{ status: number; body: any }>;
  del(path: string): Promise<{ status: number; body: any }>;
  nodes(): Promise<any[]>;
  waitForNode(id: string, check?: (n: any) => boolean, timeoutMs?: number): Promise<any>;
  stop(): Promise<void>;
}

/** Fast heartbeats and failover settings so tests finish quickly; each cluster has its own key prefix. */
export function testEnv(prefix: string, redisUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: prefix,
    // A record lives 3 heartbeats; tests share 2 cores with other test files, so keep it well above scheduling hiccups.
    HEARTBEAT_MS: '1000',
    POLL_MS: '200',
    LOCALITY_WAIT_MS: '200',
    LOCK_DURATION_MS: '4000',
    STALLED_INTERVAL_MS: '1000',
    BACKOFF_MS: '100',
    LOG_LEVEL: 'info',
    // No results history unless a test asks (test/history.int.test.ts): no SQLite file under ./data from every test.
    MEMORY_URL: 'off',
    ...extra,
  };
}

/**
 * `extraEnv.REDIS_URL` points the cluster at a test's own Redis instead of the shared one; `opts.logger` is the API's
 * logger (silent unless given: a test that reads the API's log lines passes one with its own destination).
 */
export async function startCluster(extraEnv: Record<string, string> = {}, opts: { logger?: Logger } = {}): Promise<TestCluster> {
  const redisUrl = extraEnv.REDIS_URL ?? inject('redisUrl');
  const prefix = `{t${randomBytes(4).toString('hex')}}`;
  const env = testEnv(prefix, redisUrl, { PORT: '0', ...extraEnv });
  const config = loadConfig(env);
  const ctx = await createApiContext(config, opts.logger ?? silentLogger());
  // Webhook deliveries, as apps/api/main.ts starts them.
  const webhooks = startWebhookWorker(ctx);
  const app = buildApp(ctx);
  // Answers to other clients (plain fetch, SDKs) are held to the OpenAPI document too; drift fails the file at stop().
  const drift: string[] = [];
  const server: Server = await new Promise((res) => {
    const s = createServer(watchAnswers(app, drift)).listen(0, '127.0.0.1', () => res(s));
  });
  const addr = server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  const sims: SimNode[] = [];
  const workers: WorkerProc[] = [];

  const req = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const r = await fetch(`${url}${path}`, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), [CHECKED_HEADER]: '1', ...headers },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await r.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    // Drift check: an answer the OpenAPI document does not describe fails the test that got it (openapi-check.ts).
    openApiCheck().check(method, path, r.status, r.headers.get('content-type'), parsed);
    return { status: r.status, body: parsed as any };
  };

  const cluster: TestCluster = {
    prefix,
    redisUrl,
    url,
    ctx,
    config,
    sims,
    workers,
    async sim(opts) {
      // Cheap, old-style timing unless a test asks (no runner start-up, parallelism free), and the sim's default
      // context is the workers' NUM_CTX, so the worker's fit estimate and the sim's allocation use one number.
      const s = await createSimNode({ loadFixedMs: 0, batchExponent: 1, numCtx: config.NUM_CTX, ...opts, logger: silentLogger() });
      sims.push(s);
      return s;
    },
    async worker(wenv) {
      let out = '';
      // An Ollama-backed worker here fronts a simulated node, which runs 4 requests per model unless told otherwise:
      // the worker's per-model limit (NUM_PARALLEL) says the same unless the test sets it.
      const parallel = wenv.BACKEND === 'ollama' && !('NUM_PARALLEL' in wenv) && !('NUM_PARALLEL' in extraEnv) ? { NUM_PARALLEL: '4' } : {};
      const proc = spawn(process.execPath, [HYDRA_BIN, 'worker'], { env: { ...process.env, ...testEnv(prefix, redisUrl, extraEnv), ...parallel, ...wenv }, stdio: ['ignore', 'pipe', 'pipe'] });
      proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
      const w: WorkerProc = {
        nodeId: wenv.NODE_ID ?? '',
        proc,
        output: () => out,
        async stop(signal = 'SIGTERM') {
          if (proc.exitCode !== null || proc.signalCode !== null) return;
          const exited = new Promise((r) => proc.once('exit', r));
          proc.kill(signal);
          await exited;
        },
      };
      workers.push(w);
      return w;
    },
    async simWorker(nodeId, opts, wenv = {}) {
      const sim = await cluster.sim(opts);
      // NUM_PARALLEL is the backend's per-model limit: the simulated node's --parallel (its default, 4, unless set).
      const worker = await cluster.worker({ BACKEND: 'ollama', OLLAMA_URL: sim.url, NODE_ID: nodeId, NODE_VRAM_GB: String(opts.vramGb), NUM_PARALLEL: String(opts.parallel ?? 4), ...wenv });
      await cluster.waitForNode(nodeId, (n) => n.healthy, 20_000).catch((e: Error) => {
        throw new Error(`${e.message}\nworker output:\n${worker.output()}`);
      });
      return { sim, worker };
    },
    post: (path, body, headers) => req('POST', path, body, headers),
    get: (path, headers) => req('GET', path, undefined, headers),
    del: (path) => req('DELETE', path),
    async nodes() {
      // With API_KEYS set, the harness's own look at the nodes speaks with the first key (tests' requests do not).
      const auth: Record<string, string> = config.API_KEYS[0] ? { authorization: `Bearer ${config.API_KEYS[0]}` } : {};
      return (await req('GET', '/v1/nodes', undefined, auth)).body.nodes as any[];
    },
    async waitForNode(id, check = () => true, timeoutMs = 15_000) {
      return waitFor(async () => (await cluster.nodes()).find((n) => n.id === id && check(n)), { timeoutMs, what: `node ${id} in /v1/nodes` });
    },
    async stop() {
      await Promise.all(workers.map((w) => w.stop('SIGKILL')));
      await Promise.all(sims.map((s) => s.close().catch(() => undefined)));
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await webhooks.close();
      // Remove this cluster's keys (never FLUSHALL a shared Redis).
      const keys = await ctx.redis.keys(`${prefix}*`);
      for (let i = 0; i < keys.length; i += 500) await ctx.redis.del(...keys.slice(i, i + 500));
      await ctx.close();
      if (drift.length > 0) throw new Error(`${drift.length} answer(s) of this cluster drift from the OpenAPI document:\n${[...new Set(drift)].slice(0, 10).join('\n\n')}`);
    },
  };
  return cluster;
}

/** Read a job's SSE stream to its end: every event in order. */
export async function readSse(url: string, headers: Record<string, string> = {}): Promise<{ id: string; event: string; data: any }[]> {
  const r = await fetch(url, { headers: { accept: 'text/event-stream', ...headers } });
  if (!r.ok || !r.body) throw new Error(`SSE ${url} answered ${r.status}`);
  const events: { id: string; event: string; data: any }[] = [];
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (block.startsWith(':')) continue;
      const f: Record<string, string> = {};
      for (const line of block.split('\n')) {
        const k = line.slice(0, line.indexOf(':'));
        f[k] = line.slice(line.indexOf(':') + 1).trimStart();
      }
      events.push({ id: f.id ?? '', event: f.event ?? 'message', data: f.data ? JSON.parse(f.data) : null });
    }
  }
  return events;
}
