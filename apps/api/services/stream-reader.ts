// Reading a job's or a workflow's Redis Stream as an async iterator of entries, resumable from an entry id, with the
// fallback for a subject that ended without a terminal entry. For jobs it also counts readers across API replicas and
// cancels a job whose last reader left and did not come back within STREAM_RECONNECT_GRACE_MS (a reader this replica
// handed over to another one, draining, does not count as leaving). Framings (SSE, NDJSON, OpenAI SSE) iterate it;
// none of them touches Redis.
import { isTerminal, parseStreamEntry, type StreamEntry } from '../../../libs/queue/index.js';
import type { ApiContext } from '../context.js';
import { viewJob } from '../job-view.js';
import { cancelJob } from './jobs.js';

/** An entry, or `idle`: nothing new for one block interval (a framing may send a keep-alive). */
export type StreamItem = StreamEntry | { id: ''; event: 'idle'; data: ''; node?: undefined };

export interface StreamSource {
  key: string;
  /** How long one XREAD blocks before `onIdle` is asked (ms). */
  blockMs: number;
  /**
   * Nothing new for `blockMs`: a terminal entry when the subject ended without one in its stream (the stream
   * expired, or whoever should have written it died), or null to keep waiting.
   */
  onIdle: () => Promise<{ event: 'done' | 'error'; data: unknown } | null>;
}

/** Entry id to resume after: a Last-Event-ID header or query value, or the start. */
export const resumeFrom = (raw: unknown): string => (typeof raw === 'string' && /^\d+-\d+$/.test(raw) ? raw : '0');

export interface StreamReader extends AsyncIterable<StreamItem> {
  /** Whether the terminal entry was read. */
  readonly ended: boolean;
  /**
   * Stop reading (the client left, or the framing is done); safe to call twice. `handoff`: this replica is draining
   * and told the client to resume elsewhere, so the reader leaving must not cancel the job.
   */
  close(opts?: { handoff?: boolean }): void;
}

/** Read `src` from after entry `from` until its terminal entry or `close()`. One blocking connection per reader. */
export function readStream(ctx: ApiContext, src: StreamSource, from: string, onClose?: (ended: boolean, handoff: boolean) => void): StreamReader {
  const conn = ctx.blocking.take();
  let open = true;
  let ended = false;
  let last = from;
  /** An XREAD of this reader's is in flight: its connection cannot serve another reader until it returns. */
  let reading = false;
  const close = (opts: { handoff?: boolean } = {}) => {
    if (!open) return;
    open = false;
    ctx.blocking.give(conn, !reading);
    onClose?.(ended, opts.handoff === true);
  };
  async function* items(): AsyncGenerator<StreamItem> {
    try {
      while (open && !ended) {
        reading = true;
        const got = (await conn.xread('COUNT', '500', 'BLOCK', String(src.blockMs), 'STREAMS', src.key, last).finally(() => (reading = false))) as [string, [string, string[]][]][] | null;
        if (!open) break;
        if (!got) {
          const final = await src.onIdle();
          if (final) {
            ended = true;
            yield { id: '0-1', event: final.event, data: JSON.stringify(final.data) };
          } else yield { id: '', event: 'idle', data: '' };
          continue;
        }
        for (const [eid, fields] of got[0]?.[1] ?? []) {
          // Closed mid-batch (a handoff): the client resumes after the last entry it was given, so stop here.
          if (!open) break;
          last = eid;
          const entry = parseStreamEntry(eid, fields);
          if (isTerminal(entry.event)) ended = true;
          yield entry;
          if (ended) break;
        }
      }
    } catch (e) {
      // A closed reader's blocking call fails with "Connection is closed": that is the end, not an error.
      if (open) throw e;
    } finally {
      close();
    }
  }
  const it = items();
  return {
    get ended() {
      return ended;
    },
    close,
    [Symbol.asyncIterator]: () => it,
  };
}

/**
 * A job's token stream for one client. Counts the reader in Redis (every API replica shares the count); when the last
 * reader leaves before the end, the job is cancelled unless a reader comes back within the grace (Last-Event-ID
 * reconnect) or the job was submitted with `detach`. A reader closed as a handoff (this replica drains) never cancels:
 * the grace timer would live in a process about to exit, and the client was told to resume elsewhere.
 */
export async function readJobStream(ctx: ApiContext, id: string, from: string, detach: boolean): Promise<StreamReader> {
  const readers = ctx.keys.streamReaders(id);
  // The job's queue (for the fallback below) and the reader count, in one round trip.
  const rows = await ctx.redis.multi().get(ctx.keys.jobIndex(id)).incr(readers).expire(readers, ctx.config.JOB_RETENTION_S).exec();
  const name = rows?.[0]?.[1];
  const queue = typeof name === 'string' ? ctx.producer.queue(name) : null;
  const key = ctx.keys.stream(id);
  return readStream(
    ctx,
    {
      key,
      blockMs: 10_000,
      onIdle: async () => {
        // Nothing new: if the job ended and its stream expired, answer from the job itself.
        const job = queue ? await queue.getJob(id) : undefined;
        if (!queue || !job) return { event: 'error', data: { code: 'not_found', message: `job ${id} no longer exists` } };
        const state = await job.getState();
        if ((state === 'completed' || state === 'failed') && !(await ctx.redis.exists(key))) {
          const view = await viewJob(queue, job);
          return state === 'completed' ? { event: 'done', data: view.result } : { event: 'error', data: view.error };
        }
        return null;
      },
    },
    from,
    (ended, handoff) => {
      ctx.redis.decr(readers).then((left) => {
        if (ended || detach || handoff || left > 0) return;
        setTimeout(() => {
          ctx.redis
            .get(readers)
            .then((n) => (Number(n ?? 0) <= 0 ? cancelJob(ctx, id, 'the client disconnected from its stream and did not come back') : undefined))
            .catch(() => undefined);
        }, ctx.config.STREAM_RECONNECT_GRACE_MS).unref();
      }, () => undefined);
    },
  );
}
