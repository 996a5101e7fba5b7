// A Redis Sentinel group on loopback for failover tests and benches: a master, its replicas and sentinels, each a real
// redis-server / redis-sentinel process on a free port with its own temp dir; SIGKILL, restart and ask who is master.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { askRedis as ask, quickRedis as quick } from './redis-server.js';
import { freePort, waitFor } from './wait.js';

/** Why a Sentinel group cannot run here (no redis-sentinel binary), or null when it can. */
export function sentinelMissing(): string | null {
  const r = spawnSync('redis-sentinel', ['--version'], { encoding: 'utf8', timeout: 5000 });
  if (r.error || r.status !== 0) return 'redis-sentinel is not installed (Debian: apt-get install -y redis-sentinel)';
  return null;
}

export interface GroupOptions {
  /** Master group name. */
  name?: string;
  replicas?: number;
  sentinels?: number;
  quorum?: number;
  /** Return once the processes answer, before the sentinels have found each other (call `waitForHealthy` before a failover). */
  noWait?: boolean;
  /** Sentinel's down-after-milliseconds: how long a master must be unreachable before a failover (ms). */
  downAfterMs?: number;
  failoverTimeoutMs?: number;
}

export interface DataNode {
  port: number;
  /** Whether its process runs now. */
  running(): boolean;
  /** Start again on the same port, as a replica of `master` (a returning node should not come back as a master). */
  start(master?: { port: number }): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Freeze / thaw the process (a replica that falls behind: its connections stay open, it reads nothing). */
  pause(): void;
  resume(): void;
}

