// `hydra run`, `hydra jobs`, `hydra job`, `hydra cancel` as a user runs them against a small simulated cluster: `run`
// inside tmux (a real terminal) streams tokens and Ctrl-C cancels the job on its node and exits 130; without a
// terminal, --json is NDJSON events and the prompt may come on stdin; the --json of the others parses; exit codes.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hydra } from '../libs/client/index.js';
import { HYDRA_BIN, startCluster, type TestCluster } from './support/cluster.js';
import { waitFor } from './support/wait.js';

const MODEL = 'qwen3:4b';
const HAS_TMUX = spawnSync('tmux', ['-V'], { stdio: 'ignore' }).status === 0;
const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `hydra <args>` without a terminal to its end, `input` on stdin. */
function hydra(args: string[], env: Record<string, string>, input?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [HYDRA_BIN, ...args], { env: { ...process.env, HYDRA_API_KEY: '', ...env }, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    const out = { stdout: '', stderr: '' };
    const kill = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    proc.stdout!.on('data', (d: Buffer) => (out.stdout += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (out.stderr += d.toString()));
    if (input !== undefined) proc.stdin!.end(input);
    proc.on('error', reject);
    proc.on('exit', (code) => {
      clearTimeout(kill);
      resolve({ code, ...out });
    });
  });
}

