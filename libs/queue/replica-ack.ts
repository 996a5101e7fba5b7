// Durable submits (REDIS_MIN_REPLICAS_ACK): after a job is added, Redis WAIT until enough replicas hold it, so a job the
// API accepted survives a failover of the master (Redis replicates asynchronously).
import type { Redis } from 'ioredis';
import type { Config } from '../config/index.js';
import { bullConnection, createRedis, isCluster, PRODUCER_COMMAND_TIMEOUT_MS, queueRedisTarget, slotServer, type RedisClient } from './connection.js';
import type { HydraKeys } from './keys.js';

/** What `seal` records: the state of both connections before the writes to confirm. */
export interface AckSeal {
  producerCloses: number;
  ackCloses: number;
}

export type AckOutcome = { ok: true; replicas: number } | { ok: false; replicas: number; why: string };

/** One connection as the ack sees it: how often it closed, and which server (run_id) it is on now. */
interface Tracked {
  closes: number;
  runId(): Promise<string | null>;
}

/**
 * WAIT counts the replicas that acknowledged the writes of its own connection, and blocks that connection while it
 * waits: on the shared producer connection every other command would queue behind it (for the whole timeout while a
 * replica is away). So the ack has a connection of its own: one small write (INCR of a marker) then WAIT, which covers
 * every write finished on this master before the INCR (one replication stream). Callers that arrive while a WAIT is out
 * share the next one (group commit): at most one WAIT in flight, however many submits.
 *
 * That holds only while both connections are on one master. A connection that reconnected may have moved (a
 * failover), and a WAIT on the new master would count replicas of a master that never had the job; a split brain
 * leaves two masters with open connections. So a confirm is refused when either connection closed since the seal, or
 * their servers' run_ids differ.
 *
 * On a Redis Cluster the INCR and the WAIT go, as one pipeline, to the master of the marker's slot, which is Hydra's one
 * slot (the QUEUE_PREFIX hash tag): the master that took the job. "Closed" there means the cluster's set of node
 * connections changed (a node lost or added: the slot may have moved), and the server is that slot's master.
 */
export class ReplicaAck {
  private sent: Promise<number> | null = null;
  private queued: Promise<number> | null = null;
  /** The connections the writes to confirm go out on (the API's own and BullMQ's beside it: bullConnection). */
  private readonly producers: Tracked[];
  private readonly ack: Tracked;

  constructor(private readonly d: { producer: RedisClient | readonly RedisClient[]; ack: RedisClient; key: string; replicas: number; timeoutMs: number }) {
    this.producers = (Array.isArray(d.producer) ? d.producer : [d.producer]).map((r: RedisClient) => track(r, d.key));
    this.ack = track(d.ack, d.key);
  }

  /** Closes of the producer connections so far (each count only grows, so an equal sum means none closed). */
  private producerCloses(): number {
    return this.producers.reduce((n, t) => n + t.closes, 0);
  }

  /** Call before the writes to confirm. */
  seal(): AckSeal {
    return { producerCloses: this.producerCloses(), ackCloses: this.ack.closes };
  }

  /** Whether `replicas` replicas hold every write the producer connection finished since `seal` and before this call. */
  async confirm(seal: AckSeal): Promise<AckOutcome> {
    let acked: number;
    try {
      acked = await this.nextRound();
    } catch (e) {
      return { ok: false, replicas: 0, why: `the WAIT failed (${(e as Error).message})` };
    }
    if (this.producerCloses() !== seal.producerCloses || this.ack.closes !== seal.ackCloses) {
      return { ok: false, replicas: acked, why: 'the connection to Redis was re-established meanwhile (a failover?), so the replicas counted may not have the job' };
    }
    const [a, ...ps] = await Promise.all([this.ack.runId(), ...this.producers.map((t) => t.runId())]);
    if (a === null || ps.some((p) => p !== a)) return { ok: false, replicas: acked, why: 'the job and the WAIT went to different Redis servers (a failover in progress?)' };
    if (acked < this.d.replicas) return { ok: false, replicas: acked, why: `${acked} of ${this.d.replicas} replica(s) confirmed within ${this.d.timeoutMs} ms` };
    return { ok: true, replicas: acked };
  }

