// The L1 cache store: entries with a TTL and a size cap in the cache Redis, hit/miss counters in the queue Redis.
import type { Logger } from '../logger/index.js';
import { cacheRedisTarget, createRedis, type RedisClient } from '../queue/index.js';

export interface CacheKeys {
  /** Key of one entry (in the cache Redis). */
  cache: (hash: string) => string;
  /** Hash of counters (in the queue Redis, which never evicts, so counts survive LRU pressure). */
  cacheStats: string;
}

export interface CacheEntry<T> {
  value: T;
  /** ms since epoch. */
  stored_at: number;
  /** Job that produced the value, if any. */
  source_job_id?: string;
}

export interface CacheStats {
  hits: number;
  misses: number;
  stores: number;
  /** Values not stored because they exceeded the per-entry cap. */
  too_large: number;
  /** Lookups or stores that failed because the cache Redis did not answer (counted as misses). */
  errors: number;
  hit_ratio: number;
}

export interface L1CacheOptions {
  /** Where entries live: the queue Redis, or a separate one (CACHE_REDIS_URL) configured for LRU eviction. */
  store: RedisClient;
  /** Where counters live. */
  stats: RedisClient;
  keys: CacheKeys;
  ttlS: number;
  maxEntryBytes: number;
  /** Called when the cache Redis fails; the request goes on without the cache. */
  onError?: (op: 'get' | 'put', err: Error) => void;
}

export class L1Cache {
  constructor(private readonly o: L1CacheOptions) {}

  /** The entry for `hash`, or null (a miss). A failing cache Redis counts as a miss, never as an error. */
  async get<T>(hash: string): Promise<CacheEntry<T> | null> {
    let raw: string | null;
    try {
      raw = await this.o.store.get(this.o.keys.cache(hash));
    } catch (e) {
      this.o.onError?.('get', e as Error);
      await this.count('errors', 'misses');
      return null;
    }
    let entry: CacheEntry<T> | null = null;
    if (raw) {
      try {
        entry = JSON.parse(raw) as CacheEntry<T>;
      } catch {
        entry = null;
      }
    }
    await this.count(entry ? 'hits' : 'misses');
    return entry;
  }

  /** Store a value for `ttlS`; values larger than `maxEntryBytes` (UTF-8 JSON) are not stored. */
  async put(hash: string, value: unknown, sourceJobId?: string): Promise<'stored' | 'too_large' | 'error'> {
    const entry: CacheEntry<unknown> = { value, stored_at: Date.now(), ...(sourceJobId ? { source_job_id: sourceJobId } : {}) };
    const json = JSON.stringify(entry);
    if (Buffer.byteLength(json) > this.o.maxEntryBytes) {
      await this.count('too_large');
      return 'too_large';
    }
    try {
      await this.o.store.set(this.o.keys.cache(hash), json, 'EX', this.o.ttlS);
    } catch (e) {
      this.o.onError?.('put', e as Error);
      await this.count('errors');
      return 'error';
    }
    await this.count('stores');
    return 'stored';
  }

  async stats(): Promise<CacheStats> {
    const h = await this.o.stats.hgetall(this.o.keys.cacheStats);
    const n = (k: string) => Number(h[k] ?? 0);
    const hits = n('hits');
    const misses = n('misses');
    return { hits, misses, stores: n('stores'), too_large: n('too_large'), errors: n('errors'), hit_ratio: hits + misses ? Math.round((hits / (hits + misses)) * 1000) / 1000 : 0 };
  }

  private async count(...fields: string[]): Promise<void> {
    const m = this.o.stats.multi();
    for (const f of fields) m.hincrby(this.o.keys.cacheStats, f, 1);
    await m.exec().catch(() => undefined);
  }
}

/**
 * The L1 cache of a process. The cache may live in its own Redis (CACHE_REDIS_URL or CACHE_REDIS_SENTINEL_NAME; LRU eviction),
 * since the queue's Redis must never evict; counters stay in the queue Redis. `close()` ends the separate connection.
 */
export function createL1Cache(
  config: Parameters<typeof cacheRedisTarget>[0] & { CACHE_TTL_S: number; CACHE_MAX_ENTRY_BYTES: number },
  deps: { redis: RedisClient; keys: CacheKeys; logger: Logger },
): L1Cache & { close(): void } {
  const target = cacheRedisTarget(config);
  const separate = target !== null;
  const store = target ? createRedis(target, 'producer') : deps.redis;
  if (separate) store.on('error', (e: Error) => deps.logger.warn({ err: e.message }, 'cache redis connection error'));
  const cache = new L1Cache({
    store,
    stats: deps.redis,
    keys: deps.keys,
    ttlS: config.CACHE_TTL_S,
    maxEntryBytes: config.CACHE_MAX_ENTRY_BYTES,
    onError: (op, err) => deps.logger.warn({ op, err: err.message }, 'L1 cache unavailable; going on without it'),
  });
  return Object.assign(cache, { close: () => void (separate && store.disconnect()) });
}
