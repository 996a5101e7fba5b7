// A private PostgreSQL server for tests and benches: Debian's binaries (/usr/lib/postgresql/<ver>/bin), a fresh initdb in a
// temp dir, on a free loopback port with its unix socket in that dir; stop and start it again (outages), then remove it.
// PostgreSQL refuses to run as root: as root (CI) every server command runs as the `postgres` user the package creates.
import { execFile, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort, waitFor } from './wait.js';

const run = promisify(execFile);

/** The directory holding initdb, pg_ctl and postgres: the newest Debian version, else the PATH's. Null when none. */
export function postgresBinDir(): string | null {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(root, versions[0], 'bin');
  }
  const r = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? join(r.stdout.trim(), '..') : null;
}

/** The user the server runs as when this process is root (uid, gid), or null when not root. */
function serverUser(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const r = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (r.status !== 0 || g.status !== 0) return null;
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/** Why a PostgreSQL server cannot run here, or null when it can. */
export function postgresMissing(): string | null {
  if (!postgresBinDir()) return 'PostgreSQL is not installed (Debian: apt-get install -y postgresql)';
  if (process.getuid?.() === 0 && !serverUser()) return 'running as root and there is no `postgres` user to run the server as (the Debian package creates it)';
  return null;
}

export interface PrivatePostgres {
  port: number;
  /** postgres://hydra@127.0.0.1:<port>/hydra (trust auth on loopback: no password). */
  url: string;
  /** Stop (fast shutdown: open connections are cut) and wait until it is down. */
  stop(): Promise<void>;
  /** Start again on the same port and data. */
  start(): Promise<void>;
  running(): boolean;
  destroy(): Promise<void>;
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = postgresBinDir();
  if (!bin) throw new Error(postgresMissing() ?? 'PostgreSQL is not installed');
  const user = serverUser();
  const dir = mkdtempSync(join(tmpdir(), 'hydra-pg-'));
  if (user) chownSync(dir, user.uid, user.gid);
  const data = join(dir, 'data');
  const port = await freePort();
  // As root: the command runs as postgres (runuser ships with util-linux, in every Debian).
  const as = (cmd: string, args: string[]) => (user ? run('runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]) : run(join(bin, cmd), args));
  await as('initdb', ['-D', data, '-U', 'hydra', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  // Durability off: a test server. Sockets only in the temp dir and on loopback.
  const opts = `-p ${port} -k ${dir} -h 127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
  let up = false;
  const admin = `postgres://hydra@127.0.0.1:${port}/postgres`;
  const s: PrivatePostgres = {
    port,
    url: `postgres://hydra@127.0.0.1:${port}/hydra`,
    async start() {
      await as('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-o', opts, '-w', '-t', '30', 'start']);
      up = true;
      await waitFor(
        async () => {
          const c = new pg.Client({ connectionString: admin });
          try {
            await c.connect();
            return true;
          } finally {
            await c.end().catch(() => undefined);
          }
        },
        { timeoutMs: 15_000, what: `PostgreSQL on port ${port}` },
      );
    },
    async stop() {
      if (!up) return;
      await as('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop']);
      up = false;
    },
    running: () => up,
    async destroy() {
      await s.stop().catch(() => as('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']).catch(() => undefined));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await s.start();
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  await c.query('CREATE DATABASE hydra');
  await c.end();
  return s;
}

/**
 * The history stores a test file runs against: SQLite always, PostgreSQL when its binaries are installed, and always
 * under CI=true (where a missing server then fails the file, naming what to install, rather than skip it).
 */
export function historyDialects(file: string): readonly ('sqlite' | 'postgres')[] {
  const missing = postgresMissing();
  const inCi = /^(1|true)$/i.test(process.env.CI ?? '');
  if (missing && !inCi) {
    process.stderr.write(`${file}: the PostgreSQL half is skipped: ${missing}\n`);
    return ['sqlite'];
  }
  return ['sqlite', 'postgres'];
}

/** A private PostgreSQL for the `postgres` half of a historyDialects test; null for `sqlite`. Throws what to install. */
export async function postgresFor(dialect: 'sqlite' | 'postgres'): Promise<PrivatePostgres | null> {
  if (dialect === 'sqlite') return null;
  const missing = postgresMissing();
  if (missing) throw new Error(`${missing}; CI must install it (.ci/run: apt-get install -y postgresql)`);
  return startPrivatePostgres();
}
