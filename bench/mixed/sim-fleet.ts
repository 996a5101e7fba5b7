// The simulated fleet as child processes of `hydra sim`: which speed flags this simulator has, start, read /admin/state, stop.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { HYDRA_BIN } from '../support.js';
import { MODELS, NODES, modelSpec, needMbFromShow, type NodeSpec, type Needs, type ShowInfo, type SimSpeed } from './fleet-spec.js';

/** Flags the bench would like; `hydra sim --help` says which this simulator has. */
const WANTED_FLAGS = ['time-scale', 'parallel', 'load-fixed-ms', 'load-ms-per-gb', 'tokens-per-second', 'batch-exponent', 'num-ctx', 'max-queue', 'ram-gb', 'cpu-speed-ratio'] as const;
type Flag = (typeof WANTED_FLAGS)[number];

export interface SimFeatures {
  available: Flag[];
  missing: Flag[];
  /** True when the simulator divides its durations itself; otherwise the bench emulates it (tokens/s × K, load ms ÷ K). */
  nativeTimeScale: boolean;
  /** What the missing flags mean for this run, one line each. */
  notes: string[];
}

/** Reads `hydra sim --help` once and says which flags are there and what their absence changes. */
export async function detectSimFeatures(): Promise<SimFeatures> {
  const { stdout } = await promisify(execFile)(process.execPath, [HYDRA_BIN, 'sim', '--help']);
  const listed = new Set([...stdout.matchAll(/--([a-z][a-z-]*)/g)].map((m) => m[1]));
  const available = WANTED_FLAGS.filter((f) => listed.has(f));
  const missing = WANTED_FLAGS.filter((f) => !listed.has(f));
  const why: Record<Flag, string> = {
    'time-scale': 'time scale emulated: --tokens-per-second × K and --load-ms-per-gb ÷ K (exact for decode, prompt and load times; the 5-minute keep-alive stays wall-clock, so models do not expire during a run)',
    parallel: 'requests per loaded model at the simulator default',
    'load-fixed-ms': 'no fixed start-up cost per model load (only the per-GB time)',
    'load-ms-per-gb': 'load time at the simulator default',
    'tokens-per-second': 'decode speed at the simulator default',
    'batch-exponent': 'concurrent requests each decode at full single-request speed (exponent 1: flatters routers that pile requests on one model)',
    'num-ctx': 'no KV cache held per parallel slot in the simulator (Hydra still reserves it)',
    'max-queue': 'no OLLAMA_MAX_QUEUE limit in the simulator',
    'ram-gb': 'no CPU offload: a model that does not fit is refused with Ollama\'s out-of-memory 500',
    'cpu-speed-ratio': 'no CPU offload speed',
  };
  return { available, missing, nativeTimeScale: listed.has('time-scale'), notes: missing.map((f) => `--${f} unavailable: ${why[f]}`) };
}

/** The speed the simulator actually runs at: what a missing flag leaves at the older simulator's default. */
export function effectiveSpeed(want: SimSpeed, f: SimFeatures): SimSpeed {
  const has = (x: Flag): boolean => f.available.includes(x);
  return {
    ...want,
    parallel: has('parallel') ? want.parallel : 4,
    tokensPerSecond: has('tokens-per-second') ? want.tokensPerSecond : 200,
    loadMsPerGb: has('load-ms-per-gb') ? want.loadMsPerGb : 20,
    loadFixedMs: has('load-fixed-ms') ? want.loadFixedMs : 0,
    batchExponent: has('batch-exponent') ? want.batchExponent : 1,
  };
}

export interface FleetOptions {
  features: SimFeatures;
  speed: SimSpeed;
  timeScale: number;
  nodes?: readonly NodeSpec[];
}

export interface SimProc {
  node: NodeSpec;
  url: string;
  proc: ChildProcess;
}

export interface Fleet {
  sims: SimProc[];
  /** Simulator arguments of each node, as started (for the report). */
  args: Record<string, string[]>;
  stop(): Promise<void>;
}

