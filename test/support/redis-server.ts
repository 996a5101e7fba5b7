// A private redis-server for tests that stop, restart or reconfigure Redis (outages, AOF, passwords, TLS): never the shared one.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { freePort, waitFor } from './wait.js';

export interface PrivateRedisOptions {
  /** AOF with fsync every second, as `hydra up` and docker-compose run it. */
  aof?: boolean;
  password?: string;
  /** Serve TLS only (no plain port), with these PEM files. */
  tls?: { cert: string; key: string; ca: string };
}

export interface PrivateRedis {
  port: number;
  dir: string;
  /** URL with the password, if any (redis:// or rediss://). */
  url: string;
  output(): string;
  /** Start (or start again, on the same port and data dir). Resolves once it answers PING. */
  start(): Promise<void>;
  /** Stop with a signal (SIGTERM: Redis fsyncs the AOF and exits) and wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Freeze / thaw the process: a hung Redis whose connections stay open. */
  pause(): void;
  resume(): void;
  /** A throwaway client (same credentials/TLS), for test-side checks. */
  client(extra?: RedisOptions): Redis;
  destroy(): Promise<void>;
}

export async function startPrivateRedis(opts: PrivateRedisOptions = {}): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'hydra-private-redis-'));
  const args = ['--bind', '127.0.0.1', '--dir', dir, '--save', '', '--maxmemory-policy', 'noeviction'];
  args.push(...(opts.aof ? ['--appendonly', 'yes', '--appendfsync', 'everysec'] : ['--appendonly', 'no']));
  if (opts.password) {
    // Through a config file, so the password is not on the process command line (visible in ps).
    writeFileSync(join(dir, 'auth.conf'), `requirepass "${opts.password}"\n`, { mode: 0o600 });
  }
  if (opts.tls) {
    args.push('--port', '0', '--tls-port', String(port), '--tls-cert-file', opts.tls.cert, '--tls-key-file', opts.tls.key, '--tls-ca-cert-file', opts.tls.ca, '--tls-auth-clients', 'no');
  } else {
    args.push('--port', String(port));
  }
  const auth = opts.password ? `:${encodeURIComponent(opts.password)}@` : '';
  const url = `${opts.tls ? 'rediss' : 'redis'}://${auth}127.0.0.1:${port}`;
  let proc: ChildProcess | undefined;
  let out = '';

  const client = (extra: RedisOptions = {}): Redis => {
    const r = new Redis(port, '127.0.0.1', {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      ...(opts.password ? { password: opts.password } : {}),
      ...(opts.tls ? { tls: { ca: readPem(opts.tls.ca) } } : {}),
      ...extra,
    });
    r.on('error', () => {});
    return r;
  };

  const s: PrivateRedis = {
    port,
    dir,
    url,
    output: () => out,
    async start() {
      const conf = opts.password ? [join(dir, 'auth.conf')] : [];
      proc = spawn('redis-server', [...conf, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
      await waitFor(
        async () => {
          if (proc?.exitCode !== null) throw new Error(`redis-server exited: ${out.slice(-2000)}`);
          const r = client();
          try {
            await r.connect();
            return (await r.ping()) === 'PONG';
          } catch {
            return false;
          } finally {
            r.disconnect();
          }
        },
        { timeoutMs: 10_000, intervalMs: 20, what: `private redis-server on port ${port}` },
      );
    },
    async stop(signal = 'SIGTERM') {
      const p = proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      if (signal !== 'SIGCONT') p.kill('SIGCONT'); // a paused Redis cannot act on SIGTERM
      p.kill(signal);
      await exited;
    },
    pause: () => void proc?.kill('SIGSTOP'),
    resume: () => void proc?.kill('SIGCONT'),
    client,
    async destroy() {
      await s.stop('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await s.start();
  return s;
}

const readPem = (path: string): Buffer => readFileSync(path);

/** Whether this redis-server was built with TLS (Debian's is): one without it rejects the tls-port directive. */
export function redisHasTls(): boolean {
  const r = spawnSync('redis-server', ['--port', '0', '--tls-port', '0', '--save', ''], { encoding: 'utf8', timeout: 5000 });
  return r.status !== null && /not to listen anywhere|Configured to not listen/i.test(`${r.stdout}${r.stderr}`);
}

/** A self-signed CA and a server certificate for 127.0.0.1 / localhost, made with openssl; null without openssl. */
export function makeTlsFiles(dir: string): { ca: string; cert: string; key: string } | null {
  if (spawnSync('openssl', ['version']).status !== 0) return null;
  const f = (n: string) => join(dir, n);
  writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n');
  const steps: string[][] = [
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=hydra-test-ca', '-keyout', f('ca.key'), '-out', f('ca.pem')],
    ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', f('server.key'), '-out', f('server.csr')],
    ['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('ext.cnf'), '-out', f('server.pem')],
  ];
  for (const a of steps) {
    const r = spawnSync('openssl', a, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${a.slice(0, 2).join(' ')} failed: ${r.stderr}`);
  }
  return { ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key') };
}

/** A short-lived client for one question to the server (or sentinel) at `port`: fails fast, never reconnects. */
export const quickRedis = (port: number): Redis => {
  const r = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: true, connectTimeout: 1000, commandTimeout: 2000 });
  r.on('error', () => {});
  return r;
};

/** Ask the server at `port` one thing on a connection of its own, closed after. */
export async function askRedis<T>(port: number, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = quickRedis(port);
  try {
    await r.connect();
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

/** Parse one MONITOR line's arguments (`"evalsha" "ab\"c" "\x00"`): quoted, with C-style escapes. */
export function parseMonitorArgs(line: string): string[] {
  const args: string[] = [];
  const escapes: Record<string, string> = { n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b', '"': '"', '\\': '\\' };
  for (let i = line.indexOf('"'); i >= 0 && i < line.length; i = line.indexOf('"', i)) {
    let s = '';
    for (i++; i < line.length && line[i] !== '"'; i++) {
      if (line[i] !== '\\') s += line[i];
      else if (line[i + 1] === 'x') (s += String.fromCharCode(parseInt(line.slice(i + 2, i + 4), 16))), (i += 3);
      else s += escapes[line[++i]!] ?? line[i];
    }
    args.push(s);
    i++;
  }
  return args;
}

/**
 * Watch every command the server at `url` runs (MONITOR) on a plain socket, calling `onCommand` with its arguments and
 * where it came from (`lua` for a call made by a script, else the client's `ip:port`).
 * Not ioredis's monitor(): it misses the switch to monitoring when the OK and the first monitored lines arrive in one
 * read, and throws "Command queue state error" as an uncaught exception (seen in CI on a busy Redis).
 */
export async function monitorRedis(url: string, onCommand: (args: string[], source: string) => void): Promise<{ close(): void }> {
  const u = new URL(url);
  const socket = net.connect(Number(u.port || 6379), u.hostname);
  let buffered = '';
  let ready = false;
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.setEncoding('latin1');
    socket.on('connect', () => {
      const auth = u.password ? `AUTH ${decodeURIComponent(u.username || 'default')} ${decodeURIComponent(u.password)}\r\n` : '';
      socket.write(`${auth}MONITOR\r\n`);
    });
    let oks = u.password ? 2 : 1;
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      for (let nl = buffered.indexOf('\r\n'); nl >= 0; nl = buffered.indexOf('\r\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 2);
        if (line.startsWith('-')) return reject(new Error(`MONITOR on ${u.host}: ${line.slice(1)}`));
        if (!ready) {
          if (line === '+OK' && --oks === 0) (ready = true), resolve();
          continue;
        }
        const open = line.indexOf('[');
        const source = line.slice(line.indexOf(' ', open) + 1, line.indexOf(']', open));
        onCommand(parseMonitorArgs(line), source);
      }
    });
  });
  socket.on('error', () => {});
  return { close: () => socket.destroy() };
}
