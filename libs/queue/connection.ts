// Redis connections with the failover settings DESIGN.md measured: fast reconnect, workers never give up a command,
// producers fail fast; the password and TLS settings come from the URL; the master found through Sentinel, or a Redis
// Cluster, if asked.
import { readFileSync } from 'node:fs';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Config } from '../config/index.js';

/** Longest wait between reconnect attempts (ms): a Redis that comes back is seen within about this long. */
export const RETRY_CAP_MS = 1000;

/**
 * Reconnect quickly, capped at RETRY_CAP_MS, with jitter so many clients do not retry in step.
 * ioredis' default resumed 18 s after a 20 s outage; a 2 s cap resumed after 1-2 s, this one within 1 s.
 */
export const fastRetry = (times: number): number => Math.round(Math.min(50 * 2 ** Math.min(times, 5), RETRY_CAP_MS) * (0.75 + Math.random() * 0.25));

/** Longest a producer command waits for its reply (ms): a hung Redis or a network partition then answers 503, not never. */
export const PRODUCER_COMMAND_TIMEOUT_MS = 2000;

/** Longest one question to a sentinel may take (ms) before the next sentinel is asked. */
const SENTINEL_COMMAND_TIMEOUT_MS = 2000;

export type ConnectionRole = 'worker' | 'producer' | 'subscriber';

/**
 * A connection to Hydra's Redis: one server (direct or through Sentinel), or a Redis Cluster. Both take every keyed
 * command, script and pipeline the same way (on a Cluster they go to the master of their keys' slot: all of Hydra's
 * keys share the QUEUE_PREFIX hash tag, so one slot). Keyless commands (CLIENT, INFO, WAIT) are the difference: a
 * Cluster sends them to a random node, so they go through `slotServer`.
 */
export type RedisClient = Redis | Cluster;

export const isCluster = (r: RedisClient): r is Cluster => r instanceof Cluster;

/** Throw the first failed command of a pipeline's or transaction's replies (`exec` resolves even when commands fail). */
export function throwIfFailed(rows: [Error | null, unknown][] | null): void {
  const err = rows?.find(([e]) => e)?.[0];
  if (err) throw err;
}

const bullConnections = new WeakMap<RedisClient, RedisClient>();

/**
 * The connection BullMQ's objects (Queue, Worker, FlowProducer) use beside `redis`: the same server, role and options,
 * made on first use and closed when `redis` ends. BullMQ defines its ~64 Lua commands on every connection it is given,
 * and ioredis copies each defined command onto every `pipeline()` of that connection: Hydra's own pipelines (token
 * stream, activity, index) cost 130 µs of CPU on a shared connection against 60 µs on one without BullMQ's commands
 * (bench/README.md, "The hot path"). BullMQ's job methods (`moveToCompleted`, `moveToWait`...) go through this one.
 */
export function bullConnection(redis: RedisClient): RedisClient {
  let b = bullConnections.get(redis);
  if (!b) {
    const named = redis.options as { connectionName?: string };
    b = isCluster(redis) ? redis.duplicate() : redis.duplicate(named.connectionName ? { connectionName: `${named.connectionName}-bullmq` } : {});
    // Its failures surface on BullMQ's calls; the main connection logs the outage.
    b.on('error', () => undefined);
    if (!isCluster(b)) coalesceWrites(b);
    const mine = b;
    redis.once('end', () => mine.disconnect());
    bullConnections.set(redis, b);
  }
  return b;
}

/**
 * How many redirections (MOVED, ASK, a closed connection to a dead master, CLUSTERDOWN) a worker's command on a Cluster
 * rides out before it fails. ioredis waits 100 ms before each retry after a lost connection or CLUSTERDOWN, so this
 * covers a failover of about a minute (cluster-node-timeout is 15 s by default, then an election); the default 16 gave
 * up after ~1.6 s, in the middle of a 2 s failover.
 */
const CLUSTER_WORKER_REDIRECTIONS = 1200;

/** The master of a Sentinel group: the sentinels to ask, the group name, and how to talk to the sentinels. */
export interface SentinelTarget {
  sentinels: { host: string; port: number }[];
  name: string;
  password?: string | undefined;
  /** TLS to the sentinels, with the CA and client certificate of the URL's tls_* parameters. */
  tls: boolean;
}

/**
 * Where a connection goes: the Redis at `url`, or, with `sentinel`, the master the sentinels name at each (re)connect.
 * With Sentinel the URL gives only the master's user, password, db and TLS (rediss:// and its tls_* parameters).
 */
