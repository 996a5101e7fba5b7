// A batch's record in Redis (POST /v1/batches): a hash of its fields and end counters, the list of its items' queue and
// job id, and each ended item's state. Counts come from the counters the end of each item bumps (one Lua call,
// scripts/batch-settle.lua), never from walking every job; only the split of the open items into waiting and active
// reads job hashes, in one pipeline, and a page of results reads that page's jobs only.
import type { ChainableCommander } from 'ioredis';
import type { RedisClient } from './connection.js';
import type { HydraKeys } from './keys.js';
import { decodeFailure, type Failure } from './lifecycle.js';
import { loadScript, QUEUE_SCRIPTS, type ScriptCall } from './scripts.js';

const BATCH_END_STATES = ['completed', 'failed', 'cancelled'] as const;
export type BatchItemEnd = (typeof BATCH_END_STATES)[number];

export interface BatchRecord {
  id: string;
  total: number;
  completed: number;
  failed: number;
  cancelled: number;
  created_at: number;
  ended_at: number | null;
  cancelled_at: number | null;
  callback_url: string | null;
  /** 'running' until the last item ended; then 'completed', or 'cancelled' when a cancel came first. */
  state: 'running' | 'completed' | 'cancelled';
}

/** One item as a page of results reads it: its job's stored answer or failure, or where it stands. */
export interface BatchItemRaw {
  index: number;
  jobId: string;
  /** Its end as counted, or null while it runs or waits. */
  end: BatchItemEnd | null;
  /** The job has been taken by a node at least once (BullMQ's processedOn). */
  started: boolean;
  /** BullMQ's returnvalue (JSON), or null. */
  result: unknown;
  failure: Failure | null;
}

/** Open items whose jobs are looked at to split them into waiting and active; beyond these, open items count as waiting. */
const BATCH_ACTIVE_SCAN = 1000;

/** "queue jobId": one list entry per item (queue names and job ids hold no spaces). */
const itemEntry = (queue: string, jobId: string) => `${queue} ${jobId}`;
const splitEntry = (e: string): { queue: string; jobId: string } => {
  const at = e.indexOf(' ');
  return { queue: e.slice(0, at), jobId: e.slice(at + 1) };
};

const num = (v: string | undefined): number => Number(v ?? 0) || 0;

