// The API's L1 cache and workflow coordinator: made once per ApiContext, closed when its Redis connection is quit.
import os from 'node:os';
import { L1Cache, type CacheEntry } from '../../libs/cache/index.js';
import type { InferenceCall, InferResult } from '../../libs/core/index.js';
import { createRedis } from '../../libs/queue/index.js';
import { Coordinator } from '../../libs/workflows/index.js';
import type { ApiContext } from './context.js';

export interface WorkflowParts {
  cache: L1Cache;
  coordinator: Coordinator;
}

const made = new WeakMap<ApiContext, WorkflowParts>();

export const LOCAL_HOSTS = [os.hostname(), 'localhost', '127.0.0.1'];

export function workflowParts(ctx: ApiContext): WorkflowParts {
  const have = made.get(ctx);
  if (have) return have;
  const { config, logger } = ctx;
  // The cache may live in its own Redis (LRU eviction), since the queue's Redis must never evict.
  const separate = config.CACHE_REDIS_URL !== undefined && config.CACHE_REDIS_URL !== config.REDIS_URL;
  const store = separate ? createRedis(config.CACHE_REDIS_URL!, 'producer') : ctx.redis;
  if (separate) store.on('error', (e: Error) => logger.warn({ err: e.message }, 'cache redis connection error'));
  const cache = new L1Cache({
    store,
    stats: ctx.redis,
    keys: ctx.keys,
    ttlS: config.CACHE_TTL_S,
    maxEntryBytes: config.CACHE_MAX_ENTRY_BYTES,
    onError: (op, err) => logger.warn({ op, err: err.message }, 'L1 cache unavailable; going on without it'),
  });
  const coordinator = new Coordinator({
    redis: ctx.redis,
    keys: ctx.keys,
    producer: ctx.producer,
    nodes: () => ctx.nodes(),
    localHosts: LOCAL_HOSTS,
    cache,
    logger: logger.child({ part: 'workflows' }),
    retentionS: config.JOB_RETENTION_S,
  });
  ctx.redis.once('end', () => {
    void coordinator.close();
    if (separate) store.disconnect();
  });
  const parts = { cache, coordinator };
  made.set(ctx, parts);
  return parts;
}

/** A job answered from the L1 cache: the job view's shape, `cached: true`, no queue, the original routing decision. */
export function cachedJobView(call: InferenceCall, priority: number, key: string, hit: CacheEntry<InferResult>) {
  const stored = new Date(hit.stored_at).toISOString();
  return {
    id: hit.source_job_id ?? null,
    state: 'completed',
    cached: true,
    queue: null,
    type: call.type,
    model: call.model,
    priority,
    attempts_made: 0,
    submitted_at: new Date().toISOString(),
    started_at: null,
    finished_at: stored,
    result: { ...hit.value, cached: true },
    cache: { hit: true, key, stored_at: stored, source_job_id: hit.source_job_id ?? null },
    routing_decision: hit.value.routing_decision,
  };
}
