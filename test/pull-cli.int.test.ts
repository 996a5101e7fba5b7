// `hydra pull` as a user runs it: a child process against a real API and workers in front of simulated Ollama nodes
// (real downloads in simulated time). Progress per node without a terminal and on one (a pty through script(1)), the
// model on the nodes afterwards, and the exit code and message when a node fails, the key is wrong or the API is away.
import { spawn, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { humanBytes } from '../apps/cli/pull-progress.js';
import { HYDRA_BIN, startCluster, type TestCluster } from './support/cluster.js';
import { freePort } from './support/wait.js';

const KEY = 'pull-cli-test-key-0123456789';
/** The simulated node's sizes are GiB; the CLI shows bytes in powers of 1000, as Ollama's does (2 GiB = 2.1 GB). */
const shown = (gib: number) => humanBytes(gib * 2 ** 30);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** script(1) from util-linux: runs a command on a pseudo-terminal, so the CLI sees a TTY. */
const HAS_SCRIPT = spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0;
const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Run `hydra pull ...` to its end; with `tty`, on a pseudo-terminal (stdout and stderr then arrive together). */
function hydraPull(args: string[], env: Record<string, string>, opts: { tty?: boolean } = {}): Promise<Run> {
  const argv = [HYDRA_BIN, 'pull', ...args];
  const [cmd, cmdArgs] = opts.tty ? ['script', ['-qec', [process.execPath, ...argv].map(shellQuote).join(' '), '/dev/null']] : [process.execPath, argv];
  return new Promise((resolve, reject) => {
    const proc = spawn(cmd as string, cmdArgs as string[], { env: { ...process.env, HYDRA_API_KEY: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = { stdout: '', stderr: '' };
    const kill = setTimeout(() => proc.kill('SIGKILL'), 45_000);
    proc.stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
    proc.on('error', reject);
    proc.on('exit', (code) => {
      clearTimeout(kill);
      resolve({ code, ...out });
    });
  });
}

/** A plain progress line: node, status, and the percent and bytes when the node reported layer sizes. */
const LINE = /^(gpu-[ab])  (.+?)(?:  +(\d+)%  (\S+ \S+)\/(\S+ \S+))?$/;

describe('hydra pull', () => {
  let c: TestCluster;
  let env: Record<string, string>;
  const hasModel = (node: string, model: string) => c.waitForNode(node, (n) => n.models_available.includes(model), 10_000);

  beforeAll(async () => {
    c = await startCluster({ API_KEYS: KEY });
    // 2 GB at 4000 MB/s: about half a second of download, reported in several steps.
    const pullable = [
      { name: 'llama3.2:3b', sizeGb: 2 },
      { name: 'qwen3:0.6b', sizeGb: 0.5 },
    ];
    await c.simWorker('gpu-a', { vramGb: 24, models: [{ name: 'qwen3:4b', sizeGb: 2.5 }], pullable, pullMBps: 4000, tokensPerSecond: 500, loadMsPerGb: 0 });
    await c.simWorker('gpu-b', { vramGb: 8, models: [{ name: 'qwen3:4b', sizeGb: 2.5 }], pullable, pullMBps: 4000, tokensPerSecond: 500, loadMsPerGb: 0 });
    env = { HYDRA_URL: c.url, HYDRA_API_KEY: KEY };
  }, 60_000);
  afterAll(async () => c?.stop());

  it('without a terminal: one line per status change of each node, then the model is on every Ollama node; exit 0', async () => {
    const r = await hydraPull(['llama3.2:3b'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('\x1b[');
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^pulling llama3\.2:3b on (gpu-a, gpu-b|gpu-b, gpu-a)$/);
    expect(lines.at(-1)).toMatch(/^pulled llama3\.2:3b on (gpu-a, gpu-b|gpu-b, gpu-a)$/);
    for (const node of ['gpu-a', 'gpu-b']) {
      const mine = lines.flatMap((l) => {
        const m = LINE.exec(l);
        return m && m[1] === node ? [{ status: m[2]!, percent: m[3], done: m[4], total: m[5] }] : [];
      });
      const statuses = mine.map((x) => x.status.replace(/^pulling [0-9a-f]{12}$/, 'pulling <layer>'));
      // The weights layer reported several steps, the small layers one each; each status is shown once.
      expect(statuses[0]).toBe('pulling manifest');
      expect(statuses.slice(-3)).toEqual(['verifying sha256 digest', 'writing manifest', 'success']);
      expect(statuses.slice(1, -3).every((s) => s === 'pulling <layer>')).toBe(true);
      expect(new Set(mine.map((x) => x.status)).size).toBe(mine.length);
      // The weights layer is nearly all of it: 0% at its start, the model's whole size once every layer is in.
      expect(mine[1]).toMatchObject({ percent: '0', done: '0 B', total: shown(2) });
      expect(mine.at(-1)).toMatchObject({ status: 'success', percent: '100', done: shown(2), total: shown(2) });
    }
    await hasModel('gpu-a', 'llama3.2:3b');
    await hasModel('gpu-b', 'llama3.2:3b');
  });

  it.skipIf(!HAS_SCRIPT)('on a terminal: the --node named only, one line redrawn in place through the percents; exit 0', async () => {
    const r = await hydraPull(['qwen3:0.6b', '--node', 'gpu-b'], env, { tty: true });
    const out = r.stdout.replace(/\r\n/g, '\n');
    expect(r.code, out).toBe(0);
    // Redrawn: up one line, cleared, the node's line again, at every progress step.
    const frames = out.split('\x1b[1A\r\x1b[2K').slice(1).map((f) => f.slice(0, f.indexOf('\n')));
    expect(frames.length).toBeGreaterThan(5);
    expect(frames.every((f) => f.startsWith('gpu-b  '))).toBe(true);
    const percents = frames.flatMap((f) => /^gpu-b  pulling [0-9a-f]{12}\s+(\d+)%/.exec(f)?.[1] ?? []).map(Number);
    expect(percents.some((p) => p > 0 && p < 100)).toBe(true);
    expect(frames.at(-1)).toBe(`gpu-b  success  100%  ${shown(0.5)}/${shown(0.5)}`);
    expect(out).toContain('pulled qwen3:0.6b on gpu-b\n');
    expect(out).not.toContain('gpu-a');
    await hasModel('gpu-b', 'qwen3:0.6b');
    expect((await c.nodes()).find((n) => n.id === 'gpu-a').models_available).not.toContain('qwen3:0.6b');
  });

  it('a model the registry lacks fails on the node: the node shown failed, the API’s error, exit 1', async () => {
    const r = await hydraPull(['nope:1b', '--node', 'gpu-a'], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^gpu-a {2}failed$/m);
    expect(r.stdout).not.toContain('pulled');
    expect(r.stderr).toMatch(/^hydra pull: pull "nope:1b" failed on node\(s\) gpu-a \(.*pull model manifest: file does not exist\)\n$/);
  });

  it('an unknown --node, a wrong key, an API that does not answer, no model: the reason, exit 1 (2 for usage)', async () => {
    const node = await hydraPull(['llama3.2:3b', '--node', 'gpu-zz'], env);
    expect(node.code).toBe(1);
    expect(node.stderr).toMatch(new RegExp(`^hydra pull: the Hydra API at ${c.url.replace(/\./g, '\\.')} answered 400 to POST /api/pull: unknown node\\(s\\) gpu-zz; registered: `));

    const wrong = await hydraPull(['llama3.2:3b'], { HYDRA_URL: c.url, HYDRA_API_KEY: 'not-the-key-0123456789' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toBe(`hydra pull: the Hydra API at ${c.url} refused the key in HYDRA_API_KEY (401): set HYDRA_API_KEY to one of the API's API_KEYS\n`);

    const url = `http://127.0.0.1:${await freePort()}`;
    const away = await hydraPull(['llama3.2:3b'], { HYDRA_URL: url });
    expect(away.code).toBe(1);
    expect(away.stderr).toMatch(/^hydra pull: cannot reach the Hydra API at .* \(ECONNREFUSED\).*HYDRA_URL/);

    const usage = await hydraPull([], env);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('usage: hydra pull <model> [--node ID]...');
  });
});