export class BatchStore {
  private settleScript: ScriptCall<string[]> | null = null;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: HydraKeys,
    /** JOB_RETENTION_S: a batch is kept this long after its end, and 7x this while it runs (as the job index is). */
    private readonly retentionS: number,
  ) {}

  /** Write a new batch's record into `c` (the same round trip as its jobs' index entries). */
  create<C extends ChainableCommander>(c: C, b: { id: string; created_at: number; callback_url?: string | undefined; items: readonly { queue: string; jobId: string }[] }): C {
    const k = this.keys;
    const ttl = this.retentionS * 7;
    c.hset(k.batch(b.id), {
      id: b.id,
      total: String(b.items.length),
      remaining: String(b.items.length),
      completed: '0',
      failed: '0',
      cancelled: '0',
      state: 'running',
      created_at: String(b.created_at),
      ...(b.callback_url ? { callback_url: b.callback_url } : {}),
    });
    c.rpush(k.batchItems(b.id), ...b.items.map((i) => itemEntry(i.queue, i.jobId)));
    c.expire(k.batch(b.id), ttl);
    c.expire(k.batchItems(b.id), ttl);
    return c;
  }

  /** Undo `create` (its jobs could not be added). */
  async discard(id: string): Promise<void> {
    await this.redis.del(this.keys.batch(id), this.keys.batchItems(id), this.keys.batchEnds(id));
  }

  /**
   * Item `index` ended in `state`: counted once. Returns 'ended' with the batch's final state and callback URL when it
   * was the last open item (the caller delivers the batch's callback), else what the script found.
   */
  async settle(id: string, index: number, state: BatchItemEnd, now: number): Promise<{ code: 'gone' | 'again' | 'open' } | { code: 'ended'; state: 'completed' | 'cancelled'; callbackUrl: string | null }> {
    this.settleScript ??= loadScript<string[]>(this.redis, QUEUE_SCRIPTS, 'batch-settle');
    const k = this.keys;
    const r = await this.settleScript([k.batch(id), k.batchEnds(id), k.batchItems(id)], [index, state, now, this.retentionS * 7, this.retentionS]);
    const code = r[0];
    if (code === 'ended') return { code, state: r[1] === 'cancelled' ? 'cancelled' : 'completed', callbackUrl: r[2] || null };
    if (code === 'gone' || code === 'again' || code === 'open') return { code };
    throw new Error(`script batch-settle answered ${JSON.stringify(r)}`);
  }

  async read(id: string): Promise<BatchRecord | null> {
    const h = await this.redis.hgetall(this.keys.batch(id));
    if (!h.id) return null;
    return {
      id: h.id,
      total: num(h.total),
      completed: num(h.completed),
      failed: num(h.failed),
      cancelled: num(h.cancelled),
      created_at: num(h.created_at),
      ended_at: h.ended_at ? num(h.ended_at) : null,
      cancelled_at: h.cancelled_at ? num(h.cancelled_at) : null,
      callback_url: h.callback_url || null,
      state: h.state === 'completed' || h.state === 'cancelled' ? h.state : 'running',
    };
  }

  /** Mark a running batch cancelled; false when it had ended or was cancelled already. */
  async markCancelled(id: string, now: number): Promise<boolean> {
    const [[, ended], [, set]] = (await this.redis.multi().hexists(this.keys.batch(id), 'ended_at').hsetnx(this.keys.batch(id), 'cancelled_at', String(now)).exec()) as [[null, number], [null, number]];
    return ended === 0 && set === 1;
  }

  /** Of a batch's open items (at most BATCH_ACTIVE_SCAN of them), how many have been taken by a node: one pipeline. */
  async countStarted(id: string): Promise<number> {
    const k = this.keys;
    const [[, entries], [, ends]] = (await this.redis.multi().lrange(k.batchItems(id), 0, -1).hkeys(k.batchEnds(id)).exec()) as [[null, string[]], [null, string[]]];
    const ended = new Set(ends.map(Number));
    const open = entries.flatMap((e, i) => (ended.has(i) ? [] : [splitEntry(e)])).slice(0, BATCH_ACTIVE_SCAN);
    if (open.length === 0) return 0;
    const p = this.redis.pipeline();
    for (const o of open) p.hexists(k.queueKey(o.queue, o.jobId), 'processedOn');
    const res = (await p.exec()) ?? [];
    return res.reduce((n, [, v]) => n + (v === 1 ? 1 : 0), 0);
  }

  /** Items `offset`..`offset + limit - 1` in request order, with their jobs' answers: two round trips. */
  async page(id: string, offset: number, limit: number): Promise<BatchItemRaw[]> {
    const k = this.keys;
    const entries = await this.redis.lrange(k.batchItems(id), offset, offset + limit - 1);
    if (entries.length === 0) return [];
    const items = entries.map(splitEntry);
    const p = this.redis.pipeline();
    p.hmget(k.batchEnds(id), ...items.map((_, i) => String(offset + i)));
    for (const it of items) p.hmget(k.queueKey(it.queue, it.jobId), 'returnvalue', 'failedReason', 'processedOn', 'finishedOn');
    const res = (await p.exec()) ?? [];
    const ends = (res[0]?.[1] ?? []) as (string | null)[];
    const fields = items.map((_, i) => (res[i + 1]?.[1] ?? []) as (string | null)[]);
    await this.followMoved(items, fields);
    return items.map((it, i) => {
      const [rv, reason, processedOn] = fields[i]!;
      const end = (BATCH_END_STATES as readonly string[]).includes(ends[i] ?? '') ? (ends[i] as BatchItemEnd) : null;
      let result: unknown = null;
      if (end === 'completed' && rv) {
        try {
          result = JSON.parse(rv);
        } catch {
          result = null;
        }
      }
      return { index: offset + i, jobId: it.jobId, end, started: Boolean(processedOn), result, failure: end === 'failed' && reason ? decodeFailure(reason) : null };
    });
  }

  /**
   * An item pinned to a node that went away was moved to its class queue (apps/worker/rehome.ts): where its job hash is
   * missing from the queue recorded at submit, the job index names the queue it is in now. One more round trip, only then.
   */
  private async followMoved(items: { queue: string; jobId: string }[], fields: (string | null)[][]): Promise<void> {
    const missing = items.flatMap((it, i) => (fields[i]!.every((v) => v === null) ? [i] : []));
    if (missing.length === 0) return;
    const queues = await this.redis.mget(...missing.map((i) => this.keys.jobIndex(items[i]!.jobId)));
    const moved = missing.flatMap((i, j) => (queues[j] && queues[j] !== items[i]!.queue ? [{ i, queue: queues[j] }] : []));
    if (moved.length === 0) return;
    const p = this.redis.pipeline();
    for (const m of moved) p.hmget(this.keys.queueKey(m.queue, items[m.i]!.jobId), 'returnvalue', 'failedReason', 'processedOn', 'finishedOn');
    const res = (await p.exec()) ?? [];
    moved.forEach((m, j) => (fields[m.i] = (res[j]?.[1] ?? []) as (string | null)[]));
  }

  /** Every item's job id and queue, in request order (cancel walks them). */
  async items(id: string): Promise<{ index: number; queue: string; jobId: string; ended: boolean }[]> {
    const k = this.keys;
    const [[, entries], [, ends]] = (await this.redis.multi().lrange(k.batchItems(id), 0, -1).hkeys(k.batchEnds(id)).exec()) as [[null, string[]], [null, string[]]];
    const ended = new Set(ends.map(Number));
    return entries.map((e, index) => ({ index, ...splitEntry(e), ended: ended.has(index) }));
  }
}
