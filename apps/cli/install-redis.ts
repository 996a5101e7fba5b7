// redis-server for `hydra up` on a machine without it: the platform's package manager, whether we may run it, the exact command.
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';
import { z } from 'zod';

/**
 * Where package managers put binaries. Searched for the package manager itself, and for redis-server after an install
 * (a non-root PATH often lacks /usr/sbin; Homebrew's prefix may not be on PATH yet). Not searched before an install:
 * "not on PATH" is what `hydra up` has always meant by "not installed".
 */
export const STANDARD_BIN_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin', '/opt/homebrew/bin', '/home/linuxbrew/.linuxbrew/bin'];

export const PackageManager = { Apt: 'apt-get', Dnf: 'dnf', Yum: 'yum', Zypper: 'zypper', Apk: 'apk', Brew: 'brew' } as const;
export type PackageManager = (typeof PackageManager)[keyof typeof PackageManager];

/** Each manager's steps, one argv each, run in order and never through a shell; all of them non-interactive. */
const STEPS: Record<PackageManager, string[][]> = {
  'apt-get': [
    ['apt-get', 'update'],
    ['apt-get', 'install', '-y', 'redis-server'],
  ],
  dnf: [['dnf', 'install', '-y', 'redis']],
  yum: [['yum', 'install', '-y', 'redis']],
  zypper: [['zypper', '--non-interactive', 'install', 'redis']],
  apk: [['apk', 'add', 'redis']],
  brew: [['brew', 'install', 'redis']],
};

/** os-release IDs (ID, then each of ID_LIKE) to the managers to try, first found wins (dnf replaced yum on RHEL 8+). */
const FAMILIES: { ids: string[]; managers: PackageManager[] }[] = [
  { ids: ['debian', 'ubuntu'], managers: ['apt-get'] },
  { ids: ['fedora', 'rhel', 'centos', 'rocky', 'almalinux', 'ol', 'amzn'], managers: ['dnf', 'yum'] },
  { ids: ['suse', 'opensuse', 'opensuse-leap', 'opensuse-tumbleweed', 'sles'], managers: ['zypper'] },
  { ids: ['alpine'], managers: ['apk'] },
];

export interface InstallPlan {
  manager: PackageManager;
  steps: string[][];
  /** Every manager but Homebrew needs root (brew refuses it). */
  needsRoot: boolean;
  /** The manager's own binary, when found on PATH or in STANDARD_BIN_DIRS. */
  managerPath: string | undefined;
}

/** What the install touches on this machine; the system one is systemHost(), tests pass a fake. */
export interface Host {
  platform: NodeJS.Platform;
  /** The text of /etc/os-release (or /usr/lib/os-release); undefined when neither exists. */
  osRelease(): string | undefined;
  isRoot(): boolean;
  /** PATH's directories, in order. */
  pathDirs: string[];
  /** The absolute path of an executable file `name` in the first of `dirs` that holds one. */
  find(name: string, dirs: string[]): string | undefined;
  /** Whether a quiet check (`sudo -n true`) exits 0; never reads stdin. */
  succeeds(argv: string[]): boolean;
  /** Runs one step, its output streamed to ours; stdin the terminal only when `stdin` is 'inherit'. Resolves its exit status. */
  run(argv: string[], stdin: 'inherit' | 'ignore'): Promise<number>;
}

const OsReleaseSchema = z.object({
  ID: z.string().trim().toLowerCase().min(1).catch('linux'),
  ID_LIKE: z.string().trim().toLowerCase().catch(''),
});