export interface SentinelGroup {
  name: string;
  sentinelPorts: number[];
  nodes: DataNode[];
  /** Env that points Hydra at this group (REDIS_URL gives nothing but a placeholder host: no password here). */
  env: Record<string, string>;
  /** The master according to the first sentinel that answers. */
  master(): Promise<number>;
  node(port: number): DataNode;
  /** A client of one data node (no retries), for test-side checks. */
  client(port: number): Redis;
  /** A client of one sentinel. */
  sentinel(i?: number): Redis;
  /** Until every sentinel agrees the master is not `oldPort`; the new master's port. */
  waitForSwitch(oldPort: number, timeoutMs?: number): Promise<number>;
  /** Until every sentinel sees the quorum, its peers and every running replica as healthy. */
  waitForHealthy(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}


function proc(cmd: string, args: string[], log: string[]): ChildProcess {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const keep = (d: Buffer) => {
    log.push(d.toString());
    if (log.length > 400) log.splice(0, log.length - 400);
  };
  p.stdout?.on('data', keep);
  p.stderr?.on('data', keep);
  return p;
}

const stopProc = async (p: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> => {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill(signal);
  await exited;
};

export async function startSentinelGroup(o: GroupOptions = {}): Promise<SentinelGroup> {
  const name = o.name ?? 'mymaster';
  const dir = mkdtempSync(join(tmpdir(), 'hydra-sentinel-'));
  const log: string[] = [];
  const dataPorts: number[] = [];
  for (let i = 0; i <= (o.replicas ?? 1); i++) dataPorts.push(await freePort());
  const sentinelPorts: number[] = [];
  for (let i = 0; i < (o.sentinels ?? 3); i++) sentinelPorts.push(await freePort());
  const sentinelProcs: ChildProcess[] = [];

  const nodes: DataNode[] = dataPorts.map((port) => {
    let p: ChildProcess | undefined;
    const nodeDir = join(dir, `redis-${port}`);
    mkdirSync(nodeDir);
    const node: DataNode = {
      port,
      running: () => p !== undefined && p.exitCode === null && p.signalCode === null,
      async start(master) {
        // No persistence: what a replica holds is what replication gave it; the experiment is about that.
        const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', nodeDir, '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'];
        if (master) args.push('--replicaof', '127.0.0.1', String(master.port));
        p = proc('redis-server', args, log);
        await waitFor(() => ask(port, async (r) => (await r.ping()) === 'PONG').catch(() => false), { timeoutMs: 10_000, intervalMs: 20, what: `redis-server on ${port}` });
      },
      kill: (signal = 'SIGKILL') => stopProc(p, signal),
      pause: () => void p?.kill('SIGSTOP'),
      resume: () => void p?.kill('SIGCONT'),
    };
    return node;
  });
  const group: SentinelGroup = {
    name,
    sentinelPorts,
    nodes,
    env: { REDIS_URL: `redis://${name}`, REDIS_SENTINELS: sentinelPorts.map((p) => `127.0.0.1:${p}`).join(','), REDIS_SENTINEL_NAME: name },
    async master() {
      for (const port of sentinelPorts) {
        const addr = await ask(port, (r) => r.call('SENTINEL', 'get-master-addr-by-name', name) as Promise<[string, string] | null>).catch(() => null);
        if (addr) return Number(addr[1]);
      }
      throw new Error('no sentinel answers');
    },
    node: (port) => {
      const n = nodes.find((x) => x.port === port);
      if (!n) throw new Error(`no data node on port ${port}`);
      return n;
    },
    client: quick,
    sentinel: (i = 0) => quick(sentinelPorts[i]!),
    async waitForSwitch(oldPort, timeoutMs = 30_000) {
      return waitFor(
        async () => {
          const seen = await Promise.all(sentinelPorts.map((port) => ask(port, (r) => r.call('SENTINEL', 'get-master-addr-by-name', name) as Promise<[string, string]>).then((a) => Number(a[1]))));
          return seen.every((p) => p !== oldPort && p === seen[0]) ? seen[0] : null;
        },
        { timeoutMs, intervalMs: 50, what: `the sentinels to agree on a master other than ${oldPort}\n${log.join('').slice(-3000)}` },
      );
    },
    async waitForHealthy(timeoutMs = 30_000) {
      const replicas = () => nodes.filter((n) => n.running()).length - 1;
      await waitFor(
        async () => {
          for (const port of sentinelPorts) {
            const ok = await ask(port, async (r) => {
              await r.call('SENTINEL', 'CKQUORUM', name); // throws unless the quorum and a majority are reachable
              const peers = (await r.call('SENTINEL', 'SENTINELS', name)) as unknown[];
              const reps = ((await r.call('SENTINEL', 'REPLICAS', name)) as string[][]).map(pairs);
              const healthy = reps.filter((x) => x.flags === 'slave' && x['master-link-status'] === 'ok');
              return peers.length === sentinelPorts.length - 1 && healthy.length >= replicas();
            });
            if (!ok) return false;
          }
          return true;
        },
        { timeoutMs, intervalMs: 100, what: `sentinel group ${name} to be healthy\n${log.join('').slice(-3000)}` },
      );
    },
    async stop() {
      await Promise.all([...sentinelProcs.map((p) => stopProc(p, 'SIGKILL')), ...nodes.map((n) => n.kill('SIGKILL'))]);
      rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    const [first, ...rest] = nodes;
    await first!.start();
    await Promise.all(rest.map((n) => n.start(first)));
    for (const port of sentinelPorts) {
      // Sentinel rewrites its config file (it records peers and epochs there), so each gets its own.
      const conf = join(dir, `sentinel-${port}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${name} 127.0.0.1 ${first!.port} ${o.quorum ?? Math.floor(sentinelPorts.length / 2) + 1}`,
          `sentinel down-after-milliseconds ${name} ${o.downAfterMs ?? 1000}`,
          `sentinel failover-timeout ${name} ${o.failoverTimeoutMs ?? 3000}`,
          `sentinel parallel-syncs ${name} 1`,
          '',
        ].join('\n'),
      );
      sentinelProcs.push(proc('redis-sentinel', [conf], log));
    }
    if (o.noWait) await waitFor(() => group.master().catch(() => false), { timeoutMs: 10_000, intervalMs: 20, what: 'a sentinel to answer' });
    else await group.waitForHealthy();
  } catch (e) {
    await group.stop();
    throw e;
  }
  return group;
}

/** SENTINEL REPLICAS answers each instance as a flat [field, value, ...] list. */
function pairs(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
}
