// Shared bench plumbing: a private redis-server, child processes via the hydra CLI, latency statistics.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
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

export function stopChildren(): void {
  // SIGINT lets a profiled child write its profile; SIGKILL after a moment for anything left.
  for (const p of children) p.kill(process.env.HYDRA_BENCH_PROF ? 'SIGINT' : 'SIGKILL');
  if (process.env.HYDRA_BENCH_PROF) setTimeout(() => children.forEach((p) => p.kill('SIGKILL')), 3000).unref();
}
process.on('exit', stopChildren);

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

/** Run a bench's main: report a failure, always stop the child processes, then exit. */
export function runBench(main: () => Promise<void>): void {
  main()
    .catch((e: Error) => {
      process.stderr.write(`bench failed: ${e.stack}\n`);
      process.exitCode = 1;
    })
    .finally(() => {
      stopChildren();
      setTimeout(() => process.exit(), 200).unref();
    });
}