export interface RedisTarget {
  url: string;
  sentinel?: SentinelTarget | undefined;
  /** Seed nodes of a Redis Cluster (the URL then gives only user, password and TLS). */
  cluster?: { host: string; port: number }[] | undefined;
}

type RedisSettings = Pick<
  Config,
  'REDIS_URL' | 'REDIS_SENTINELS' | 'REDIS_SENTINEL_NAME' | 'REDIS_SENTINEL_PASSWORD' | 'REDIS_SENTINEL_TLS' | 'REDIS_CLUSTER_NODES' | 'CACHE_REDIS_URL' | 'CACHE_REDIS_SENTINEL_NAME'
>;

const sentinelOf = (c: RedisSettings, name: string): SentinelTarget | undefined =>
  c.REDIS_SENTINELS.length === 0 ? undefined : { sentinels: c.REDIS_SENTINELS, name, password: c.REDIS_SENTINEL_PASSWORD, tls: c.REDIS_SENTINEL_TLS };

/** The queue's Redis (queues, registry, streams, channels): REDIS_URL, the REDIS_SENTINEL_NAME master, or the REDIS_CLUSTER_NODES cluster. */
export const queueRedisTarget = (c: RedisSettings): RedisTarget => ({
  url: c.REDIS_URL,
  sentinel: sentinelOf(c, c.REDIS_SENTINEL_NAME),
  cluster: c.REDIS_CLUSTER_NODES.length > 0 ? c.REDIS_CLUSTER_NODES : undefined,
});

/**
 * The L1 cache's own Redis, or null when the cache lives in the queue's Redis (then it shares the queue connection):
 * the CACHE_REDIS_SENTINEL_NAME master at the same sentinels, else CACHE_REDIS_URL (one server, also beside a queue on
 * a Redis Cluster; without it the cache shares the cluster connection).
 */
export function cacheRedisTarget(c: RedisSettings): RedisTarget | null {
  if (c.CACHE_REDIS_SENTINEL_NAME !== undefined && c.REDIS_SENTINELS.length > 0) {
    const url = c.CACHE_REDIS_URL ?? c.REDIS_URL;
    if (c.CACHE_REDIS_SENTINEL_NAME === c.REDIS_SENTINEL_NAME && url === c.REDIS_URL) return null;
    return { url, sentinel: sentinelOf(c, c.CACHE_REDIS_SENTINEL_NAME) };
  }
  if (c.CACHE_REDIS_URL === undefined || c.CACHE_REDIS_URL === c.REDIS_URL) return null;
  return { url: c.CACHE_REDIS_URL };
}

/**
 * Errors of a master that became a replica while this connection stayed open: writes get READONLY, a blocked read is
 * cut off with "UNBLOCKED ... instance state changed". Sentinel kills client connections when it demotes a master, but
 * an operator's REPLICAOF, a failover it could not reach, or a managed Redis moving its endpoint does not.
 */
const DEMOTED = /READONLY|instance state changed/;

/**
 * A connection for one role. Workers and blocking readers wait out an outage (commands queue until Redis is back).
 * Producers (the API) never queue: while Redis is down, or before the first connection is ready, a command fails
 * at once, and one that gets no reply within PRODUCER_COMMAND_TIMEOUT_MS fails too, so requests get a 503.
 *
 * A demoted master's error makes the connection reconnect; through Sentinel that reaches the new master, and workers and
 * readers send the refused command again there (it did not run), while producers fail it (a prompt 503 over a wait).
 * A transaction refused this way fails whole (EXECABORT), never in part. Without Sentinel the reconnect goes to the
 * same address (right for a DNS name that moves), and the command fails.
 */
export function createRedis(target: string | (RedisTarget & { cluster?: undefined }), role: ConnectionRole, extra?: RedisOptions): Redis;
export function createRedis(target: string | RedisTarget, role: ConnectionRole, extra?: RedisOptions): RedisClient;
export function createRedis(target: string | RedisTarget, role: ConnectionRole, extra: RedisOptions = {}): RedisClient {
  const t: RedisTarget = typeof target === 'string' ? { url: target } : target;
  const url = parseRedisUrl(t.url);
  if (t.cluster) return createCluster(t.cluster, url, role, extra);
  const resend = t.sentinel !== undefined && role !== 'producer';
  const base: RedisOptions = {
    retryStrategy: fastRetry,
    maxRetriesPerRequest: role === 'producer' ? 1 : null,
    ...(role === 'producer' ? { enableOfflineQueue: false, commandTimeout: PRODUCER_COMMAND_TIMEOUT_MS } : {}),
    enableReadyCheck: true,
    connectionName: `hydra-${role}`,
    reconnectOnError: (err) => (DEMOTED.test(err.message) ? (resend ? 2 : 1) : false),
  };
  const r = t.sentinel ? new Redis({ ...base, ...sentinelOptions(t.sentinel, url), ...extra }) : new Redis(url.url, { ...base, ...(url.tls ? { tls: url.tls } : {}), ...extra });
  if (role !== 'subscriber') coalesceWrites(r);
  return r;
}

