// Plumbing of the Redis-cost benches (redis-memory, redis-cost, scale): a local cluster of simulated nodes, the API and
// workers, and what Redis and the processes report about themselves (memory, CPU, commands, key families).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { Agent, fetch } from 'undici';
import { HYDRA_BIN, child, freePort, round, until } from './support.js';

// ---- the cluster -------------------------------------------------------------------------------------------------

const sims: ChildProcess[] = [];
process.on('exit', () => sims.forEach((p) => p.kill('SIGKILL')));

/** A child process whose stdout this bench reads (pino JSON lines), killed when the bench exits. */
export function spawnRead(args: string[], env: Record<string, string>, onLine: (line: string) => void): ChildProcess {
  const proc = spawn(process.execPath, [HYDRA_BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  sims.push(proc);
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  return proc;
}

export function stopProcess(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    p.once('exit', () => resolve());
    p.kill('SIGKILL');
  });
}

/** One `hydra sim --count n` process; resolves with its nodes' URLs (it prints one line per node). */
export function startSims(n: number, args: string[]): Promise<string[]> {
  return startSimProcess(n, args).then((s) => s.urls);
}

export function startSimProcess(n: number, args: string[]): Promise<{ urls: string[]; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [HYDRA_BIN, 'sim', '--count', String(n), '--port', '0', '--log-level', 'warn', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  sims.push(proc);
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`hydra sim --count ${n} did not start within 60 s: ${out}`)), 60_000);
    proc.once('exit', (code) => reject(new Error(`hydra sim exited (${code}) before listening: ${out}`)));
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const urls = [...out.matchAll(/listening on (http:\/\/\S+)/g)].map((m) => m[1]!);
      if (urls.length < n) return;
      clearTimeout(timer);
      proc.stdout!.removeAllListeners('data');
      proc.stdout!.resume();
      resolve({ urls, proc });
    });
  });
}

export interface Cluster {
  apiUrl: string;
  api: ChildProcess;
  workers: ChildProcess[];
}

/** The API alone (workers come with startWorkers). */
export async function startApi(redisUrl: string, env: Record<string, string>): Promise<{ apiUrl: string; api: ChildProcess; env: Record<string, string> }> {
  const apiPort = await freePort();
  const base = { REDIS_URL: redisUrl, LOG_LEVEL: 'warn', PORT: String(apiPort), ...env };
  const api = child(process.execPath, [HYDRA_BIN, 'api'], base);
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  await until('the API', async () => (await fetch(`${apiUrl}/healthz`)).ok, 60_000);
  return { apiUrl, api, env: base };
}

export const nodeCount = async (apiUrl: string): Promise<number> => ((await (await fetch(`${apiUrl}/v1/nodes`)).json()) as { nodes: unknown[] }).nodes.length;

/** One worker process per node URL (node ids sim-<first+1>, ...); waits until the API lists `expectNodes` nodes. */
export async function startWorkers(apiUrl: string, env: Record<string, string>, simUrls: string[], opts: { vramGb?: number; first?: number; expectNodes?: number } = {}): Promise<ChildProcess[]> {
  const vram = String(opts.vramGb ?? 24);
  const first = opts.first ?? 0;
  const workers = simUrls.map((u, i) => child(process.execPath, [HYDRA_BIN, 'worker'], { ...env, BACKEND: 'ollama', OLLAMA_URL: u, NODE_ID: `sim-${first + i + 1}`, NODE_VRAM_GB: vram }));
  const want = opts.expectNodes ?? first + simUrls.length;
  await until(`${want} nodes registered`, async () => (await nodeCount(apiUrl)) >= want, 180_000);
  return workers;
}

/** The API and one worker process per node URL (node ids sim-1, sim-2, ...); waits until all are registered. */
export async function startCluster(redisUrl: string, simUrls: string[], env: Record<string, string>, opts: { vramGb?: number } = {}): Promise<Cluster> {
  const { apiUrl, api, env: base } = await startApi(redisUrl, env);
  const workers = await startWorkers(apiUrl, base, simUrls, opts);
  return { apiUrl, api, workers };
}

/** One HTTP agent for every call of a bench (keep-alive; enough connections for its concurrency). */
const agent = new Agent({ connections: 256, pipelining: 1 });

export async function postJson(url: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), dispatcher: agent });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

/** Read an SSE stream (`GET /v1/jobs/:id/stream`) to its terminal event; returns that event's name. */
export async function readSse(url: string): Promise<string> {
  const r = await fetch(url, { dispatcher: agent });
  if (!r.ok || !r.body) throw new Error(`stream ${url}: ${r.status}`);
  const dec = new TextDecoder();
  let buf = '';
  for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
    buf += dec.decode(chunk, { stream: true });
    const m = /^event: (done|error)$/m.exec(buf);
    if (m) {
      await r.body.cancel().catch(() => undefined);
      return m[1]!;
    }
  }
  throw new Error(`stream ${url} ended without a terminal event`);
}

// ---- what Redis says ---------------------------------------------------------------------------------------------

export interface RedisSample {
  at: number;
  used_memory: number;
  /** used_cpu_sys + used_cpu_user of the server, seconds. */
  cpu_s: number;
  total_commands: number;
  dbsize: number;
  /** calls per command (commandstats). */
  calls: Record<string, number>;
}

const field = (info: string, name: string): number => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);

