// Fast failover: each worker process registers one Redis connection of its own (its CLIENT ID) and the jobs it runs;
// in turn, one live process at a time asks Redis which registered connections are gone. The kernel closes a SIGKILLed
// or crashed process's sockets at once, so its running jobs go back to their queues in about a second instead of when
// their BullMQ locks expire. A paused process (SIGSTOP, a long GC pause) keeps its connection and is never taken for
// dead: its jobs wait for their locks as before. On a Redis Cluster all of it happens on the master of the {hydra} slot,
// and each process registers again when that master changes (a failover). Design and figures: docs/reliability.md.
import type { Redis } from 'ioredis';
import type { Config } from '../../libs/config/index.js';
import type { Logger } from '../../libs/logger/index.js';
import {
  appendEntry,
  createRedis,
  deadWorkerRequeuer,
  isCluster,
  liveEntry,
  liveRegistrar,
  queueRedisTarget,
  RETRY_CAP_MS,
  slotServer,
  type DeadWorkerRequeuer,
  type LiveRegistrar,
  type HydraKeys,
  type JobLifecycle,
  type OrphanedJob,
  type RedisClient,
} from '../../libs/queue/index.js';

/** What the job runner tells liveness: the jobs this process runs, each under its BullMQ lock token. */
export interface JobTracker {
  /** This process's liveness hash (its jobs' entries), or null with fast failover off. */
  readonly key: string | null;
  /**
   * The hash entry the take writes as it takes a job under `token` (take.lua), so a job is tracked from the moment it
   * is active, in the same call; null with fast failover off.
   */
  entry(queue: string, token: string): { key: string; value: string } | null;
  /** This process runs `jobId` now; `written`: the take wrote its entry already. */
  track(jobId: string, queue: string, token: string, written?: boolean): void;
  /** It no longer runs here; `removed`: its end removed its entry already (job-end.lua). */
  untrack(jobId: string, removed?: boolean): void;
}

interface LivenessSettings {
  /** One process checks every this long (ms), the processes taking turns; 0 turns fast failover off. */
  checkMs: number;
  /** A connection must stay gone this long (ms) before its process is taken for dead: longer than a reconnect. */
  graceMs: number;
  maxStalledCount: number;
}

const livenessSettings = (c: Pick<Config, 'LIVENESS_CHECK_MS' | 'LIVENESS_GRACE_MS' | 'MAX_STALLED_COUNT'>): LivenessSettings => ({
  checkMs: c.LIVENESS_CHECK_MS,
  graceMs: c.LIVENESS_GRACE_MS,
  maxStalledCount: c.MAX_STALLED_COUNT,
});

/** Liveness keys (libs/queue/keys.ts). */
const livenessKeys = (keys: HydraKeys) => ({ live: keys.live, jobs: keys.liveJobs });

/**
 * After its own connection reopens, or when Redis itself just started, a process judges no one for this long (ms): when
 * Redis restarts or fails over, every live process reconnects within RETRY_CAP_MS (plus jitter) and registers its new
 * connection. A process that merely just started judges at once.
 */
const SETTLE_MS = 2 * RETRY_CAP_MS;
/** How often (ms) a process re-reads its turn (its rank among the registered processes and their number). */
const RANK_REFRESH_MS = 5000;

export interface LivenessDeps {
  /** The process's main connection: the per-job entries go on it, in the same writes as the take and the job's end. */
  redis: RedisClient;
  keys: HydraKeys;
  lifecycle: JobLifecycle;
  logger: Logger;
  procId: string;
}

export interface Liveness {
  /**
   * The tracker of one node agent of this process. A process serving several nodes (DISCOVER) has one registration
   * and one jobs hash; each entry names the node it runs on, so a live process requeues a dead one's jobs and frees
   * each job's reservation on its own node.
   */
  forNode(nodeId: string): JobTracker;
  /** Deregister (after the drain: its jobs are handed back by then) and close the connection. */
  stop(): Promise<void>;
}

/** Register this process and start taking turns; resolves once registered. With checkMs 0, a tracker that does nothing. */
export async function startLiveness(config: Config, d: LivenessDeps): Promise<Liveness> {
  const s = livenessSettings(config);
  if (s.checkMs <= 0) return { forNode: () => ({ key: null, entry: () => null, track: () => undefined, untrack: () => undefined }), stop: async () => undefined };
  const r = createRedis(queueRedisTarget(config), 'worker', { connectionName: `hydra-live-${d.procId}` });
  const l = new LivenessChecker(s, r, d);
  await l.start();
  return l;
}

