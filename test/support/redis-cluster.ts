// A Redis Cluster on loopback for failover tests: masters and replicas, each a real redis-server on a free port with its
// own temp dir, joined by `redis-cli --cluster create`; SIGKILL a node, ask which master owns a key's slot.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { askRedis as ask, quickRedis as quick } from './redis-server.js';
import { freePort, waitFor } from './wait.js';

/** Why a Redis Cluster cannot run here (no redis-server / redis-cli, or one without cluster support), or null when it can. */
export function clusterMissing(): string | null {
  const server = spawnSync('redis-server', ['--version'], { encoding: 'utf8', timeout: 5000 });
  if (server.error || server.status !== 0) return 'redis-server is not installed (Debian: apt-get install -y redis-server)';
  const cli = spawnSync('redis-cli', ['--cluster', 'help'], { encoding: 'utf8', timeout: 5000 });
  if (cli.error || !/create/.test(`${cli.stdout}${cli.stderr}`)) return 'redis-cli has no --cluster support (Redis 5 or later is needed; Debian: apt-get install -y redis-tools)';
  return null;
}

export interface ClusterOptions {
  masters?: number;
  /** Replicas per master. */
  replicas?: number;
  /** cluster-node-timeout (ms): how long a master must be unreachable before its replica is promoted. */
  nodeTimeoutMs?: number;
}

export interface ClusterDataNode {
  port: number;
  running(): boolean;
  /** Start a stopped node again on its port with its cluster config: a master failed over comes back as a replica. */
  start(): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface RedisClusterGroup {
  ports: number[];
  nodes: ClusterDataNode[];
  /** Env that points Hydra at this cluster: seed nodes, and a REDIS_URL that gives only credentials (none here). */
  env: Record<string, string>;
  node(port: number): ClusterDataNode;
  /** A client of one node (no retries), for test-side checks. */
  client(port: number): Redis;
  /** The port of the master serving the slot of `key` (CLUSTER KEYSLOT, then CLUSTER SHARDS), asked of a running node. */
  masterOf(key: string): Promise<number>;
  /**
   * Until every running node but one per shard is a replica whose link to its master is up (a master killed before that
   * has no replica to promote; a restarted old master first claims its slots, then turns replica).
   */
  waitForReplicas(timeoutMs?: number): Promise<void>;
  /** Until every running node reports cluster_state:ok and agrees that the slot of `key` is served by a master other than `notPort`. */
  waitForOk(o?: { key?: string; notPort?: number; timeoutMs?: number }): Promise<number | null>;
  stop(): Promise<void>;
}


const stopProc = async (p: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> => {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill(signal);
  await exited;
};

/** The master port of the slot in CLUSTER SLOTS' answer: [[start, end, [host, port, id], [replica...]], ...]. */
function slotMaster(slots: unknown, slot: number): number | null {
  for (const range of slots as [number, number, [string, number]][]) if (slot >= range[0] && slot <= range[1]) return Number(range[2][1]);
  return null;
}

export async function startRedisCluster(o: ClusterOptions = {}): Promise<RedisClusterGroup> {
  const masters = o.masters ?? 3;
  const replicas = o.replicas ?? 1;
  const dir = mkdtempSync(join(tmpdir(), 'hydra-rcluster-'));
  const log: string[] = [];
  const ports: number[] = [];
  for (let i = 0; i < masters * (1 + replicas); i++) ports.push(await freePort());
  const procs = new Map<number, ChildProcess>();
  const keep = (d: Buffer) => {
    log.push(d.toString());
    if (log.length > 400) log.splice(0, log.length - 400);
  };

  const spawnNode = async (port: number): Promise<void> => {
    const nodeDir = join(dir, `redis-${port}`);
    mkdirSync(nodeDir, { recursive: true });
    // No persistence: what a replica holds is what replication gave it; the experiment is about that.
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', nodeDir, '--cluster-enabled', 'yes', '--cluster-config-file', join(nodeDir, 'nodes.conf')];
    args.push('--cluster-node-timeout', String(o.nodeTimeoutMs ?? 1000), '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction');
    const p = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout?.on('data', keep);
    p.stderr?.on('data', keep);
    procs.set(port, p);
    await waitFor(() => ask(port, async (r) => (await r.ping()) === 'PONG').catch(() => false), { timeoutMs: 10_000, intervalMs: 20, what: `redis-server on ${port}` });
  };
  const nodes: ClusterDataNode[] = ports.map((port) => ({
    port,
    running: () => {
      const p = procs.get(port);
      return p !== undefined && p.exitCode === null && p.signalCode === null;
    },
    start: () => spawnNode(port),
    kill: (signal = 'SIGKILL') => stopProc(procs.get(port), signal),
  }));
  const running = () => nodes.filter((n) => n.running()).map((n) => n.port);
  const group: RedisClusterGroup = {
    ports,
    nodes,
    env: { REDIS_URL: 'redis://redis-cluster', REDIS_CLUSTER_NODES: ports.slice(0, masters).map((p) => `127.0.0.1:${p}`).join(',') },
    node: (port) => {
      const n = nodes.find((x) => x.port === port);
      if (!n) throw new Error(`no cluster node on port ${port}`);
      return n;
    },
    client: quick,
    async masterOf(key) {
      const port = running()[0];
      if (port === undefined) throw new Error('no cluster node runs');
      return ask(port, async (r) => {
        const slot = Number(await r.call('CLUSTER', 'KEYSLOT', key));
        const m = slotMaster(await r.call('CLUSTER', 'SLOTS'), slot);
        if (m === null) throw new Error(`no master serves slot ${slot}`);
        return m;
      });
    },
    async waitForOk(w = {}) {
      return waitFor(
        async () => {
          const seen: (number | null)[] = [];
          for (const port of running()) {
            const ok = await ask(port, async (r) => /cluster_state:ok/.test(String(await r.call('CLUSTER', 'INFO'))));
            if (!ok) return false;
            if (w.key !== undefined) seen.push(await ask(port, async (r) => slotMaster(await r.call('CLUSTER', 'SLOTS'), Number(await r.call('CLUSTER', 'KEYSLOT', w.key!)))));
          }
          if (w.key === undefined) return true;
          const first = seen[0] ?? null;
          return first !== null && first !== w.notPort && seen.every((s) => s === first) ? first : false;
        },
        { timeoutMs: w.timeoutMs ?? 20_000, intervalMs: 50, what: `the Redis Cluster to be ok${w.notPort ? ` with a master other than ${w.notPort}` : ''}\n${log.join('').slice(-3000)}` },
      ).then((v) => (typeof v === 'number' ? v : null));
    },
    async waitForReplicas(timeoutMs = 20_000) {
      await waitFor(
        async () => {
          let synced = 0;
          for (const port of running()) {
            const info = await ask(port, (r) => r.info('replication'));
            if (/role:slave/.test(info) && /master_link_status:up/.test(info)) synced++;
          }
          return synced === running().length - masters;
        },
        { timeoutMs, intervalMs: 50, what: `the cluster replicas to sync\n${log.join('').slice(-3000)}` },
      );
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
      rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    await Promise.all(ports.map(spawnNode));
    const create = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(replicas), '--cluster-yes'], { encoding: 'utf8', timeout: 30_000 });
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    await group.waitForOk();
    // Every replica is attached and synced before a test kills its master (else it could not be promoted).
    await group.waitForReplicas();
  } catch (e) {
    await group.stop();
    throw e;
  }
  return group;
}
