// `hydra up` on a machine without redis-server, non-interactive: the exact install command without the flag, a real install with it.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { commandLine, planInstall, systemHost } from '../apps/cli/install-redis.js';
import { HYDRA_BIN } from './support/cluster.js';
import { freePort, waitFor } from './support/wait.js';

/** A PATH without redis-server: a directory holding only node and sh (redis-server and node share /usr/bin here). */
function barePath(dir: string): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  symlinkSync(process.execPath, join(bin, 'node'));
  symlinkSync('/bin/sh', join(bin, 'sh'));
  return bin;
}

function hydraUp(args: string[], env: NodeJS.ProcessEnv) {
  // stdin a pipe that stays open: a command that read it would wait forever, so a quick exit shows it never did.
  const proc = spawn(process.execPath, [HYDRA_BIN, 'up', ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  const seen = { out: '' };
  proc.stdout.on('data', (d: Buffer) => (seen.out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (seen.out += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { proc, seen, exited };
}

describe('hydra up without redis-server, no terminal', () => {
  const dirs: string[] = [];
  const procs: ReturnType<typeof hydraUp>[] = [];
  afterAll(async () => {
    for (const p of procs) {
      if (p.proc.exitCode === null && p.proc.signalCode === null) {
        p.proc.kill('SIGTERM');
        await p.exited;
      }
    }
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('without --install-redis: exits 1 at once with the exact install command and the hint, never reading stdin', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hydra-noredis-'));
    dirs.push(dir);
    const PATH = barePath(dir);
    const t0 = Date.now();
    const run = hydraUp([], { PATH, REDIS_URL: `redis://127.0.0.1:${await freePort()}`, HYDRA_DATA_DIR: join(dir, 'data') });
    procs.push(run);
    const code = await Promise.race([run.exited, new Promise((r) => setTimeout(() => r('still running'), 20_000))]);
    expect(code, run.seen.out).toBe(1);
    expect(Date.now() - t0).toBeLessThan(20_000);
    const { out } = run.seen;
    expect(out).toMatch(/no Redis answers at redis:\/\/127\.0\.0\.1:\d+ and redis-server is not installed/);
    expect(out).not.toContain('[y/N]');
    const host = systemHost({ PATH });
    const plan = planInstall(host);
    if (plan) expect(out).toContain(`Install it:  ${commandLine(plan, host)}\n`);
    if (plan?.managerPath) expect(out).toContain('hydra up --install-redis');
    // This machine and CI: Debian, as root.
    if (host.isRoot() && plan?.manager === 'apt-get') expect(out).toContain('Install it:  apt-get update && apt-get install -y redis-server\n');
  }, 30_000);

  it('with --install-redis as root on Debian: runs apt-get, finds /usr/bin/redis-server off PATH, starts the cluster', async (ctx) => {
    if (process.getuid?.() !== 0) return ctx.skip('not root: installing with apt-get needs root (CI runs as root)');
    if (!planInstall(systemHost({ PATH: '' }))?.managerPath || planInstall(systemHost({ PATH: '' }))?.manager !== 'apt-get') {
      return ctx.skip('no apt-get on this machine');
    }
    // Only where the install is a no-op: the test must not put a second redis-server beside one built from source.
    const dpkg = spawnSync('dpkg-query', ['-W', '-f', '${Status}', 'redis-server'], { encoding: 'utf8' });
    if (!dpkg.stdout?.includes('install ok installed')) return ctx.skip("redis-server is not installed from Debian's package here");

    const dir = mkdtempSync(join(tmpdir(), 'hydra-installredis-'));
    dirs.push(dir);
    const port = await freePort();
    const redisPort = await freePort();
    const run = hydraUp(['--install-redis', '--no-worker'], {
      PATH: barePath(dir),
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      QUEUE_PREFIX: `{inst${Date.now().toString(36)}}`,
      PORT: String(port),
      HYDRA_DATA_DIR: join(dir, 'data'),
    });
    procs.push(run);
    await waitFor(() => run.seen.out.includes('Hydra is up') || run.proc.exitCode !== null, { timeoutMs: 150_000, what: `"Hydra is up" (output so far:\n${run.seen.out})` });
    const { out } = run.seen;
    expect(out, out).toContain('Hydra is up');
    expect(out).toContain('redis: installing redis-server: apt-get update && apt-get install -y redis-server');
    // apt-get's own output, streamed through.
    expect(out).toMatch(/redis-server is already the newest version|Setting up redis-server/);
    expect(out).toContain('redis: installed /usr/bin/redis-server');
    expect(out).toContain(`redis: started a private redis-server on redis://127.0.0.1:${redisPort}`);
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ok: true, redis: 'up' });
    expect(readFileSync(join(dir, 'data', 'logs', 'redis.log'), 'utf8')).toMatch(/Ready to accept connections/);

    run.proc.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    // The private redis-server stopped with it.
    const refused = () =>
      new Promise<boolean>((r) => {
        const s = connect(redisPort, '127.0.0.1');
        s.once('connect', () => (s.destroy(), r(false)));
        s.once('error', () => r(true));
      });
    await waitFor(refused, { timeoutMs: 10_000, what: 'the private redis-server to stop' });
  }, 180_000);
});