/**
 * One socket write per event-loop turn instead of one per command: ioredis writes every command (and every pipeline)
 * to its socket at once, a syscall each (~40-60 µs of CPU on a small VM: the largest single item of a worker's CPU per
 * job, bench/README.md "The hot path"). The first write of a turn corks the socket and `setImmediate` uncorks it, so
 * the commands sent during one turn (its callbacks and the promise continuations they run) leave in one writev, in the
 * order they were sent. Nothing about the commands changes (no MULTI, no reordering, no auto-pipelining, which BullMQ's
 * transactions do not survive); a command waits at most until the turn's I/O callbacks are done. Re-applied on every
 * (re)connection: ioredis makes a new socket each time.
 */
function coalesceWrites(r: Redis): void {
  r.on('connect', () => {
    const socket = (r as unknown as { stream?: { cork?: () => void; uncork(): void; write: (...a: unknown[]) => boolean } }).stream;
    if (!socket || typeof socket.cork !== 'function') return;
    const write = socket.write.bind(socket);
    let corked = false;
    const uncork = () => {
      corked = false;
      socket.uncork();
    };
    socket.write = (...args: unknown[]) => {
      if (!corked) {
        corked = true;
        socket.cork!();
        setImmediate(uncork);
      }
      return write(...args);
    };
  });
}

/**
 * A Redis Cluster connection with the roles' semantics. Workers queue commands while the cluster is unreachable
 * (offline queue) and ride out a failover of the shard holding Hydra's slot (CLUSTER_WORKER_REDIRECTIONS); producers
 * fail at once while it is unreachable and within PRODUCER_COMMAND_TIMEOUT_MS otherwise (commandTimeout per node, 16
 * redirections), so requests get a 503. A demoted or dead master needs no reconnectOnError here: the cluster answers
 * MOVED (or the connection closes) and ioredis re-reads the slot map and sends the command to the new master.
 * `extra`'s lazyConnect and retryStrategy are the cluster's own options; the rest apply to each node's connection
 * (connectionName names every node connection: liveness finds its own on the slot's master).
 */
function createCluster(nodes: { host: string; port: number }[], url: { url: string; tls: TlsOptions | undefined }, role: ConnectionRole, extra: RedisOptions): Cluster {
  const u = new URL(url.url);
  const { lazyConnect, retryStrategy, enableOfflineQueue: _offline, sentinelRetryStrategy: _s, reconnectOnError: _r, ...nodeExtra } = extra;
  const producer = role === 'producer';
  const options: ClusterOptions = {
    clusterRetryStrategy: retryStrategy === undefined ? fastRetry : retryStrategy,
    enableOfflineQueue: !producer,
    enableReadyCheck: true,
    maxRedirections: producer ? 16 : CLUSTER_WORKER_REDIRECTIONS,
    ...(lazyConnect !== undefined ? { lazyConnect } : {}),
    redisOptions: {
      maxRetriesPerRequest: producer ? 1 : null,
      ...(producer ? { commandTimeout: PRODUCER_COMMAND_TIMEOUT_MS } : {}),
      connectionName: `hydra-${role}`,
      ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
      ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
      ...(u.protocol === 'rediss:' ? { tls: url.tls ?? {} } : {}),
      ...nodeExtra,
    },
  };
  return new Cluster(nodes, options);
}

/** CRC16-XMODEM, the checksum of Redis Cluster's key slots (its cluster spec). */
function crc16(s: string): number {
  let crc = 0;
  for (const byte of Buffer.from(s)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The Redis Cluster slot of a key, as CLUSTER KEYSLOT answers it: only the first non-empty {hash tag} counts. */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return crc16(key.slice(open + 1, close)) % 16384;
  }
  return crc16(key) % 16384;
}

/**
 * The server connection a keyless command about `key`'s data must use (CLIENT ID / LIST, INFO, WAIT): the connection
 * itself for one server; on a Cluster its pooled connection to the master serving `key`'s slot (every command on
 * those keys goes through that same connection), or null while the cluster knows no live master for it (a failover
 * under way: `r.refreshSlotsCache()` and ask again).
 */
