// The history drainer: reads the record stream with a consumer group in batches, stores each batch in one transaction,
// then XACKs and trims what it stored. A store that is away only grows the stream (up to MEMORY_STREAM_MAX): the
// drainer retries with backoff and catches up; a batch redelivered after a crash is skipped by the store's uid key.
// One process drains at a time (a Redis lock), so several API replicas do not split a SQLite history between them.
// With MEMORY_EMBED_MODEL, the lock holder also has the stored rows embedded (history-embedder.ts), beside the loop.
import { randomUUID } from 'node:crypto';
import { localHostNames, type Config } from '../config/index.js';
import type { NodeRecord } from '../core/index.js';
import type { Logger } from '../logger/index.js';
import { createProducer, throwIfFailed, type HydraKeys, type Producer, type RedisClient } from '../queue/index.js';
import { cachedNodeList, NodeRegistry, REGISTRY_SNAPSHOT_MAX_AGE_MS } from '../registry/index.js';
import { ClusterEmbedder, type Embedder } from './embedder.js';
import { createHistoryStore, createVectorStore, memoryTarget } from './factory.js';
import { HistoryEmbedder } from './history-embedder.js';
import { parseRecord, type HistoryRecord } from './record.js';
import type { HistoryStore } from './store.js';
import type { VectorStore } from './vectors.js';
import { RECORD_FIELD } from './writer.js';
import { WakeableSleep } from './wakeable-sleep.js';

/** Records per read and per transaction. */
export const DRAIN_BATCH = 500;
const GROUP = 'history';
/** One consumer name for every holder of the lock: a new holder reads what the last one left unacknowledged. */
const CONSUMER = 'drainer';
const LOCK_MS = 10_000;
/** Wait between reads of an empty stream, ms (a read of a full batch is followed at once by the next). */
const IDLE_POLL_MS = 200;
const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 2000;

/** Takes the lock when free, renews it when held by `token`; 1 when held now. */
const LOCK_SCRIPT = `
local v = redis.call('GET', KEYS[1])
if v == false then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0`;
const UNLOCK_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

export interface DrainStatus {
  /** Whether the store is open (SQLite file, PostgreSQL reachable at least once). */
  open: boolean;
  /** Whether this process holds the drain lock. */
  draining: boolean;
  stored: number;
  /** Stream entries that were not records (another version, or trimmed away while pending). */
  skipped: number;
  last_error: string | null;
  last_error_at: number | null;
}

type StreamReply = [string, [string, string[] | null][]][] | null;

export interface DrainerDeps {
  redis: RedisClient;
  keys: Pick<HydraKeys, 'history' | 'historyDrainLock'>;
  logger: Logger;
  /** Opens the store (retried with backoff until it succeeds). */
  open: () => Promise<HistoryStore>;
  /** MEMORY_RETENTION_DAYS as ms: rows older are pruned every `pruneEveryMs` by the lock holder; 0 or absent = keep. */
  retentionMs?: number;
  pruneEveryMs?: number;
  /** Vectors of the stored rows (MEMORY_EMBED_MODEL): the vector store and the embedder; absent = vectors off. */
  vectors?: { open: () => Promise<VectorStore>; embedder: Embedder; namespace?: string; onClose?: () => Promise<void> };
}

export class HistoryDrainer {
  private store: HistoryStore | null = null;
  private readonly token = randomUUID();
  private lockedAt = 0;
  private groupReady = false;
  private recover = true;
  private closed = false;
  private readonly pause = new WakeableSleep();
  private loop: Promise<void> | null = null;
  private failing = false;
  private readonly st: DrainStatus = { open: false, draining: false, stored: 0, skipped: 0, last_error: null, last_error_at: null };
  private readonly embedder: HistoryEmbedder | null;

  constructor(private readonly d: DrainerDeps) {
    this.embedder = d.vectors
      ? new HistoryEmbedder({ ...d.vectors, logger: d.logger, active: () => this.st.draining && this.store !== null && !this.failing })
      : null;
  }

  start(): this {
    this.loop ??= this.run();
    this.embedder?.start();
    if (this.d.retentionMs && !this.pruneTimer) {
      // Retention: the lock holder deletes what is older, once soon after start and then every hour.
      const every = this.d.pruneEveryMs ?? 3_600_000;
      const tick = (): void =>
        void this.pruneNow().finally(() => {
          if (!this.closed) this.pruneTimer = setTimeout(tick, every).unref();
        });
      this.pruneTimer = setTimeout(tick, Math.min(every, 10_000)).unref();
    }
    return this;
  }

  private pruneTimer: NodeJS.Timeout | null = null;

  /** Delete rows past MEMORY_RETENTION_DAYS (and their vectors) when this process drains; the counts, or null. */
  async pruneNow(now = Date.now()): Promise<{ rows: number; vectors: number } | null> {
    if (!this.d.retentionMs || !this.st.draining || !this.store) return null;
    try {
      const r = await this.store.prune(now - this.d.retentionMs);
      if (r.rows > 0) this.d.logger.info({ rows: r.rows, vectors: r.vectors, retention_days: this.d.retentionMs / 86_400_000 }, 'history pruned (MEMORY_RETENTION_DAYS)');
      return r;
    } catch (e) {
      this.d.logger.warn({ err: (e as Error).message }, 'history prune failed; tried again within the hour');
      return null;
    }
  }

  /** The history's vectors (null with vectors off): its store for searches, and its status. */
  get vectors(): HistoryEmbedder | null {
    return this.embedder;
  }

  /** The open store, or null until it opened. */
  get current(): HistoryStore | null {
    return this.store;
  }

