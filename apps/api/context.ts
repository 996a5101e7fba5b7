// The API's composition root: every part the routes and services share, built once per process from config.
import { createL1Cache, type L1Cache } from '../../libs/cache/index.js';
import { localHostNames, type Config } from '../../libs/config/index.js';
import type { Logger } from '../../libs/logger/index.js';
import { startHistoryDrainer, type HistoryDrainer } from '../../libs/memory/index.js';
import { countingCancels } from '../../libs/metrics/index.js';
import { createDeliveries, createProducer, createRedis, createReplicaAck, hydraKeys, queueRedisTarget, type Deliveries, type HydraKeys, type JobLifecycle, type Producer, type RedisClient, type ReplicaAck } from '../../libs/queue/index.js';
import { cachedNodeList, keepFresh, NODE_LIST_TTL_MS, NodeRegistry, REGISTRY_SNAPSHOT_MAX_AGE_MS, type CachedNodeList, type NodeView } from '../../libs/registry/index.js';
import { createCoordinator, type Coordinator } from '../../libs/workflows/index.js';
import { createApiMetrics, type ApiMetrics } from './http-metrics.js';
import { Waiters } from './waiters.js';
import { BlockingPool } from './blocking-pool.js';

export interface ApiContext {
  config: Config;
  logger: Logger;
  keys: HydraKeys;
  redis: RedisClient;
  producer: Producer;
  /** The job lifecycle protocol (index, cancel, done message), over the producer's queues. */
  lifecycle: JobLifecycle;
  /** With REDIS_MIN_REPLICAS_ACK: confirms that replicas hold an added job before it is accepted; else null. */
  replicaAck: ReplicaAck | null;
  registry: NodeRegistry;
  waiters: Waiters;
  /**
   * Registered nodes, cached for a quarter second: routing at submit does not need fresher than heartbeats. Dropped
   * when the registry announces a change; `invalidate` drops it by hand (a request naming a node it lacks).
   */
  nodes: CachedNodeList<NodeView>;
  /** The L1 response cache (possibly in its own Redis, CACHE_REDIS_URL). */
  cache: L1Cache;
  coordinator: Coordinator;
  /** The results history (libs/memory): drains the record stream into its store and answers GET /v1/history; null with MEMORY_URL=off. */
  history: HistoryDrainer | null;
  /** Prometheus metrics: this process's (HTTP, Redis commands) and the cluster-wide collector (GET /metrics). */
  metrics: ApiMetrics;
  /** Webhook deliveries (queued when something with a callback_url ends) and the batch records (libs/queue/deliveries.ts). */
  deliveries: Deliveries;
  /** Host names that count as "local" for prefer_local. */
  localHosts: readonly string[];
  /** Connections for blocking readers (one per stream client at a time), kept for the next reader when left idle. */
  blocking: BlockingPool;
  /** Why the producer connection is not ready (its last connection error), or null while it is. For /healthz. */
  redisError(): string | null;
  close(): Promise<void>;
}

export async function createApiContext(config: Config, logger: Logger): Promise<ApiContext> {
  const keys = hydraKeys(config.QUEUE_PREFIX);
  const target = queueRedisTarget(config);
  const redis = createRedis(target, 'producer');
  const sub = createRedis(target, 'subscriber');
  let lastErr = '';
  let connError: string | null = null;
  for (const c of [redis, sub]) {
    c.on('error', (e: Error) => {
      if (e.message !== lastErr) logger.warn({ err: e.message }, 'redis connection error');
      lastErr = e.message;
      if (c === redis && redis.status !== 'ready') connError = e.message;
    });
  }
  redis.on('ready', () => {
    if (connError !== null) logger.info('redis connection ready again');
    connError = null;
    lastErr = '';
  });
  // The producer connection never queues commands (fail fast), so wait for its first connection; if that fails
  // (Redis down, wrong password, TLS refused) the API still starts and answers 503 until Redis is reachable.
  await new Promise<void>((resolve) => {
    redis.once('ready', resolve);
    redis.once('error', () => resolve());
  });
  const waiters = new Waiters(sub, keys);
  const blocking = new BlockingPool(() => createRedis(target, 'subscriber'));
  if (redis.status === 'ready') await waiters.start();
  else void waiters.start().catch((e: Error) => logger.warn({ err: e.message }, 'could not subscribe to job completions'));
  const producer = createProducer(config, { redis });
  const replicaAck = createReplicaAck(config, { redis, keys });
  await replicaAck?.started();
  const registry = new NodeRegistry(redis, keys);
  // Routing needs no fresher than heartbeats: the shared registry snapshot (one key; see REGISTRY_SNAPSHOT_MAX_AGE_MS).
  const nodes = cachedNodeList({ list: () => registry.shared(REGISTRY_SNAPSHOT_MAX_AGE_MS) }, NODE_LIST_TTL_MS);
  // Kept under twice its ttl old between requests, so no submit waits for a registry read (node-list.ts); dropped at
  // once when the registry changes in what routing looks at (a join, a leave, a health or model change), and on a
  // reconnection, after which such news may have been missed.
  const stopFresh = keepFresh(nodes, NODE_LIST_TTL_MS / 2);
  sub.on('message', (channel: string) => {
    if (channel === keys.channels.registry) nodes.invalidate();
  });
  sub.on('ready', () => nodes.invalidate());
  const registryNews = sub.subscribe(keys.channels.registry).catch((e: Error) => void logger.warn({ err: e.message }, 'could not subscribe to registry changes'));
  if (redis.status === 'ready') await registryNews;
  const cache = createL1Cache(config, { redis, keys, logger });
  const coordinator = createCoordinator(config, { redis, producer, nodes, cache, logger: logger.child({ part: 'workflows' }) });
  const metrics = createApiMetrics(config, { redis, keys, nodes });
  const history = startHistoryDrainer(config, { redis, keys, logger: logger.child({ part: 'history' }) });
  const deliveries = createDeliveries(config, { redis, keys });
  return {
    config,
    logger,
    keys,
    redis,
    producer,
    // Cancels of jobs that never started are counted here: no worker sees them end.
    lifecycle: countingCancels(producer.lifecycle, metrics.store, logger),
    replicaAck,
    registry,
    waiters,
    nodes,
    cache,
    coordinator,
    history,
    metrics,
    deliveries,
    localHosts: localHostNames(),
    blocking,
    redisError: () => (redis.status === 'ready' ? null : (connError ?? `connection ${redis.status}`)),
    async close() {
      stopFresh();
      waiters.close();
      await coordinator.close();
      await history?.close();
      await producer.close();
      await deliveries.close();
      cache.close();
      replicaAck?.close();
      sub.disconnect();
      blocking.close();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
