// `hydra status` as a user runs it (a child process against a small simulated cluster): the table, --watch without a
// terminal, and the messages when the API is unreachable or asks for a key.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HYDRA_BIN, startCluster, type TestCluster } from './support/cluster.js';
import { freePort, waitFor } from './support/wait.js';

const KEY = 'status-cli-test-key-0123456789';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `hydra status ...` to its end (or, with `until`, until its output says so, then Ctrl-C it). */
function hydraStatus(args: string[], env: Record<string, string>, until?: (stdout: string) => boolean): Promise<Run> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [HYDRA_BIN, 'status', ...args], { env: { ...process.env, HYDRA_API_KEY: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = { stdout: '', stderr: '' };
    const kill = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    proc.stdout.on('data', (d: Buffer) => {
      out.stdout += d.toString();
      if (until?.(out.stdout)) proc.kill('SIGINT');
    });
    proc.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
    proc.on('error', reject);
    proc.on('exit', (code) => {
      clearTimeout(kill);
      resolve({ code, ...out });
    });
  });
}

describe('hydra status', () => {
  let c: TestCluster;
  let env: Record<string, string>;
  const dataDir = mkdtempSync(join(tmpdir(), 'hydra-status-'));
  const bearer = { authorization: `Bearer ${KEY}` };

  beforeAll(async () => {
    // No aging during the test: the waiting jobs stay in the priority bands they were added with.
    // The results history on (SQLite in a temporary directory), for the per-model totals over days.
    c = await startCluster({ API_KEYS: KEY, AGING_STEP_MS: '600000', MEMORY_URL: `sqlite:${join(dataDir, 'history.sqlite')}` });
    await c.simWorker('gpu-a', { vramGb: 24, models: [{ name: 'qwen3:4b', sizeGb: 2.5 }], tokensPerSecond: 50, loadMsPerGb: 0, parallel: 1 });
    await c.simWorker('gpu-b', { vramGb: 8, models: [{ name: 'llama3.2:3b', sizeGb: 2 }], tokensPerSecond: 200, loadMsPerGb: 0 });
    env = { HYDRA_URL: c.url, HYDRA_API_KEY: KEY };
  });
  afterAll(async () => {
    await c?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('lists the nodes (loaded models, slots, tokens/s) and the queues (waiting by priority, oldest wait)', async () => {
    // A completed job gives gpu-b a loaded model and a measured speed.
    expect((await c.post('/v1/jobs', { type: 'generate', model: 'llama3.2:3b', prompt: 'hi', wait: true }, bearer)).status).toBe(200);
    await c.waitForNode('gpu-b', (n) => n.models_loaded.includes('llama3.2:3b') && Object.keys(n.perf).length > 0);
    // gpu-a runs one qwen3:4b request at a time: a long one holds its slot, so the next two wait.
    const long = (await c.post('/v1/jobs', { type: 'generate', model: 'qwen3:4b', prompt: 'long', options: { num_predict: 3000, sim_answer_tokens: 3000 } }, bearer)).body.id;
    await waitFor(async () => (await c.get(`/v1/jobs/${long}`, bearer)).body.state === 'active', { what: 'the long job to start' });
    // The registry learns of the loaded model at the node's next report, which can come after the job turned active.
    await c.waitForNode('gpu-a', (n) => n.models_loaded.includes('qwen3:4b'));
    for (const priority of [9, 3]) expect((await c.post('/v1/jobs', { type: 'generate', model: 'qwen3:4b', prompt: `p${priority}`, priority }, bearer)).status).toBe(202);

    const stats = (await c.get('/v1/cluster/stats', bearer)).body;
    expect(stats.queues['infer.qwen3_4b']).toMatchObject({ waiting: 2, active: 1, by_priority: [{ priority: 9, count: 1 }, { priority: 3, count: 1 }] });
    expect(stats.queues['infer.qwen3_4b'].oldest_waiting_ms).toBeGreaterThanOrEqual(0);

    const r = await hydraStatus([], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toContain(`hydra ${c.url}`);
    expect(lines[0]).toContain('2 nodes (2 healthy, 2 simulated)');
    expect(lines.some((l) => /^NODE\s+STATE\s+BACKEND\s+VRAM GiB\s+ACTIVE\s+MODEL\s+TOK\/S$/.test(l))).toBe(true);
    const a = lines.find((l) => l.startsWith('gpu-a '));
    expect(a).toMatch(/^gpu-a\s+healthy \(sim\)\s+ollama\s+[\d.]+\/24\.0\s+1\/\d+\s+qwen3:4b\s+(-|[\d.]+)$/);
    const b = lines.find((l) => l.startsWith('gpu-b '));
    expect(b).toMatch(/^gpu-b\s+healthy \(sim\)\s+ollama\s+[\d.]+\/8\.0\s+0\/\d+\s+llama3\.2:3b\s+\d+\.\d$/);
    expect(lines.some((l) => /^QUEUE\s+WAITING\s+BY PRIORITY\s+OLDEST\s+ACTIVE\s+DELAYED\s+FAILED$/.test(l))).toBe(true);
    expect(lines.find((l) => l.startsWith('infer.qwen3_4b '))).toMatch(/^infer\.qwen3_4b\s+2\s+p9:1 p3:1\s+\d+(ms|s)\s+1\s+0\s+0$/);
    expect(lines.find((l) => l.startsWith('infer.llama3.2_3b '))).toMatch(/^infer\.llama3\.2_3b\s+0\s+-\s+-\s+0\s+0\s+0$/);
  });

  it('shows the results history per model over the last days (--days), or none with --days 0', async () => {
    // The first test's llama3.2:3b job finished; its row reaches the history store shortly after (the API drains).
    await waitFor(async () => ((await c.get('/v1/history/stats?by=model', bearer)).body.groups ?? []).some((g: any) => g.key === 'llama3.2:3b'), { what: 'the job in the history' });
    const r = await hydraStatus(['--days', '2'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    const at = lines.indexOf('HISTORY, LAST 2 DAYS (results history)');
    expect(at, r.stdout).toBeGreaterThan(0);
    expect(lines[at + 1]).toMatch(/^MODEL\s+JOBS\s+COMPLETED\s+FAILED\s+CANCELLED\s+TOKENS OUT\s+P50\s+P95$/);
    expect(lines.slice(at).find((l) => l.startsWith('llama3.2:3b '))).toMatch(/^llama3\.2:3b\s+1\s+1\s+0\s+0\s+\d+\s+\d+(ms|s)\s+\d+(ms|s)$/);
    const none = await hydraStatus(['--days', '0'], env);
    expect(none.code).toBe(0);
    expect(none.stdout).not.toContain('HISTORY');
    const bad = await hydraStatus(['--days', 'week'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--days must be a whole number of days');
  });

  it('--watch without a terminal prints a frame per interval until Ctrl-C', async () => {
    const frames = (s: string) => s.split('\n').filter((l) => l.startsWith(`hydra ${c.url}`)).length;
    const r = await hydraStatus(['--watch', '--interval', '0.3'], env, (s) => frames(s) >= 2);
    expect(frames(r.stdout)).toBeGreaterThanOrEqual(2);
    expect(r.stdout).not.toContain('\x1b[');
    expect(r.code).toBe(0);
  });

  it('says which URL it could not reach, and exits 1', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const r = await hydraStatus([], { HYDRA_URL: url });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`^hydra status: cannot reach the Hydra API at ${url.replace(/\./g, '\\.')} \\(ECONNREFUSED\\)`));
    expect(r.stderr).toContain('HYDRA_URL');
  });

  it('says to set HYDRA_API_KEY on a 401, and that a wrong one was refused', async () => {
    const none = await hydraStatus([], { HYDRA_URL: c.url });
    expect(none.code).toBe(1);
    expect(none.stderr).toBe(`hydra status: the Hydra API at ${c.url} needs an API key (401): set HYDRA_API_KEY to one of the API's API_KEYS\n`);
    const wrong = await hydraStatus(['--watch'], { HYDRA_URL: c.url, HYDRA_API_KEY: 'not-the-key-0123456789' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('refused the key in HYDRA_API_KEY (401)');
    expect(wrong.stderr).not.toContain('not-the-key');
  });

  it('refuses a bad --interval with a usage error', async () => {
    const r = await hydraStatus(['--watch', '--interval', 'soon'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--interval must be a number of seconds');
  });
});