/** The ID and ID_LIKE of an os-release file (KEY=value lines, values optionally quoted, # comments). */
export function parseOsRelease(text: string): { id: string; like: string[] } {
  const kv: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    kv[m[1]!] = m[2]!.replace(/^(["'])(.*)\1$/, '$2');
  }
  const r = OsReleaseSchema.parse(kv);
  return { id: r.ID, like: r.ID_LIKE.split(/\s+/).filter(Boolean) };
}

const pathOf = (host: Host, name: string) => host.find(name, [...host.pathDirs, ...STANDARD_BIN_DIRS]);

/** The package manager that installs redis-server here, or undefined on a system we do not know. */
export function planInstall(host: Host): InstallPlan | undefined {
  const plan = (manager: PackageManager, managerPath: string | undefined): InstallPlan => ({ manager, steps: STEPS[manager], needsRoot: manager !== 'brew', managerPath });
  if (host.platform === 'darwin') return plan('brew', pathOf(host, 'brew'));
  if (host.platform !== 'linux') return undefined;
  const text = host.osRelease();
  if (text === undefined) return undefined;
  const { id, like } = parseOsRelease(text);
  for (const name of [id, ...like]) {
    const family = FAMILIES.find((f) => f.ids.includes(name));
    if (!family) continue;
    for (const m of family.managers) {
      const p = pathOf(host, m);
      if (p) return plan(m, p);
    }
    return plan(family.managers[0]!, undefined);
  }
  return undefined;
}

/** How the plan can run: directly (root, or brew), through passwordless sudo, through sudo asking its password on the terminal, or not at all. */
export type Rights = 'direct' | 'sudo' | 'sudo-password' | 'none';

export function rightsFor(plan: InstallPlan, host: Host, opts: { terminal: boolean }): Rights {
  if (!plan.needsRoot || host.isRoot()) return 'direct';
  if (!pathOf(host, 'sudo')) return 'none';
  if (host.succeeds(['sudo', '-n', 'true'])) return 'sudo';
  // Only when a person at the terminal said yes to the prompt (which showed the sudo): sudo asks them for the password.
  return opts.terminal ? 'sudo-password' : 'none';
}

/** The plan as one shell line a person can paste: with sudo when it needs root and we are not root. */
export function commandLine(plan: InstallPlan, host: Pick<Host, 'isRoot'>): string {
  const sudo = plan.needsRoot && !host.isRoot();
  return plan.steps.map((s) => (sudo ? ['sudo', ...s] : s).join(' ')).join(' && ');
}

export type Ensured = { ok: true; bin: string; installed: boolean } | { ok: false; message: string };

export interface EnsureOptions {
  /** `--install-redis`: install without asking, never reading stdin. */
  install: boolean;
  /** Asks a yes/no question on the terminal; absent without a terminal on stdin and stdout. */
  ask?: (question: string) => Promise<boolean>;
  say: (line: string) => void;
  /** Where no Redis answered, for the message (a redacted REDIS_URL). */
  where: string;
}

const HINT = '  or let hydra install it:  hydra up --install-redis   (from a checkout: npm start -- --install-redis)\n';

/**
 * The redis-server to start: the one on PATH, else one installed now (with --install-redis, or after a yes at the
 * prompt). When it cannot be had, the message says the exact command that would install it.
 */
export async function ensureRedisServer(host: Host, opts: EnsureOptions): Promise<Ensured> {
  const onPath = host.find('redis-server', host.pathDirs);
  if (onPath) return { ok: true, bin: onPath, installed: false };
  const plan = planInstall(host);
  const line = plan ? commandLine(plan, host) : undefined;
  const head = `hydra up: no Redis answers at ${opts.where} and redis-server is not installed.\n`;
  const byHand = line
    ? `  Install it:  ${line}\n`
    : `  Install it with this system's package manager (the package is "redis" or "redis-server"; no known one on ${describe(host)}).\n`;
  let install = opts.install;
  let terminal = false;
  if (!install && plan?.managerPath && opts.ask) {
    install = await opts.ask(`redis-server is not installed. Install it now with \`${line}\`? [y/N] `);
    terminal = install;
  }
  if (!install) return { ok: false, message: `${head}${byHand}${plan?.managerPath ? HINT : ''}  or point REDIS_URL at a running Redis.\n` };

  if (!plan) return { ok: false, message: `${head}  hydra cannot install it here: no known package manager on ${describe(host)}.\n${byHand}` };
  if (!plan.managerPath) {
    const what = plan.manager === 'brew' ? 'Homebrew (brew) is not installed: see https://brew.sh' : `${plan.manager} is not found`;
    return { ok: false, message: `${head}  hydra cannot install it: ${what}.\n  Then:  ${line}\n` };
  }
  const rights = rightsFor(plan, host, { terminal });
  if (rights === 'none') {
    return {
      ok: false,
      message: `${head}  Installing it needs root: this user is not root and sudo ${pathOf(host, 'sudo') ? 'asks for a password' : 'is not installed'}.\n  Run it yourself:  ${line}\n  then start again:  hydra up\n`,
    };
  }
  opts.say(`redis: installing redis-server: ${line}`);
  for (const step of plan.steps) {
    const [cmd, ...args] = step;
    const exe = cmd === plan.manager ? plan.managerPath : cmd!;
    const argv = rights === 'direct' ? [exe, ...args] : rights === 'sudo' ? ['sudo', '-n', exe, ...args] : ['sudo', exe, ...args];
    const code = await host.run(argv, rights === 'sudo-password' ? 'inherit' : 'ignore');
    if (code !== 0) {
      return { ok: false, message: `hydra up: \`${step.join(' ')}\` failed (exit ${code}), so redis-server is not installed; see its output above.\n  Fix that, or run it yourself:  ${line}\n` };
    }
  }
  // Where the package put it, PATH or not (Debian's /usr/bin, a non-root PATH without /usr/sbin, Homebrew's prefix).
  const bin = pathOf(host, 'redis-server');
  if (!bin) {
    return { ok: false, message: `hydra up: \`${line}\` succeeded but no redis-server is found on PATH or in ${STANDARD_BIN_DIRS.join(', ')}.\n  Put it on PATH, or point REDIS_URL at a running Redis.\n` };
  }
  opts.say(`redis: installed ${bin}`);
  return { ok: true, bin, installed: true };
}

function describe(host: Host): string {
  const text = host.platform === 'linux' ? host.osRelease() : undefined;
  return text === undefined ? host.platform : `${host.platform} (ID=${parseOsRelease(text).id})`;
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** This machine. Package managers run with the standard directories on PATH (apt-get runs dpkg, which runs its scripts). */
export function systemHost(env: NodeJS.ProcessEnv): Host {
  const pathDirs = (env.PATH ?? '').split(delimiter).filter(Boolean);
  const childEnv = { ...env, PATH: [...pathDirs, ...STANDARD_BIN_DIRS.filter((d) => !pathDirs.includes(d))].join(delimiter), DEBIAN_FRONTEND: 'noninteractive' };
  const host: Host = {
    platform: process.platform,
    osRelease: () => {
      for (const f of ['/etc/os-release', '/usr/lib/os-release']) {
        try {
          return readFileSync(f, 'utf8');
        } catch {
          /* the next one */
        }
      }
      return undefined;
    },
    isRoot: () => process.getuid?.() === 0,
    pathDirs,
    find: (name, dirs) => dirs.map((d) => join(d, name)).find(isExecutable),
    succeeds: (argv) => {
      const exe = pathOf(host, argv[0]!);
      return exe !== undefined && spawnSync(exe, argv.slice(1), { stdio: 'ignore', env: childEnv, timeout: 10_000 }).status === 0;
    },
    run: (argv, stdin) =>
      new Promise((resolve) => {
        const exe = argv[0]!.startsWith('/') ? argv[0]! : (pathOf(host, argv[0]!) ?? argv[0]!);
        const p = spawn(exe, argv.slice(1), { stdio: [stdin, 'inherit', 'inherit'], env: childEnv });
        p.on('error', () => resolve(127));
        p.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
      }),
  };
  return host;
}

/** A [y/N] question on the terminal; Ctrl-C or end of input is a no. */
export function askOnTerminal(question: string): Promise<boolean> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    let done = false;
    const finish = (yes: boolean) => {
      if (done) return;
      done = true;
      rl.close();
      resolve(yes);
    };
    rl.on('SIGINT', () => {
      process.stdout.write('\n');
      finish(false);
    });
    rl.on('close', () => finish(false));
    rl.question(question, (a) => finish(/^\s*y(es)?\s*$/i.test(a)));
  });
}