/** A registered process's view of itself: the jobs it runs and its connection; and, in its turns, the checker of all. */
class LivenessChecker implements Liveness {
  private readonly k: ReturnType<typeof livenessKeys>;
  private readonly requeue: DeadWorkerRequeuer;
  private readonly registrar: LiveRegistrar;
  /** The jobs this process runs: job id → its hash entry (liveEntry). */
  private readonly running = new Map<string, string>();
  /** Processes whose connection this process found gone: since when (ms), and which connection. */
  private readonly suspects = new Map<string, { clientId: string; since: number }>();
  private clientId: string | null = null;
  /** The server connection `clientId` belongs to: on a Cluster, the pooled connection to the slot's master then. */
  private registeredOn: Redis | null = null;
  /** No judging before this time (ms): see SETTLE_MS. */
  private judgeFrom = 0;
  private rank: number | null = null;
  private members = 0;
  private rankAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly s: LivenessSettings,
    private readonly r: RedisClient,
    private readonly d: LivenessDeps,
  ) {
    this.k = livenessKeys(d.keys);
    this.requeue = deadWorkerRequeuer(r, d.keys);
    this.registrar = liveRegistrar(r, d.keys);
    r.on('error', (e: Error) => d.logger.debug({ err: e.message }, 'liveness connection error'));
  }

  async start(): Promise<void> {
    let first: (() => void) | null = null;
    const registered = new Promise<void>((resolve) => (first = resolve));
    const register = (): void =>
      void this.register().then(
        () => {
          first?.();
          first = null;
        },
        (e: Error) => {
          this.d.logger.warn({ err: e.message }, 'liveness registration failed; trying again');
          setTimeout(() => this.r.status === 'ready' && !this.stopped && register(), 500).unref();
        },
      );
    // Each (re)connect has a new CLIENT ID: register it at once, before anyone could take the gap for a death.
    this.r.on('ready', register);
    if (this.r.status === 'ready') register();
    await registered;
    this.schedule();
  }

  forNode(nodeId: string): JobTracker {
    const key = this.k.jobs(this.d.procId);
    return {
      key,
      entry: (queue, token) => ({ key, value: liveEntry(queue, nodeId, token) }),
      track: (jobId, queue, token, written) => this.track(jobId, liveEntry(queue, nodeId, token), written),
      untrack: (jobId, removed) => this.untrack(jobId, removed),
    };
  }

  // On the main connection, in the writes the job's take and end make anyway. A registration (on this module's own
  // connection) racing them cannot lose a running job's entry nor keep an ended one: live-register.lua keeps exactly the
  // entries whose lock still holds their token.
  private track(jobId: string, entry: string, written = false): void {
    this.running.set(jobId, entry);
    if (!written) this.d.redis.hset(this.k.jobs(this.d.procId), jobId, entry).catch(() => undefined);
  }

  private untrack(jobId: string, removed = false): void {
    if (!this.running.delete(jobId) || removed) return;
    this.d.redis.hdel(this.k.jobs(this.d.procId), jobId).catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.r.multi().zrem(this.k.live, this.d.procId).del(this.k.jobs(this.d.procId)).exec().catch(() => undefined);
    await this.r.quit().catch(() => this.r.disconnect());
  }

  /**
   * The connection CLIENT and INFO must go through: on a Cluster a keyless command goes to a random node, so it is the
   * pooled connection to the master of the liveness keys' slot, the one their commands use (null during a failover).
   */
  private server(): Redis | null {
    return slotServer(this.r, this.k.live);
  }

  /** This connection's id and the jobs running now, in one call (live-register.lua). */
  private async register(): Promise<void> {
    const srv = this.server();
    if (!srv) throw new Error('no master known for the liveness keys yet (a Redis Cluster failover under way)');
    const id = String(await srv.call('CLIENT', 'ID'));
    await this.registrar(this.d.procId, id, this.running);
    const reconnect = this.clientId !== null;
    const uptimeS = reconnect ? 0 : Number(/uptime_in_seconds:(\d+)/.exec(await srv.info('server'))?.[1] ?? 0);
    this.clientId = id;
    this.registeredOn = srv;
    if (reconnect || uptimeS * 1000 < SETTLE_MS) this.judgeFrom = Date.now() + SETTLE_MS;
    await this.refreshRank(false);
  }

  private async refreshRank(reRegister = true): Promise<void> {
    const [rank, n] = ((await this.r.pipeline().zrank(this.k.live, this.d.procId).zcard(this.k.live).exec()) ?? []).map((x) => x?.[1]) as [number | null, number];
    this.rankAt = Date.now();
    this.members = Number(n);
    this.rank = rank ?? null;
    // Our registration went missing (a checker took a long reconnect for a death, or a failover lost it): again.
    if (reRegister && rank === null && this.clientId !== null && this.r.status === 'ready') await this.register();
  }

  /**
   * Wake in the middle of each slot of checkMs (slot i is the turn of the process of rank i mod n), or when a suspect's
   * grace ends, if sooner.
   */
  private schedule(): void {
    if (this.stopped) return;
    const slot = this.s.checkMs;
    const now = Date.now();
    let next = (Math.floor(now / slot) + 1) * slot + Math.floor(slot / 2);
    for (const sus of this.suspects.values()) if (sus.since + this.s.graceMs >= now) next = Math.min(next, sus.since + this.s.graceMs + 1);
    this.timer = setTimeout(() => {
      this.tick()
        .catch((e: Error) => this.d.logger.debug({ err: e.message }, 'liveness check failed'))
        .finally(() => this.schedule());
    }, next - now);
  }

  private async tick(): Promise<void> {
    const now = Date.now();
    if (this.r.status !== 'ready' || this.clientId === null) return;
    if (isCluster(this.r) && !(await this.followSlot())) return;
    if (now - this.rankAt >= RANK_REFRESH_MS) await this.refreshRank();
    const turn = this.rank !== null && this.members > 0 && Math.floor(now / this.s.checkMs) % this.members === this.rank;
    // A process that suspects someone checks every slot until it confirms or clears them, so the grace is not
    // stretched by waiting for its next turn.
    if (!turn && this.suspects.size === 0) return;
    if (now < this.judgeFrom) return;
    await this.check();
  }

  /**
   * On a Cluster, whether this process is registered on the slot's master now. Another master since the registration
   * (a failover: the promoted replica has the registrations, with the dead master's CLIENT IDs) means register again;
   * none known yet means ask the cluster for its slots again. `register` then holds judging back for SETTLE_MS, while
   * every other process does the same within a tick of its own.
   */
  private async followSlot(): Promise<boolean> {
    if (!isCluster(this.r)) return true;
    const srv = this.server();
    if (srv === this.registeredOn && srv?.status !== 'end') return true;
    if (!srv || srv.status === 'end') {
      this.r.refreshSlotsCache();
      return false;
    }
    await this.register();
    this.d.logger.info({ proc: this.d.procId, server: `${srv.options.host}:${srv.options.port}` }, 'liveness registered again on the new master');
    return false;
  }

  /**
   * Which registered connections Redis no longer has (CLIENT LIST ID, answering only for the ids asked). A process
   * whose connection stays gone for graceMs with no new registration is dead: its jobs go back to their queues.
   */
  private async check(): Promise<void> {
    const flat = await this.r.zrange(this.k.live, '0', '-1', 'WITHSCORES');
    const registered = new Map<string, string>();
    for (let i = 0; i + 1 < flat.length; i += 2) registered.set(flat[i]!, flat[i + 1]!);
    const own = this.clientId!;
    const srv = this.server();
    if (!srv || srv !== this.registeredOn) return;
    const listing = String(await srv.call('CLIENT', 'LIST', 'ID', ...new Set([own, ...registered.values()])));
    const seenAt = Date.now();
    const present = new Set([...listing.matchAll(/^id=(\d+) /gm)].map((m) => m[1]!));
    // Not the server we registered with (a Cluster node, a failover under way), or not registered yet: judge no one.
    if (!present.has(own)) return;
    if (registered.get(this.d.procId) !== own) {
      // Our connection is fine but our registration is gone (another process took a reconnect of ours for a death):
      // register again, judge no one this time.
      await this.register();
      return;
    }
    for (const [proc, sus] of this.suspects) if (registered.get(proc) !== sus.clientId) this.suspects.delete(proc);
    for (const [proc, id] of registered) {
      if (proc === this.d.procId) continue;
      if (present.has(id)) {
        this.suspects.delete(proc);
        continue;
      }
      const sus = this.suspects.get(proc);
      if (!sus) this.suspects.set(proc, { clientId: id, since: seenAt });
      else if (seenAt - sus.since >= this.s.graceMs) {
        this.suspects.delete(proc);
        await this.recover(proc, id, seenAt - sus.since);
      }
    }
  }

  private async recover(procId: string, clientId: string, goneMs: number): Promise<void> {
    const jobs: OrphanedJob[] = [];
    for (const [jobId, raw] of Object.entries(await this.r.hgetall(this.k.jobs(procId)))) {
      try {
        const v = JSON.parse(raw) as { q?: unknown; n?: unknown; t?: unknown };
        if (typeof v.q === 'string' && typeof v.n === 'string' && typeof v.t === 'string') jobs.push({ jobId, queue: v.q, nodeId: v.n, token: v.t });
      } catch {
        // Not written by this module: skipped; its lock expires as without fast failover.
      }
    }
    const res = await this.requeue({ registration: this.k.live, jobsKey: this.k.jobs(procId), procId, clientId, jobs, maxStalledCount: this.s.maxStalledCount });
    if (res.outcome !== 'requeued') return;
    const moved = jobs.filter((j) => res.jobIds.includes(j.jobId));
    if (moved.length) {
      // Idle workers look at once; a stream's readers learn that the answer restarts (as after a drain).
      const p = this.r.pipeline();
      for (const j of moved) {
        this.d.lifecycle.wake(p, j.queue);
        appendEntry(p, this.d.keys.stream(j.jobId), 'requeued', JSON.stringify({ node_id: j.nodeId, reason: 'the worker process running it died; requeued at once' }));
      }
      await p.exec();
    }
    const nodes = [...new Set(jobs.map((j) => j.nodeId))];
    this.d.logger[moved.length ? 'warn' : 'info']({ proc: procId, nodes, jobs: moved.map((j) => j.jobId), goneMs }, 'worker process gone: its running jobs requeued');
  }
}
