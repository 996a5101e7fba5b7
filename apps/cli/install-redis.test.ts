// Installing redis-server for `hydra up`: the manager per os-release, the rights to run it, the exact command, the steps run.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { commandLine, ensureRedisServer, parseOsRelease, planInstall, rightsFor, type Host } from './install-redis.js';

const FIXTURES = join(import.meta.dirname, '../../test/fixtures/os-release');
const osRelease = (name: string) => readFileSync(join(FIXTURES, name), 'utf8');

interface FakeOpts {
  platform?: NodeJS.Platform;
  release?: string;
  root?: boolean;
  /** Absolute paths of the executables this fake machine holds. */
  files?: string[];
  /** Whether `sudo -n true` succeeds. */
  passwordless?: boolean;
  /** Exit status per step (its argv joined); 0 when not listed. */
  exits?: Record<string, number>;
  /** Files that appear once a step has run (the package's binaries). */
  installs?: string[];
  pathDirs?: string[];
}

function fakeHost(o: FakeOpts) {
  const files = new Set(o.files ?? []);
  const ran: { argv: string[]; stdin: string }[] = [];
  const checks: string[][] = [];
  const host: Host = {
    platform: o.platform ?? 'linux',
    osRelease: () => o.release,
    isRoot: () => o.root ?? false,
    pathDirs: o.pathDirs ?? ['/home/u/bin', '/usr/bin', '/bin'],
    find: (name, dirs) => dirs.map((d) => `${d}/${name}`).find((p) => files.has(p)),
    succeeds: (argv) => {
      checks.push(argv);
      return argv.join(' ') === 'sudo -n true' && (o.passwordless ?? false);
    },
    run: async (argv, stdin) => {
      ran.push({ argv, stdin });
      const code = o.exits?.[argv.join(' ')] ?? 0;
      if (code === 0) for (const f of o.installs ?? []) files.add(f);
      return code;
    },
  };
  return { host, ran, checks };
}

describe('parseOsRelease', () => {
  it('reads ID and ID_LIKE, quoted or not, skipping comments', () => {
    expect(parseOsRelease(osRelease('debian-12'))).toEqual({ id: 'debian', like: [] });
    expect(parseOsRelease(osRelease('linuxmint-21'))).toEqual({ id: 'linuxmint', like: ['ubuntu', 'debian'] });
    expect(parseOsRelease(osRelease('rocky-9'))).toEqual({ id: 'rocky', like: ['rhel', 'centos', 'fedora'] });
    expect(parseOsRelease(osRelease('opensuse-tumbleweed'))).toEqual({ id: 'opensuse-tumbleweed', like: ['opensuse', 'suse'] });
  });
  it('falls back to "linux" when there is no ID', () => {
    expect(parseOsRelease('NAME=thing\n')).toEqual({ id: 'linux', like: [] });
  });
});

describe('planInstall', () => {
  const all = ['/usr/bin/apt-get', '/usr/bin/dnf', '/usr/bin/yum', '/usr/bin/zypper', '/sbin/apk'];
  const table: [string, string[], string | undefined, string][] = [
    // fixture, executables present, manager, command as root
    ['debian-12', ['/usr/bin/apt-get'], 'apt-get', 'apt-get update && apt-get install -y redis-server'],
    ['ubuntu-24.04', ['/usr/bin/apt-get'], 'apt-get', 'apt-get update && apt-get install -y redis-server'],
    ['linuxmint-21', ['/usr/bin/apt-get'], 'apt-get', 'apt-get update && apt-get install -y redis-server'],
    ['fedora-40', ['/usr/bin/dnf'], 'dnf', 'dnf install -y redis'],
    ['rocky-9', ['/usr/bin/dnf', '/usr/bin/yum'], 'dnf', 'dnf install -y redis'],
    ['centos-7', ['/usr/bin/yum'], 'yum', 'yum install -y redis'],
    ['alpine-3.20', ['/sbin/apk'], 'apk', 'apk add redis'],
    ['opensuse-tumbleweed', ['/usr/bin/zypper'], 'zypper', 'zypper --non-interactive install redis'],
    ['arch', all, undefined, ''],
  ];
  it.each(table)('%s → %s', (fixture, present, manager, line) => {
    const { host } = fakeHost({ release: osRelease(fixture), files: present, root: true });
    const plan = planInstall(host);
    expect(plan?.manager).toBe(manager);
    if (plan) {
      expect(plan.managerPath).toBe(present.find((p) => p.endsWith(`/${plan.manager}`)));
      expect(commandLine(plan, host)).toBe(line);
    }
  });
  it('finds the manager in the standard directories when PATH lacks them', () => {
    const { host } = fakeHost({ release: osRelease('debian-12'), files: ['/usr/bin/apt-get'], pathDirs: ['/tmp/only-node'] });
    expect(planInstall(host)?.managerPath).toBe('/usr/bin/apt-get');
  });
  it('still names the family manager when its binary is missing (the printed command is right for the system)', () => {
    const { host } = fakeHost({ release: osRelease('rocky-9'), files: [] });
    expect(planInstall(host)).toMatchObject({ manager: 'dnf', managerPath: undefined });
  });
  it('macOS: brew, without root or sudo', () => {
    const { host } = fakeHost({ platform: 'darwin', files: ['/opt/homebrew/bin/brew'] });
    const plan = planInstall(host)!;
    expect(plan).toMatchObject({ manager: 'brew', needsRoot: false, managerPath: '/opt/homebrew/bin/brew' });
    expect(commandLine(plan, host)).toBe('brew install redis');
  });
  it('no os-release, or another platform: no plan', () => {
    expect(planInstall(fakeHost({ release: undefined }).host)).toBeUndefined();
    expect(planInstall(fakeHost({ platform: 'win32' }).host)).toBeUndefined();
  });
});

