// What the API's routes share: Redis connections, the producer, the node registry and the job-completion waiters.
import type { Redis } from 'ioredis';
import type { Config } from '../../libs/config/index.js';
import type { Logger } from '../../libs/logger/index.js';
import { createRedis, hydraKeys, Producer, type HydraKeys } from '../../libs/queue/index.js';
import { NodeRegistry, type NodeView } from '../../libs/registry/index.js';
import { Waiters } from './waiters.js';

export interface ApiContext {
  config: Config;
  logger: Logger;
  keys: HydraKeys;
  redis: Redis;
  producer: Producer;
  registry: NodeRegistry;
  waiters: Waiters;
  /** Registered nodes, cached for a quarter second: routing at submit does not need fresher than heartbeats. */
  nodes(): Promise<NodeView[]>;
  /** A fresh connection for a blocking reader (one per SSE client); caller disconnects it. */
  blockingConnection(): Redis;
  /** Why the producer connection is not ready (its last connection error), or null while it is. For /healthz. */
  redisError(): string | null;
  close(): Promise<void>;
}

export async function createApiContext(config: Config, logger: Logger): Promise<ApiContext> {
  const keys = hydraKeys(config.QUEUE_PREFIX);
  const redis = createRedis(config.REDIS_URL, 'producer');
  const sub = createRedis(config.REDIS_URL, 'subscriber');
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
  if (redis.status === 'ready') await waiters.start();
  else void waiters.start().catch((e: Error) => logger.warn({ err: e.message }, 'could not subscribe to job completions'));
  const producer = new Producer({ redis, keys, attempts: config.JOB_ATTEMPTS, backoffMs: config.BACKOFF_MS, retentionS: config.JOB_RETENTION_S });
  const registry = new NodeRegistry(redis, keys);
  let cached: { at: number; nodes: Promise<NodeView[]> } | null = null;
  return {
    config,
    logger,
    keys,
    redis,
    producer,
    registry,
    waiters,
    nodes() {
      const now = Date.now();
      if (!cached || now - cached.at > 250) {
        const nodes = registry.list(now);
        cached = { at: now, nodes };
        nodes.catch(() => (cached = null));
      }
      return cached.nodes;
    },
    blockingConnection: () => createRedis(config.REDIS_URL, 'subscriber'),
    redisError: () => (redis.status === 'ready' ? null : (connError ?? `connection ${redis.status}`)),
    async close() {
      waiters.close();
      await producer.close();
      sub.disconnect();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
