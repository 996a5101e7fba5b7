// Starts one private redis-server on a free port for the whole test run; tests isolate by key prefix.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import type {} from 'vitest';
import { redisAnswers } from '../../libs/queue/index.js';
import { freePort, waitFor } from './wait.js';

let proc: ChildProcess | undefined;
let dir: string | undefined;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.HYDRA_TEST_REDIS_URL;
  if (external) {
    project.provide('redisUrl', external);
    return async () => {};
  }
  const port = await freePort();
  dir = mkdtempSync(join(tmpdir(), 'hydra-test-redis-'));
  proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--maxmemory-policy', 'noeviction'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  proc.on('error', (e) => {
    throw new Error(`cannot start redis-server for the tests (${e.message}); install it: apt-get install -y redis-server`);
  });
  const url = `redis://127.0.0.1:${port}`;
  await waitFor(() => redisAnswers(url), { timeoutMs: 10_000, what: 'redis-server to accept connections' });
  project.provide('redisUrl', url);
  return async () => {
    proc?.kill('SIGTERM');
    if (dir) rmSync(dir, { recursive: true, force: true });
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}