describe('rightsFor and commandLine', () => {
  const debian = (o: FakeOpts) => fakeHost({ release: osRelease('debian-12'), ...o, files: ['/usr/bin/apt-get', ...(o.files ?? [])] });
  it('root runs it directly, and the command has no sudo', () => {
    const { host, checks } = debian({ root: true });
    const plan = planInstall(host)!;
    expect(rightsFor(plan, host, { terminal: false })).toBe('direct');
    expect(checks).toEqual([]);
  });
  it('not root: passwordless sudo, else none without a terminal, else sudo asking its password after a yes', () => {
    const yes = debian({ files: ['/usr/bin/sudo'], passwordless: true });
    expect(rightsFor(planInstall(yes.host)!, yes.host, { terminal: false })).toBe('sudo');
    expect(yes.checks).toEqual([['sudo', '-n', 'true']]);
    const no = debian({ files: ['/usr/bin/sudo'], passwordless: false });
    expect(rightsFor(planInstall(no.host)!, no.host, { terminal: false })).toBe('none');
    expect(rightsFor(planInstall(no.host)!, no.host, { terminal: true })).toBe('sudo-password');
    const noSudo = debian({});
    expect(rightsFor(planInstall(noSudo.host)!, noSudo.host, { terminal: true })).toBe('none');
    expect(commandLine(planInstall(no.host)!, no.host)).toBe('sudo apt-get update && sudo apt-get install -y redis-server');
  });
  it('brew needs no rights', () => {
    const { host, checks } = fakeHost({ platform: 'darwin', files: ['/usr/local/bin/brew'] });
    expect(rightsFor(planInstall(host)!, host, { terminal: false })).toBe('direct');
    expect(checks).toEqual([]);
  });
});

