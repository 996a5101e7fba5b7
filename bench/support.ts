// Shared bench plumbing: a private redis-server, child processes via the hydra CLI, latency statistics.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { redisAnswers } from '../libs/queue/index.js';
import { freePort } from '../test/support/wait.js';

export const HYDRA_BIN = fileURLToPath(new URL('../bin/hydra.mjs', import.meta.url));
const children: ChildProcess[] = [];

export { freePort };

export async function until(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Set HYDRA_BENCH_PROF=<dir> to write a V8 CPU profile of every Node child process there (for finding hot spots). */
export function child(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const prof = process.env.HYDRA_BENCH_PROF;
  if (prof && cmd === process.execPath) args = ['--cpu-prof', '--cpu-prof-dir', prof, ...args];
  const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(p);
  return p;
}

const running = (p: ChildProcess) => p.exitCode === null && p.signalCode === null;

/** Stop every child: SIGKILL, or with HYDRA_BENCH_PROF SIGINT (so each writes its profile), then SIGKILL after 3 s. */
export async function stopChildren(): Promise<void> {
  const alive = children.filter(running);
  if (process.env.HYDRA_BENCH_PROF) {
    for (const p of alive) p.kill('SIGINT');
    const exited = Promise.all(alive.map((p) => new Promise((r) => (running(p) ? p.once('exit', r) : r(null)))));
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
  }
  for (const p of alive.filter(running)) p.kill('SIGKILL');
}
// A bench that exits any other way must not leave its workers behind (no time for profiles then).
process.on('exit', () => children.filter(running).forEach((p) => p.kill('SIGKILL')));

/** A private redis-server (no persistence) on a free port. */
export async function startRedis(): Promise<string> {
  const port = await freePort();
  child('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', mkdtempSync(join(tmpdir(), 'hydra-bench-'))]);
  const url = `redis://127.0.0.1:${port}`;
  await until('redis-server', () => redisAnswers(url));
  return url;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

export interface RunStats {
  n: number;
  seconds: number;
  per_second: number;
  p50_ms: number;
  p99_ms: number;
}

/** Run `n` calls of `one` with `concurrency` in flight; latency per call in ms. */
export async function runLoad(n: number, concurrency: number, one: (i: number) => Promise<void>): Promise<RunStats> {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        const s = performance.now();
        await one(i);
        lat.push(performance.now() - s);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { n, seconds: round(seconds), per_second: round(n / seconds), p50_ms: round(quantile(lat, 0.5)), p99_ms: round(quantile(lat, 0.99)) };
}

export const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;

/** The median of `xs` (the mean of the middle two for an even count); NaN for none. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux); NaN where /proc is absent. */
export function cpuSecondsOf(pid: number | undefined): number {
  const c = cpuSplitOf(pid);
  return c.user + c.system;
}

/**
 * A process's CPU seconds so far in user space and in the kernel (system). On loopback the kernel delivers a sent
 * packet to its receiver inside the sender's write, so the system share is mostly what its socket reads and writes
 * cost. NaN where /proc is absent.
 */
export function cpuSplitOf(pid: number | undefined): { user: number; system: number } {
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th, in clock ticks.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]) / CLOCK_TICKS, system: Number(f[12]) / CLOCK_TICKS };
  } catch {
    return { user: NaN, system: NaN };
  }
}
/**
 * A process's read and write system calls so far (`syscr` + `syscw` of /proc/PID/io: read/readv and write/writev,
 * which is how Node reads and writes its sockets) and its main thread's sleeps (`voluntary_ctxt_switches`: the
 * event loop blocking in epoll, so about one per wake-up). Counts, not times: far steadier than CPU time on a shared
 * machine, and what round trips per job cost in the kernel. NaN where /proc cannot be read.
 */
export function syscallsOf(pid: number | undefined): { syscalls: number; wakeups: number } {
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (text: string, name: string) => Number(new RegExp(`^${name}:\\s*(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
    return { syscalls: field(io, 'syscr') + field(io, 'syscw'), wakeups: field(status, 'voluntary_ctxt_switches') };
  } catch {
    return { syscalls: NaN, wakeups: NaN };
  }
}
/** USER_HZ: 100 on every Linux this runs on (getconf CLK_TCK). */
const CLOCK_TICKS = 100;

/** Redis' own CPU seconds (INFO cpu) and its per-command call counts (INFO commandstats). */
export async function redisCounters(redis: { info(section: string): Promise<string> }): Promise<{ cpuS: number; calls: Map<string, number> }> {
  const cpu = await redis.info('cpu');
  const num = (k: string) => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(cpu)?.[1] ?? NaN);
  const calls = new Map<string, number>();
  for (const m of (await redis.info('commandstats')).matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) calls.set(m[1]!, Number(m[2]));
  return { cpuS: num('used_cpu_user') + num('used_cpu_sys'), calls };
}

/** Run a bench's main: report a failure, always stop the child processes, then exit. */
export function runBench(main: () => Promise<void>): void {
  main()
    .catch((e: Error) => {
      process.stderr.write(`bench failed: ${e.stack}\n`);
      process.exitCode = 1;
    })
    .finally(async () => {
      await stopChildren();
      process.exit();
    });
}