describe('hydra run / jobs / job / cancel', () => {
  let c: TestCluster;
  let env: Record<string, string>;
  let h: Hydra;
  const dir = mkdtempSync(join(tmpdir(), 'hydra-cli-run-'));
  // A tmux server of this test's own (its own socket), killed at the end.
  const socket = `hydra-cli-run-${process.pid}`;
  const tmux = (...args: string[]) => spawnSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });

  beforeAll(async () => {
    c = await startCluster();
    // 20 tokens/s: a 400-token answer runs for many seconds, time to see it stream and to Ctrl-C it.
    await c.simWorker('n1', { vramGb: 16, models: [{ name: MODEL, sizeGb: 2.5 }], tokensPerSecond: 20, loadMsPerGb: 0 });
    env = { HYDRA_URL: c.url };
    h = new Hydra({ url: c.url, apiKey: '' });
  });
  afterAll(async () => {
    if (HAS_TMUX) tmux('kill-server');
    await c?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(!HAS_TMUX && process.env.CI !== 'true')('in a terminal (tmux): shows the tokens as they arrive; Ctrl-C cancels the job on its node and exits 130', async () => {
    const exitFile = join(dir, 'exit');
    const cmd = [process.execPath, HYDRA_BIN, 'run', '-m', MODEL, '-o', 'num_predict=400', '-o', 'sim_answer_tokens=400', 'tell me a long story'].map(shellQuote).join(' ');
    const script = `env HYDRA_URL=${shellQuote(c.url)} HYDRA_API_KEY= HYDRA_ENV_FILE=off ${cmd}; echo $? > ${shellQuote(exitFile)}; sleep 600`;
    expect(tmux('new-session', '-d', '-s', 'run', '-x', '200', '-y', '50', script).status).toBe(0);
    const pane = () => tmux('capture-pane', '-p', '-J', '-t', 'run').stdout;
    // Tokens appear as they arrive: the start of the answer, then more of it, while the job is still running.
    const start = 'simulated answer from qwen3:4b to: tell me a long story';
    const first = await waitFor(() => (pane().includes(start) ? pane() : null), { timeoutMs: 20_000, what: `the answer's first tokens in the pane (pane: ${pane()})` });
    await waitFor(() => pane().replace(/\s+/g, ' ').length > first.replace(/\s+/g, ' ').length + 20, { timeoutMs: 10_000, what: 'more tokens in the pane' });
    const [job] = await h.jobs({ state: 'active', limit: 1 });
    expect(job).toMatchObject({ model: MODEL, node_id: 'n1' });
    const abortedBefore = c.sims[0]!.state().aborted;

    expect(tmux('send-keys', '-t', 'run', 'C-c').status).toBe(0);
    const code = await waitFor(() => {
      try {
        return readFileSync(exitFile, 'utf8').trim() || null;
      } catch {
        return null;
      }
    }, { timeoutMs: 20_000, what: `hydra run to exit after Ctrl-C (pane: ${pane()})` });
    expect(code).toBe('130');
    // The API confirmed before the exit: the job ended cancelled, aborted on the simulated node.
    expect(await h.job(job!.id)).toMatchObject({ state: 'failed', error: { code: 'cancelled' } });
    expect(c.sims[0]!.state().aborted).toBeGreaterThan(abortedBefore);
    expect(pane()).toMatch(new RegExp(`job ${job!.id} was cancelled`));
    // The terminal as the user saw it, kept for a look (git ignores test-artifacts/).
    mkdirSync(join(import.meta.dirname, '..', 'test-artifacts'), { recursive: true });
    writeFileSync(join(import.meta.dirname, '..', 'test-artifacts', 'cli-run-pane.txt'), pane());
  });

  it('without a terminal: the answer on stdout (the prompt from stdin too); --json is one event per line', async () => {
    const plain = await hydra(['run', '-m', MODEL, 'say hi'], env);
    expect(plain.stderr).toBe('');
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/^simulated answer from qwen3:4b to: say hi lorem ipsum.*\n$/);

    const piped = await hydra(['run', '-m', MODEL, '--type', 'chat'], env, 'from stdin please\n');
    expect(piped.code).toBe(0);
    expect(piped.stdout).toMatch(/^simulated answer from qwen3:4b to: from stdin please/);

    const embed = await hydra(['run', '-m', MODEL, '--type', 'embed', 'vector please'], env);
    expect(embed.code).toBe(0);
    const vectors = JSON.parse(embed.stdout) as number[][];
    expect(vectors).toHaveLength(1);
    expect(vectors[0]!.length).toBeGreaterThan(10);

    const json = await hydra(['run', '--json', '-m', MODEL, 'json please'], env);
    expect(json.code).toBe(0);
    const events = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; id: string; text?: string; result?: { response: string } });
    expect(events[0]).toMatchObject({ event: 'submitted', id: expect.any(String), state: 'waiting' });
    const done = events.at(-1)!;
    expect(done.event).toBe('done');
    expect(events.filter((e) => e.event === 'token').map((e) => e.text).join('')).toBe(done.result!.response);
  });

  it('a failed job exits 1 with the API’s message and code; usage errors exit 2', async () => {
    const unknown = await hydra(['run', '-m', 'nope:1b', 'x'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^hydra run: the Hydra API at .* answered (404|422) to POST \/v1\/jobs: .*\[(model_not_found|unsatisfiable)\]\n$/);
    const usage = await hydra(['run', 'no model'], env);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('usage: hydra run -m MODEL');
    const badType = await hydra(['run', '-m', MODEL, '--type', 'poem', 'x'], env);
    expect(badType.code).toBe(2);
  });

  it('jobs, job, cancel: tables and views, --json that parses, exit 1 for unknown or ended jobs', async () => {
    const done = await h.run({ type: 'generate', model: MODEL, prompt: 'listed', cache: false });
    const table = await hydra(['jobs', '--limit', '5'], env);
    expect(table.code).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+STATE\s+TYPE\s+MODEL\s+PRI\s+NODE\s+CREATED\s+FINISHED$/);
    expect(lines.some((l) => l.startsWith(done.id) && /\scompleted\s+generate\s+qwen3:4b\s+5\s+n1\s/.test(l))).toBe(true);

    const list = await hydra(['jobs', '--json', '--state', 'completed', '--limit', '3'], env);
    expect(list.code).toBe(0);
    const parsed = JSON.parse(list.stdout) as { jobs: { id: string; state: string }[] };
    expect(parsed.jobs.length).toBeGreaterThan(0);
    expect(parsed.jobs.length).toBeLessThanOrEqual(3);
    expect(parsed.jobs.every((j) => j.state === 'completed')).toBe(true);

    const one = await hydra(['job', done.id, '--json'], env);
    expect(one.code).toBe(0);
    expect(JSON.parse(one.stdout)).toMatchObject({ id: done.id, state: 'completed', result: { response: done.result!.response } });
    const human = await hydra(['job', done.id], env);
    expect(human.stdout).toMatch(new RegExp(`^id:\\s+${done.id}\\nstate:\\s+completed\\n`));
    expect(human.stdout).toContain(done.result!.response!);

    const missing = await hydra(['job', 'no-such-job', '--json'], env);
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stdout)).toMatchObject({ error: { code: 'not_found', status: 404, retryable: false } });
    expect(missing.stderr).toMatch(/no job with id no-such-job.*\[not_found\]/);

    const ended = await hydra(['cancel', done.id, '--json'], env);
    expect(ended.code).toBe(1);
    expect(JSON.parse(ended.stdout)).toMatchObject({ error: { code: 'conflict', status: 409 } });

    // A job waiting behind a long one is removed by the cancel.
    const long = (await h.submit({ type: 'generate', model: MODEL, prompt: 'long', cache: false, options: { num_predict: 400, sim_answer_tokens: 400 } })).id;
    const queued: string[] = [];
    for (let i = 0; i < 5; i++) queued.push((await h.submit({ type: 'generate', model: MODEL, prompt: `queued ${i}`, cache: false, options: { num_predict: 400, sim_answer_tokens: 400 } })).id);
    const waiting = await waitFor(async () => (await h.jobs({ state: 'waiting', limit: 10 })).find((j) => queued.includes(j.id)), { what: 'a waiting job' });
    const cancel = await hydra(['cancel', waiting.id, '--json'], env);
    expect(cancel.code).toBe(0);
    expect(JSON.parse(cancel.stdout)).toEqual({ id: waiting.id, state: 'cancelled' });
    expect((await h.job(waiting.id)).state).toBe('cancelled');
    const human2 = await hydra(['cancel', long], env);
    expect(human2.code).toBe(0);
    expect(human2.stdout).toMatch(new RegExp(`^(cancelling ${long}: its node is aborting the request|cancelled ${long})\\n$`));
    for (const id of queued) await h.cancel(id).catch(() => undefined);

    const usage = await hydra(['job'], env);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('usage: hydra job ID [--json]');
  });
});