describe('ensureRedisServer', () => {
  const base = { say: () => {}, where: 'redis://127.0.0.1:6379' };
  const debian = (o: FakeOpts) => fakeHost({ release: osRelease('debian-12'), ...o, files: ['/usr/bin/apt-get', ...(o.files ?? [])] });

  it('redis-server on PATH: nothing to install, nothing asked', async () => {
    const { host, ran } = debian({ root: true, files: ['/usr/bin/redis-server'] });
    const ask = () => Promise.reject(new Error('asked'));
    expect(await ensureRedisServer(host, { ...base, install: true, ask })).toEqual({ ok: true, bin: '/usr/bin/redis-server', installed: false });
    expect(ran).toEqual([]);
  });

  it('without the flag and without a terminal: the exact command and the --install-redis hint, nothing run', async () => {
    const { host, ran } = debian({ files: ['/usr/bin/sudo'] });
    const r = await ensureRedisServer(host, { ...base, install: false });
    expect(r.ok).toBe(false);
    const msg = r.ok ? '' : r.message;
    expect(msg).toContain('no Redis answers at redis://127.0.0.1:6379 and redis-server is not installed');
    expect(msg).toContain('Install it:  sudo apt-get update && sudo apt-get install -y redis-server');
    expect(msg).toContain('hydra up --install-redis');
    expect(msg).toContain('npm start -- --install-redis');
    expect(ran).toEqual([]);
  });

  it('--install-redis as root: runs each step with no stdin, then finds redis-server off PATH', async () => {
    const lines: string[] = [];
    const { host, ran } = debian({ root: true, pathDirs: ['/tmp/only-node'], installs: ['/usr/bin/redis-server'] });
    const r = await ensureRedisServer(host, { ...base, say: (l) => lines.push(l), install: true });
    expect(r).toEqual({ ok: true, bin: '/usr/bin/redis-server', installed: true });
    expect(ran).toEqual([
      { argv: ['/usr/bin/apt-get', 'update'], stdin: 'ignore' },
      { argv: ['/usr/bin/apt-get', 'install', '-y', 'redis-server'], stdin: 'ignore' },
    ]);
    expect(lines).toEqual(['redis: installing redis-server: apt-get update && apt-get install -y redis-server', 'redis: installed /usr/bin/redis-server']);
  });

  it('--install-redis with passwordless sudo: sudo -n for each step', async () => {
    const { host, ran } = fakeHost({ release: osRelease('fedora-40'), files: ['/usr/bin/dnf', '/usr/bin/sudo'], passwordless: true, installs: ['/usr/bin/redis-server'] });
    expect((await ensureRedisServer(host, { ...base, install: true })).ok).toBe(true);
    expect(ran).toEqual([{ argv: ['sudo', '-n', '/usr/bin/dnf', 'install', '-y', 'redis'], stdin: 'ignore' }]);
  });

  it('--install-redis without rights: prints the exact command with sudo, runs nothing', async () => {
    const { host, ran } = debian({ files: ['/usr/bin/sudo'], passwordless: false });
    const r = await ensureRedisServer(host, { ...base, install: true });
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.message).toMatch(/needs root: this user is not root and sudo asks for a password\.\n {2}Run it yourself: {2}sudo apt-get update && sudo apt-get install -y redis-server\n/);
    expect(ran).toEqual([]);
  });

  it('a failing step stops there and says which', async () => {
    const { host, ran } = debian({ root: true, exits: { '/usr/bin/apt-get update': 100 } });
    const r = await ensureRedisServer(host, { ...base, install: true });
    expect(r.ok ? '' : r.message).toContain('`apt-get update` failed (exit 100)');
    expect(ran).toHaveLength(1);
  });

  it('installed but nowhere to be found: says so', async () => {
    const { host } = debian({ root: true });
    const r = await ensureRedisServer(host, { ...base, install: true });
    expect(r.ok ? '' : r.message).toMatch(/succeeded but no redis-server is found on PATH or in .*\/usr\/sbin/);
  });

  it('the prompt: a yes installs (sudo may ask its password on the terminal), a no prints the command', async () => {
    const questions: string[] = [];
    const yes = debian({ files: ['/usr/bin/sudo'], installs: ['/usr/sbin/redis-server'] });
    const r = await ensureRedisServer(yes.host, { ...base, install: false, ask: async (q) => (questions.push(q), true) });
    expect(r).toEqual({ ok: true, bin: '/usr/sbin/redis-server', installed: true });
    expect(questions).toEqual(['redis-server is not installed. Install it now with `sudo apt-get update && sudo apt-get install -y redis-server`? [y/N] ']);
    expect(yes.ran.map((x) => x.stdin)).toEqual(['inherit', 'inherit']);
    expect(yes.ran[0]!.argv).toEqual(['sudo', '/usr/bin/apt-get', 'update']);

    const no = debian({ root: true });
    const r2 = await ensureRedisServer(no.host, { ...base, install: false, ask: async () => false });
    expect(r2.ok ? '' : r2.message).toContain('Install it:  apt-get update && apt-get install -y redis-server');
    expect(no.ran).toEqual([]);
  });

  it('no known package manager: never asks, says to install by hand', async () => {
    const { host } = fakeHost({ release: osRelease('arch'), root: true });
    const ask = () => Promise.reject(new Error('asked'));
    const r = await ensureRedisServer(host, { ...base, install: false, ask });
    expect(r.ok ? '' : r.message).toContain('no known one on linux (ID=arch)');
    const r2 = await ensureRedisServer(host, { ...base, install: true });
    expect(r2.ok ? '' : r2.message).toContain('hydra cannot install it here: no known package manager on linux (ID=arch)');
  });

  it('macOS without Homebrew: points at brew.sh', async () => {
    const { host } = fakeHost({ platform: 'darwin' });
    const r = await ensureRedisServer(host, { ...base, install: true });
    expect(r.ok ? '' : r.message).toMatch(/Homebrew \(brew\) is not installed: see https:\/\/brew\.sh\.\n {2}Then: {2}brew install redis/);
  });
});