/** The `hydra sim` arguments of one node, using only the flags this simulator has (port 0: it picks a free one). */
export function simArgs(node: NodeSpec, o: FleetOptions): string[] {
  const has = (f: Flag): boolean => o.features.available.includes(f);
  const k = o.timeScale;
  // Without --time-scale, durations shrink through the speed flags themselves.
  const emulate = !o.features.nativeTimeScale;
  const models = node.models.map((m) => `${m}=${modelSpec(m).sizeGb}`).join(',');
  const args = ['sim', '--port', '0', '--vram-gb', String(node.vramGb), '--models', models, '--log-level', 'warn'];
  const add = (f: Flag, v: number): void => {
    if (has(f)) args.push(`--${f}`, String(Math.round(v * 1000) / 1000));
  };
  if (o.features.nativeTimeScale) add('time-scale', k);
  add('parallel', o.speed.parallel);
  add('tokens-per-second', emulate ? o.speed.tokensPerSecond * k : o.speed.tokensPerSecond);
  add('load-ms-per-gb', emulate ? o.speed.loadMsPerGb / k : o.speed.loadMsPerGb);
  add('load-fixed-ms', emulate ? o.speed.loadFixedMs / k : o.speed.loadFixedMs);
  add('batch-exponent', o.speed.batchExponent);
  add('num-ctx', o.speed.numCtx);
  add('max-queue', o.speed.maxQueue);
  add('ram-gb', node.ramGb);
  add('cpu-speed-ratio', o.speed.cpuSpeedRatio);
  return args;
}

/** Simulators still running, killed if this process exits first. */
const running = new Set<ChildProcess>();
process.on('exit', () => running.forEach((p) => p.kill('SIGKILL')));

/**
 * Starts one simulated node: it listens on a port it picks itself and prints its URL, so no other process can take
 * the port between a free-port lookup and the listen.
 */
function startSim(node: NodeSpec, args: string[]): Promise<SimProc> {
  const proc = spawn(process.execPath, [HYDRA_BIN, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  return new Promise<SimProc>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`simulated node ${node.id} did not start within 60 s: ${out}`)), 60_000);
    proc.once('exit', (code) => reject(new Error(`simulated node ${node.id} exited (${code}) before listening: ${out}`)));
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const url = /listening on (http:\/\/\S+)/.exec(out)?.[1];
      if (!url) return;
      clearTimeout(timer);
      proc.stdout!.removeAllListeners('data');
      proc.stdout!.resume();
      resolve({ node, url, proc });
    });
  });
}

/** Starts one simulated node per spec (fresh: nothing loaded, counters at 0) and waits until each listens. */
export async function startFleet(o: FleetOptions): Promise<Fleet> {
  const nodes = o.nodes ?? NODES;
  const argv = nodes.map((n) => simArgs(n, o));
  const started = await Promise.allSettled(nodes.map((n, i) => startSim(n, argv[i]!)));
  const sims = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const stop = (): Promise<void> => Promise.all(sims.map((s) => stopProcess(s.proc))).then(() => undefined);
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await stop();
    throw failed.reason;
  }
  return { sims, args: Object.fromEntries(nodes.map((n, i) => [n.id, argv[i]!.slice(1)])), stop };
}

/** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
export async function stopProcess(p: ChildProcess, graceMs = 3000): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  const timer = setTimeout(() => p.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** What each model needs (MiB, Hydra's estimate) from the simulator's own /api/show, asked of the node that lists it. */
export async function measureNeeds(fleet: Fleet, speed: SimSpeed): Promise<Needs> {
  const needs: Needs = {};
  for (const m of MODELS) {
    const s = fleet.sims.find((x) => x.node.models.includes(m.name));
    if (!s) continue;
    const r = await fetch(`${s.url}/api/show`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: m.name }) });
    needs[m.name] = needMbFromShow(m, (await r.json()) as ShowInfo, speed);
  }
  return needs;
}

/** Counters summed over the fleet's /admin/state; `offloaded_loads` is null when no simulator reports it. */
export interface FleetCounters {
  loads: number;
  evictions: number;
  oom_errors: number;
  offloaded_loads: number | null;
  served: number;
  failed: number;
  by_node: Record<string, { loads: number; oom_errors: number; offloaded_loads: number | null; served: number }>;
}

export async function fleetCounters(fleet: Fleet): Promise<FleetCounters> {
  const out: FleetCounters = { loads: 0, evictions: 0, oom_errors: 0, offloaded_loads: null, served: 0, failed: 0, by_node: {} };
  for (const s of fleet.sims) {
    const st = (await (await fetch(`${s.url}/admin/state`)).json()) as Record<string, unknown>;
    const n = (k: string): number => (typeof st[k] === 'number' ? (st[k] as number) : 0);
    const offloaded = typeof st.offloaded_loads === 'number' ? st.offloaded_loads : null;
    out.loads += n('loads');
    out.evictions += n('evictions');
    out.oom_errors += n('oom_errors');
    out.served += n('served');
    out.failed += n('failed');
    if (offloaded !== null) out.offloaded_loads = (out.offloaded_loads ?? 0) + offloaded;
    out.by_node[s.node.id] = { loads: n('loads'), oom_errors: n('oom_errors'), offloaded_loads: offloaded, served: n('served') };
  }
  return out;
}