  status(): DrainStatus {
    return { ...this.st };
  }

  private async run(): Promise<void> {
    let backoff = BACKOFF_MIN_MS;
    while (!this.closed) {
      try {
        if (!this.store) {
          this.store = await this.d.open();
          this.st.open = true;
        }
        if (!(await this.holdLock())) {
          await this.pause.sleep(LOCK_MS / 2);
          continue;
        }
        const n = await this.drainOnce(this.store);
        if (this.failing) this.d.logger.info({ stored: this.st.stored }, 'history store reachable again; catching up');
        this.failing = false;
        backoff = BACKOFF_MIN_MS;
        if (n < DRAIN_BATCH && !this.recover) await this.pause.sleep(IDLE_POLL_MS);
      } catch (e) {
        const err = e as Error;
        // Unacknowledged entries stay pending: read them again first. A flushed Redis loses the group: make it again.
        this.recover = true;
        this.groupReady = false;
        this.st.last_error = err.message;
        this.st.last_error_at = Date.now();
        if (!this.failing) this.d.logger.warn({ err: err.message }, 'history not stored yet; retrying (records wait in Redis)');
        this.failing = true;
        await this.pause.sleep(backoff);
        backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
      }
    }
  }

  private async holdLock(): Promise<boolean> {
    const now = Date.now();
    if (this.st.draining && now - this.lockedAt < LOCK_MS / 3) return true;
    const held = (await this.d.redis.eval(LOCK_SCRIPT, 1, this.d.keys.historyDrainLock, this.token, LOCK_MS)) === 1;
    if (held && !this.st.draining) this.recover = true;
    this.st.draining = held;
    if (held) this.lockedAt = now;
    return held;
  }

  /** One batch: read, store, acknowledge, trim. The number of entries handled. */
  private async drainOnce(store: HistoryStore): Promise<number> {
    const { redis } = this.d;
    const key = this.d.keys.history;
    if (!this.groupReady) {
      await redis.xgroup('CREATE', key, GROUP, '0', 'MKSTREAM').catch((e: Error) => {
        if (!/BUSYGROUP/.test(e.message)) throw e;
      });
      this.groupReady = true;
    }
    const reply = (await redis.xreadgroup('GROUP', GROUP, CONSUMER, 'COUNT', DRAIN_BATCH, 'STREAMS', key, this.recover ? '0' : '>')) as StreamReply;
    const entries = reply?.[0]?.[1] ?? [];
    if (this.recover && entries.length < DRAIN_BATCH) this.recover = false;
    if (entries.length === 0) return 0;
    const records: HistoryRecord[] = [];
    for (const [, fields] of entries) {
      const i = fields ? fields.indexOf(RECORD_FIELD) : -1;
      const rec = fields && i >= 0 && i % 2 === 0 ? parseRecord(fields[i + 1] ?? '') : null;
      if (rec) records.push(rec);
      else this.st.skipped++;
    }
    const stored = await store.insert(records);
    this.st.stored += stored;
    if (stored > 0) this.embedder?.notify();
    const ids = entries.map(([id]) => id);
    // Every entry up to the last one read is stored and acknowledged now (pending ones are read first, in order): trim
    // them (MINID keeps ids >= its argument, so the one just after the last).
    const [ms, seq] = ids.at(-1)!.split('-');
    const res = await redis.pipeline().xack(key, GROUP, ...ids).xtrim(key, 'MINID', `${ms}-${BigInt(seq ?? '0') + 1n}`).exec();
    throwIfFailed(res);
    return entries.length;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.pruneTimer) clearTimeout(this.pruneTimer);
    this.pause.wake();
    await this.loop?.catch(() => undefined);
    await this.embedder?.close();
    await this.d.vectors?.onClose?.().catch(() => undefined);
    if (this.st.draining) await this.d.redis.eval(UNLOCK_SCRIPT, 1, this.d.keys.historyDrainLock, this.token).catch(() => undefined);
    await this.store?.close().catch(() => undefined);
  }
}

/**
 * The drainer for MEMORY_URL (null with off), started: it opens the store (retrying while it cannot) and drains while it
 * holds the lock. `open` defaults to createHistoryStore. With MEMORY_EMBED_MODEL it also embeds the stored rows, through
 * `producer` and `nodes` (by default its own producer on `redis` and the registry snapshot).
 */
export function startHistoryDrainer(
  config: Config,
  deps: Omit<DrainerDeps, 'open' | 'keys' | 'vectors'> & { keys: HydraKeys; open?: DrainerDeps['open']; producer?: Producer; nodes?: () => Promise<NodeRecord[]> },
): HistoryDrainer | null {
  if (memoryTarget(config).kind === 'off') return null;
  const open = deps.open ?? (async () => (await createHistoryStore(config, deps.logger))!);
  const retentionMs = config.MEMORY_RETENTION_DAYS * 86_400_000;
  const model = config.MEMORY_EMBED_MODEL;
  if (!model) return new HistoryDrainer({ ...deps, open, retentionMs }).start();
  const own = deps.producer ? null : createProducer(config, { redis: deps.redis });
  const producer = deps.producer ?? own!;
  const registry = new NodeRegistry(deps.redis, deps.keys);
  const nodes = deps.nodes ?? cachedNodeList({ list: () => registry.shared(REGISTRY_SNAPSHOT_MAX_AGE_MS) });
  const embedder = new ClusterEmbedder({ producer, nodes, localHosts: localHostNames(), model });
  const vectors = { open: async () => (await createVectorStore(config, deps.logger))!, embedder, onClose: async () => await own?.close() };
  return new HistoryDrainer({ ...deps, open, vectors, retentionMs }).start();
}
