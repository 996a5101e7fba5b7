// The node-sim command line as a real child process: it prints where it listens, serves, stops on SIGTERM, and rejects bad flags with exit code 2.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../test/support/wait.js';
import { parseSimArgs, simAddresses } from './main.js';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));

function start(args: string[]): { out: () => string; err: () => string; exit: Promise<number | null>; kill: (s: NodeJS.Signals) => void } {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exit = once(child, 'exit').then(([code]) => code as number | null);
  return { out: () => out, err: () => err, exit, kill: (s) => child.kill(s) };
}

describe('node-sim command line', () => {
  it('prints its URL, serves the Ollama API and exits 0 on SIGTERM', async () => {
    const p = start(['--port', '0', '--vram-gb', '24', '--models', 'qwen3:14b=9.3,llama3.1:70b=43', '--fast', '--log-level', 'warn']);
    const line = await waitFor(() => /simulated Ollama node listening on (http:\/\/\S+) \(vram 24 GB, models: qwen3:14b 9.3 GB, llama3.1:70b 43 GB, fast mode\)/.exec(p.out()), {
      timeoutMs: 20_000,
      what: 'the listening line',
    });
    const tags = (await (await fetch(`${line[1]}/api/tags`)).json()) as { models: Array<{ name: string }> };
    expect(tags.models.map((m) => m.name)).toEqual(['qwen3:14b', 'llama3.1:70b']);
    p.kill('SIGTERM');
    expect(await p.exit).toBe(0);
  });

  it('runs --count nodes in one process, one listening line each, every one serving', async () => {
    const p = start(['--count', '3', '--port', '0', '--vram-gb', '8', '--models', 'a=1', '--fast', '--log-level', 'warn']);
    const urls = await waitFor(
      () => {
        const found = [...p.out().matchAll(/^simulated Ollama node listening on (http:\/\/\S+) /gm)].map((m) => m[1]!);
        return found.length === 3 ? found : null;
      },
      { timeoutMs: 20_000, what: 'three listening lines' },
    );
    expect(new Set(urls).size).toBe(3);
    for (const u of urls) expect(((await (await fetch(`${u}/api/tags`)).json()) as { models: unknown[] }).models).toHaveLength(1);
    p.kill('SIGTERM');
    expect(await p.exit).toBe(0);
  });

  it('names a bad flag and exits with code 2', async () => {
    const p = start(['--vram-gb', 'lots', '--models', 'a=1']);
    expect(await p.exit).toBe(2);
    expect(p.err()).toContain('--vram-gb must be a positive number of GB, got "lots"');
  });

  it('parses every flag', () => {
    expect(parseSimArgs(['--port', '11434', '--host', '0.0.0.0', '--vram-gb', '8', '--models', 'a=1', '--parallel', '2', '--tokens-per-second', '50', '--load-ms-per-gb', '0'])).toEqual({
      port: 11434,
      host: '0.0.0.0',
      vramGb: 8,
      models: [{ name: 'a', sizeGb: 1 }],
      parallel: 2,
      tokensPerSecond: 50,
      loadMsPerGb: 0,
      fast: false,
      logLevel: 'info',
      help: false,
      count: 1,
      spreadHosts: false,
    });
    expect(parseSimArgs(['--vram-gb', '8', '--models', 'a=1:tools+thinking', '--pullable', 'b=2:vision,c=3', '--pull-mbps', '5000', '--disk-gb', '100'])).toMatchObject({
      models: [{ name: 'a', sizeGb: 1, capabilities: ['completion', 'tools', 'thinking'] }],
      pullable: [{ name: 'b', sizeGb: 2, capabilities: ['completion', 'vision'] }, { name: 'c', sizeGb: 3 }],
      pullMBps: 5000,
      diskGb: 100,
    });
    expect(() => parseSimArgs(['--vram-gb', '8', '--models', 'a=1', '--pullable', 'b'])).toThrow(/--pullable: bad model entry "b"/);
    expect(() => parseSimArgs(['--vram-gb', '8', '--models', 'a=1', '--pull-mbps', '0'])).toThrow(/--pull-mbps must be a positive number of MB\/s/);
    expect(() => parseSimArgs(['--vram-gb', '8'])).toThrow(/--models is required/);
    expect(() => parseSimArgs(['--vram-gb', '8', '--models', 'a'])).toThrow(/--models: bad model entry "a"/);
    expect(() => parseSimArgs(['--vram-gb', '8', '--models', 'a=1', '--parallel', '0'])).toThrow(/--parallel must be an integer >= 1/);
    expect(() => parseSimArgs(['--vram-gb', '8', '--models', 'a=1', '--nope'])).toThrow(/--nope/);
  });

  it('places --count nodes on consecutive ports, or on consecutive loopback addresses with --spread-hosts', () => {
    const base = ['--vram-gb', '8', '--models', 'a=1'];
    expect(simAddresses(parseSimArgs([...base, '--count', '3', '--port', '11434']))).toEqual([
      { host: '127.0.0.1', port: 11434 },
      { host: '127.0.0.1', port: 11435 },
      { host: '127.0.0.1', port: 11436 },
    ]);
    expect(simAddresses(parseSimArgs([...base, '--count', '2']))).toEqual([
      { host: '127.0.0.1', port: 0 },
      { host: '127.0.0.1', port: 0 },
    ]);
    expect(simAddresses(parseSimArgs([...base, '--count', '3', '--spread-hosts', '--host', '127.0.0.2', '--port', '11434']))).toEqual([
      { host: '127.0.0.2', port: 11434 },
      { host: '127.0.0.3', port: 11434 },
      { host: '127.0.0.4', port: 11434 },
    ]);
    expect(simAddresses(parseSimArgs(base))).toEqual([{ host: '127.0.0.1', port: 0 }]);
    expect(() => parseSimArgs([...base, '--count', '0'])).toThrow('--count must be an integer 1-1000, got "0"');
    expect(() => parseSimArgs([...base, '--count', '2.5'])).toThrow('--count must be an integer 1-1000, got "2.5"');
    expect(() => parseSimArgs([...base, '--count', '10', '--port', '65530'])).toThrow('--port 65530 with --count 10 needs ports up to 65539, past 65535');
    expect(() => parseSimArgs([...base, '--count', '3', '--spread-hosts'])).toThrow('--spread-hosts needs --host set to an IPv4 loopback address to start from, e.g. --host 127.0.0.2, got none');
    expect(() => parseSimArgs([...base, '--count', '3', '--spread-hosts', '--host', '0.0.0.0'])).toThrow('got "0.0.0.0"');
    expect(() => parseSimArgs([...base, '--count', '200', '--spread-hosts', '--host', '127.0.0.100'])).toThrow('--spread-hosts from 127.0.0.100 with --count 200 runs past 127.0.0.254');
  });

  it('parses the realism flags, with the names the scheduling benchmark uses, and names a bad one', () => {
    const realism = ['--ram-gb', '128', '--num-ctx', '8192', '--kv-cache-type', 'q8_0', '--max-queue', '16', '--batch-exponent', '0.75', '--cpu-speed-ratio', '0.2', '--load-fixed-ms', '1500', '--load-ms-per-gb', '100', '--time-scale', '50'];
    expect(parseSimArgs(['--vram-gb', '24', '--models', 'a=1', '--parallel', '2', ...realism])).toEqual({
      vramGb: 24,
      models: [{ name: 'a', sizeGb: 1 }],
      parallel: 2,
      ramGb: 128,
      numCtx: 8192,
      kvCacheType: 'q8_0',
      maxQueue: 16,
      batchExponent: 0.75,
      cpuSpeedRatio: 0.2,
      loadFixedMs: 1500,
      loadMsPerGb: 100,
      timeScale: 50,
      fast: false,
      logLevel: 'info',
      help: false,
      count: 1,
      spreadHosts: false,
    });
    const bad = (flag: string, value: string): (() => unknown) => () => parseSimArgs(['--vram-gb', '8', '--models', 'a=1', `${flag}=${value}`]);
    expect(bad('--batch-exponent', '1.5')).toThrow('--batch-exponent must be a number > 0 and <= 1, got "1.5"');
    expect(bad('--cpu-speed-ratio', '0')).toThrow('--cpu-speed-ratio must be a number > 0 and <= 1, got "0"');
    expect(bad('--time-scale', '-2')).toThrow('--time-scale must be a positive number, got "-2"');
    expect(bad('--num-ctx', '2.5')).toThrow('--num-ctx must be an integer >= 4 (tokens), got "2.5"');
    expect(bad('--max-queue', 'x')).toThrow('--max-queue must be an integer >= 0, got "x"');
    expect(bad('--ram-gb', '-1')).toThrow('--ram-gb must be a number of GB >= 0, got "-1"');
    expect(bad('--load-fixed-ms', '')).toThrow('--load-fixed-ms must be a number of ms >= 0, got ""');
    expect(bad('--kv-cache-type', 'q5_1')).toThrow('--kv-cache-type must be one of f16, q8_0, q4_0, got "q5_1"');
  });
});