export async function sampleRedis(r: Redis): Promise<RedisSample> {
  const [mem, cpu, stats, cmd, dbsize] = await Promise.all([r.info('memory'), r.info('cpu'), r.info('stats'), r.info('commandstats'), r.dbsize()]);
  const calls: Record<string, number> = {};
  for (const m of cmd.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[m[1]!] = Number(m[2]);
  return {
    at: performance.now(),
    used_memory: field(mem, 'used_memory'),
    cpu_s: field(cpu, 'used_cpu_sys') + field(cpu, 'used_cpu_user'),
    total_commands: field(stats, 'total_commands_processed'),
    dbsize,
    calls,
  };
}

export interface RedisDelta {
  seconds: number;
  cpu_s: number;
  commands: number;
  calls: Record<string, number>;
}

/** What Redis did between two samples (the INFO calls themselves are a handful of commands: negligible). */
export function deltaOf(a: RedisSample, b: RedisSample): RedisDelta {
  const calls: Record<string, number> = {};
  for (const [k, v] of Object.entries(b.calls)) {
    const d = v - (a.calls[k] ?? 0);
    if (d > 0) calls[k] = d;
  }
  return { seconds: (b.at - a.at) / 1000, cpu_s: b.cpu_s - a.cpu_s, commands: b.total_commands - a.total_commands, calls };
}

/** A delta less `rate` (another delta, e.g. idle) scaled to this one's duration: the part the load added. */
export function minusRate(d: RedisDelta, rate: RedisDelta): RedisDelta {
  const k = d.seconds / rate.seconds;
  const calls: Record<string, number> = {};
  for (const [c, v] of Object.entries(d.calls)) calls[c] = Math.max(0, v - (rate.calls[c] ?? 0) * k);
  return { seconds: d.seconds, cpu_s: Math.max(0, d.cpu_s - rate.cpu_s * k), commands: Math.max(0, d.commands - rate.commands * k), calls };
}

/** Calls per unit (job, node-second), the largest first, those under `min` left out. */
export function perUnit(calls: Record<string, number>, units: number, min = 0.05): Record<string, number> {
  return Object.fromEntries(
    Object.entries(calls)
      .map(([k, v]) => [k, round(v / units, 2)] as const)
      .filter(([, v]) => v >= min)
      .sort((a, b) => b[1] - a[1]),
  );
}

/** Which family a key belongs to: Hydra's own (node, jobq, stream, wf, ...) or BullMQ's (a job, or a queue structure). */
function familyOf(key: string, prefix: string): string {
  const rest = key.startsWith(`${prefix}:`) ? key.slice(prefix.length + 1) : key;
  const [head, second, third] = rest.split(':');
  const own = ['node', 'nodes', 'jobq', 'stream', 'cancel', 'readers', 'excl', 'jsess', 'sess', 'fence-claim', 'wf', 'wf-open', 'retired', 'metrics', 'cache', 'cache-stats', 'activity', 'live', 'queues'];
  if (head && own.includes(head)) return head === 'wf' ? 'wf (workflow state)' : head;
  if (second === undefined) return 'other';
  const structures = ['wait', 'paused', 'active', 'prioritized', 'delayed', 'completed', 'failed', 'waiting-children', 'events', 'meta', 'id', 'pc', 'marker', 'stalled', 'stalled-check', 'limiter', 'metrics'];
  if (structures.includes(second)) return `bullmq ${second}`;
  return third === undefined ? 'bullmq job' : `bullmq job:${third}`;
}

export interface Families {
  /** family → keys */
  count: Record<string, number>;
  /** family → estimated bytes (MEMORY USAGE of up to `sample` keys, times the count) */
  bytes: Record<string, number>;
}

/** Every key by family (SCAN), with its memory estimated from a sample of each family's keys. */
export async function keyFamilies(r: Redis, prefix: string, sample = 40): Promise<Families> {
  const keysOf = new Map<string, string[]>();
  let cursor = '0';
  do {
    const [next, found] = await r.scan(cursor, 'COUNT', 2000);
    for (const k of found) {
      const f = familyOf(k, prefix);
      const list = keysOf.get(f) ?? [];
      list.push(k);
      keysOf.set(f, list);
    }
    cursor = next;
  } while (cursor !== '0');
  const count: Record<string, number> = {};
  const bytes: Record<string, number> = {};
  for (const [f, list] of [...keysOf].sort((a, b) => b[1].length - a[1].length)) {
    count[f] = list.length;
    const step = Math.max(1, Math.floor(list.length / sample));
    const picked = list.filter((_, i) => i % step === 0).slice(0, sample);
    const sizes = await Promise.all(picked.map((k) => r.call('MEMORY', 'USAGE', k, 'SAMPLES', '0') as Promise<number | null>));
    const known = sizes.filter((s): s is number => typeof s === 'number');
    bytes[f] = known.length ? Math.round((known.reduce((a, b) => a + b, 0) / known.length) * list.length) : 0;
  }
  return { count, bytes };
}

// ---- what a process says -----------------------------------------------------------------------------------------

const TICKS = 100; // USER_HZ on Linux

/** User + system CPU of a process so far, seconds (/proc/<pid>/stat). */
export function procCpuS(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const parts = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(parts[11]) + Number(parts[12])) / TICKS;
  } catch {
    return NaN;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const mb = (bytes: number) => round(bytes / 2 ** 20, 1);