  /** Resolves once the ack connection is first ready, or failed (then confirms are refused until it is back). */
  async started(): Promise<void> {
    if (this.d.ack.status === 'ready') return;
    await new Promise<void>((resolve) => {
      this.d.ack.once('ready', resolve);
      this.d.ack.once('error', () => resolve());
    });
  }

  close(): void {
    this.d.ack.disconnect();
  }

  /** A round sent after this call: one already on the wire may have left before the caller's writes finished. */
  private nextRound(): Promise<number> {
    if (!this.sent) return this.send();
    this.queued ??= this.sent.then(noop, noop).then(() => {
      this.queued = null;
      return this.send();
    });
    return this.queued;
  }

  private send(): Promise<number> {
    const round = (async () => {
      const r = await this.d.ack.pipeline().incr(this.d.key).call('WAIT', String(this.d.replicas), String(this.d.timeoutMs)).exec();
      const err = r?.find(([e]) => e)?.[0];
      if (!r || err) {
        // A Cluster retries a pipeline only when all its replies are one error; here the INCR gets MOVED and the WAIT
        // another answer, so the slot map would stay stale (this connection sends nothing else): read it again.
        if (isCluster(this.d.ack)) this.d.ack.refreshSlotsCache();
        throw err ?? new Error('no reply');
      }
      return Number(r[1]?.[1]);
    })().finally(() => {
      if (this.sent === round) this.sent = null;
    });
    this.sent = round;
    return round;
  }
}

const noop = (): void => {};

const runIdOf = (r: Redis): Promise<string | null> =>
  r.info('server').then(
    (info) => /run_id:([0-9a-f]+)/.exec(info)?.[1] ?? null,
    () => null,
  );

/**
 * Count closes and learn the server's run_id at each ready (INFO server), so `confirm` can compare servers. On a
 * Cluster, INFO would go to a random node: the run_id is that of the master of `key`'s slot, asked once per pooled
 * connection to it (a connection there never reconnects: a new one is a new object).
 */
function track(r: RedisClient, key: string): Tracked {
  if (isCluster(r)) {
    const known = new WeakMap<Redis, Promise<string | null>>();
    const t: Tracked = {
      closes: 0,
      runId() {
        const srv = slotServer(r, key);
        if (!srv) return Promise.resolve(null);
        let id = known.get(srv);
        if (!id) {
          id = runIdOf(srv).then((v) => {
            if (v === null) known.delete(srv); // asked again next time
            return v;
          });
          known.set(srv, id);
        }
        return id;
      },
    };
    for (const event of ['+node', '-node', 'close']) r.on(event, () => void t.closes++);
    return t;
  }
  let runId: Promise<string | null> = Promise.resolve(null);
  const t: Tracked = { closes: 0, runId: () => runId };
  const learn = () => {
    runId = runIdOf(r);
  };
  r.on('close', () => {
    t.closes++;
    runId = Promise.resolve(null);
  });
  r.on('ready', learn);
  if (r.status === 'ready') learn();
  return t;
}

/**
 * The ack of an API process, or null with REDIS_MIN_REPLICAS_ACK=0. Its connection is a producer's (fail fast) whose
 * command timeout leaves room for the WAIT's own timeout.
 */
export function createReplicaAck(config: Config, deps: { redis: RedisClient; keys: HydraKeys }): ReplicaAck | null {
  if (config.REDIS_MIN_REPLICAS_ACK === 0) return null;
  const timeoutMs = config.REDIS_REPLICA_ACK_TIMEOUT_MS;
  const ack = createRedis(queueRedisTarget(config), 'producer', { commandTimeout: PRODUCER_COMMAND_TIMEOUT_MS + timeoutMs, connectionName: 'hydra-replica-ack' });
  ack.on('error', noop); // its failures surface as refused confirms (503), and the producer connection logs the outage
  return new ReplicaAck({ producer: [deps.redis, bullConnection(deps.redis)], ack, key: deps.keys.replicaAck, replicas: config.REDIS_MIN_REPLICAS_ACK, timeoutMs });
}