export function slotServer(r: RedisClient, key: string): Redis | null {
  if (!isCluster(r)) return r;
  const master = r.slots[keySlot(key)]?.[0];
  return r.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === master) ?? null;
}

/** PING the server holding `key`'s data: on a Cluster a plain PING answers from a random node, whether or not it holds the slot. */
export function pingServer(r: RedisClient, key: string): Promise<string> {
  const srv = slotServer(r, key);
  return srv ? srv.ping() : Promise.reject(new Error(`no Redis Cluster master is known for the slot of ${key} yet (a failover under way?)`));
}

/**
 * ioredis' Sentinel options: the group, the master's credentials and db from the URL (its host and port are not used),
 * TLS to the master for rediss://, and to the sentinels with REDIS_SENTINEL_TLS (same CA, no server name: each sentinel
 * is checked against its own address). While no sentinel answers, ioredis asks them all again after 10, 20, ... ms,
 * capped at 1 s; it walks the list from where it last stopped, so one reconnect in a few may first report "All
 * sentinels are unreachable" and retry 10 ms later.
 */
function sentinelOptions(s: SentinelTarget, url: { url: string; tls: TlsOptions | undefined }): RedisOptions {
  const u = new URL(url.url);
  const db = Number.parseInt(u.pathname.slice(1), 10);
  const { servername: _masterName, ...sentinelTls } = url.tls ?? {};
  return {
    sentinels: s.sentinels,
    name: s.name,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    db: Number.isInteger(db) ? db : 0,
    ...(s.password !== undefined ? { sentinelPassword: s.password } : {}),
    ...(s.tls ? { sentinelTLS: sentinelTls } : {}),
    ...(u.protocol === 'rediss:' ? { tls: url.tls ?? {}, enableTLSForSentinelMode: true } : {}),
    sentinelCommandTimeout: SENTINEL_COMMAND_TIMEOUT_MS,
  };
}

/** Hydra's own query parameters of a rediss:// URL (removed before ioredis reads the URL). */
const TLS_PARAMS = {
  tls_ca_file: 'PEM file of the CA that signed the server certificate (default: the system CAs)',
  tls_cert_file: 'client certificate (PEM), for servers that require client certificates',
  tls_key_file: 'client private key (PEM)',
  tls_servername: 'host name to check the server certificate against (default: the URL host)',
  tls_insecure: '1 to skip certificate verification (development only)',
} as const;

/**
 * Split a Redis URL into the URL ioredis reads and the TLS options of Hydra's parameters, e.g.
 * `rediss://:password@redis.internal:6380/0?tls_ca_file=/etc/hydra/redis-ca.pem`.
 * Throws an error naming the parameter when a file cannot be read or TLS parameters come with redis://.
 */
export function parseRedisUrl(url: string): { url: string; tls: TlsOptions | undefined } {
  if (!/[?&]tls_/.test(url)) return { url, tls: undefined };
  const u = new URL(url);
  const tls: TlsOptions = {};
  const read = (param: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (e) {
      throw new Error(`Redis URL parameter ${param}=${file}: cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  };
  let any = false;
  for (const [param, value] of [...u.searchParams]) {
    if (!(param in TLS_PARAMS)) continue;
    any = true;
    u.searchParams.delete(param);
    if (param === 'tls_ca_file') tls.ca = read(param, value);
    else if (param === 'tls_cert_file') tls.cert = read(param, value);
    else if (param === 'tls_key_file') tls.key = read(param, value);
    else if (param === 'tls_servername') tls.servername = value;
    else if (param === 'tls_insecure') tls.rejectUnauthorized = !/^(1|true|yes)$/i.test(value);
  }
  if (!any) return { url, tls: undefined };
  if (u.protocol !== 'rediss:') throw new Error(`Redis URL parameters ${Object.keys(TLS_PARAMS).join(', ')} need a rediss:// URL`);
  return { url: u.toString(), tls };
}

/** The URL with its password (and user) masked, for logs and messages. */
export const redactRedisUrl = (url: string): string => url.replace(/\/\/[^@/]*@/, '//***@');

/** Whether a Redis (the Sentinel group's master, a node of the Cluster) answers PING within `timeoutMs`; one try, no retries, never throws for a down Redis. */
export async function redisAnswers(target: string | RedisTarget, timeoutMs = 1000): Promise<boolean> {
  const r = createRedis(target, 'producer', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, sentinelRetryStrategy: () => null, connectTimeout: timeoutMs });
  r.on('error', () => {});
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}
