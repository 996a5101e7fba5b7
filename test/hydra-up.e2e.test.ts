// The README's first command: `hydra up` starts a whole cluster and answers with real inference from the toy model.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { TINY_CHAT_REPLY, TINY_MODEL_NAME } from '../libs/tiny-model/index.js';
import { HYDRA_BIN } from './support/cluster.js';
import { freePort, waitFor } from './support/wait.js';

describe('hydra up', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hydra-up-'));
  let proc: ReturnType<typeof spawn> | undefined;
  afterAll(async () => {
    if (proc && proc.exitCode === null) {
      const exited = new Promise((r) => proc!.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts API, a llama.cpp worker on the toy model and a simulated node; answers a chat', async () => {
    const port = await freePort();
    const prefix = `{up${Date.now().toString(36)}}`;
    let out = '';
    proc = spawn(process.execPath, [HYDRA_BIN, 'up', '--sim', '1'], {
      env: {
        ...process.env,
        REDIS_URL: inject('redisUrl'),
        QUEUE_PREFIX: prefix,
        PORT: String(port),
        OLLAMA_URL: `http://127.0.0.1:${await freePort()}`, // nothing listens: no Ollama here
        MODELS_DIR: join(dir, 'models'),
        HYDRA_DATA_DIR: join(dir, 'data'),
        HEARTBEAT_MS: '500',
        LLAMA_THREADS: '1',
        NUM_CTX: '512',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, as a shell gives a foreground job: Ctrl-C below signals the whole group.
      detached: true,
    });
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(() => out.includes('Hydra is up'), { timeoutMs: 60_000, what: `"Hydra is up" (output so far:\n${out})` });
    expect(out).toContain(`serving the built-in toy model "${TINY_MODEL_NAME}"`);
    expect(out).toMatch(/simulated node sim-1/);
    // Progress while nodes come up, one line per node, and where to look once up.
    expect(out).toMatch(/node sim-1 registered \([12]\/2/);
    expect(out).toMatch(/registered \(2\/2/);
    expect(out).toMatch(/dashboard +http:\/\/127\.0\.0\.1:\d+\/dashboard/);
    const base = `http://127.0.0.1:${port}`;
    const nodes = (await (await fetch(`${base}/v1/nodes`)).json()) as { nodes: { id: string; simulated: boolean }[] };
    expect(nodes.nodes).toHaveLength(2);
    expect(nodes.nodes.find((n) => n.id === 'sim-1')?.simulated).toBe(true);
    expect(nodes.nodes.find((n) => n.id !== 'sim-1')?.simulated).toBe(false);
    const r = await fetch(`${base}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'chat', model: TINY_MODEL_NAME, messages: [{ role: 'user', content: 'hello' }], options: { temperature: 0 }, wait: true }),
    });
    const body = (await r.json()) as { result: { message: { content: string } } };
    expect(r.status).toBe(200);
    expect(body.result.message.content).toBe(TINY_CHAT_REPLY);

    // Ctrl-C in the terminal while a request waits (~3 s of simulated decoding): SIGINT to the whole foreground group.
    // The wait is answered in full, `up` exits 0, each child stops once (before, the API got the terminal's SIGINT and
    // then up's SIGTERM, took the second as "exit now" with status 1, and the wait was cut).
    const tokens = 2400;
    const wait = fetch(`${base}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'generate', model: 'llama3.2:3b', prompt: 'ctrl-c', wait: true, cache: false, options: { num_predict: tokens, sim_answer_tokens: tokens } }),
    }).then(
      async (res) => ({ status: res.status, body: (await res.json()) as { state?: string } }),
      (e: Error) => ({ status: 0, body: { error: e.message } as { state?: string } }),
    );
    await waitFor(async () => ((await (await fetch(`${base}/v1/nodes`)).json()) as { nodes: { id: string; active_jobs: number }[] }).nodes.some((n) => n.id === 'sim-1' && n.active_jobs > 0), {
      timeoutMs: 20_000,
      what: 'the job running on sim-1',
    });
    const exited = new Promise<number | null>((r) => proc!.once('exit', (code) => r(code)));
    process.kill(-proc.pid!, 'SIGINT');
    const answer = await wait;
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    expect(answer.body.state).toBe('completed');
    expect(await exited).toBe(0);
    const apiLog = readFileSync(join(dir, 'data', 'logs', 'api.log'), 'utf8');
    expect(apiLog).toContain('api drained');
    expect(apiLog).not.toContain('api exiting without finishing its drain');
    const workerLog = readFileSync(join(dir, 'data', 'logs', 'worker.log'), 'utf8');
    expect(workerLog).toContain('node agent stopped');
  }, 90_000);
});

describe('hydra up without Redis', () => {
  it('says how to install redis-server when none answers and it is not installed', async () => {
    // A PATH holding only node: no redis-server to find.
    const bin = mkdtempSync(join(tmpdir(), 'hydra-path-'));
    symlinkSync(process.execPath, join(bin, 'node'));
    const proc = spawn(process.execPath, [HYDRA_BIN, 'up'], {
      env: { ...process.env, PATH: bin, REDIS_URL: `redis://127.0.0.1:${await freePort()}`, HYDRA_DATA_DIR: join(bin, 'data') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise((r) => proc.once('exit', r));
    rmSync(bin, { recursive: true, force: true });
    expect(code).toBe(1);
    expect(out).toMatch(/no Redis answers at redis:\/\/127\.0\.0\.1:\d+ and redis-server is not installed/);
    expect(out).toMatch(/apt-get install -y redis-server/);
  }, 30_000);
});
