// The job lifecycle protocol, in one place: the job index, wake-ups, the done message, cancellation (jobs and workflow
// steps alike), the cancelled check, the stream entry format with its one length cap and terminal events, and the
// failure encoding BullMQ stores. Producers, workers, the coordinator and the API all speak it through this file.
import type { ChainableCommander } from 'ioredis';
import type { Job, Queue } from 'bullmq';
import type { RedisClient } from './connection.js';
import { kindOfJobName, retentionCounts, type JobKind, type JobSettings } from './catalog.js';
import type { HydraKeys } from './keys.js';
import type { EndWrite } from './end-write.js';
import { loadScript, QUEUE_SCRIPTS, replyCode, scriptIn, type ScriptCall } from './scripts.js';

// ---- failures ----------------------------------------------------------------------------------------------------

export interface Failure {
  code: string;
  message: string;
}

/** BullMQ keeps a failure as one string (failedReason): Hydra writes `[code] message`. */
export const encodeFailure = (e: Failure): string => `[${e.code}] ${e.message}`;

/** The one decoder of failedReason, for jobs and workflow steps alike. */
export function decodeFailure(reason: string | undefined): Failure {
  const m = /^\[([a-z_]+)\] ([\s\S]*)$/.exec(reason ?? '');
  if (m) return { code: m[1]!, message: m[2]! };
  // BullMQ's stalled checker fails a job that stalled more than maxStalledCount times with its own wording.
  if (/stalled more than allowable limit/i.test(reason ?? '')) {
    return { code: 'poison_pill', message: `the job crashed its worker too many times and was failed: ${reason}` };
  }
  return { code: 'internal', message: reason || 'unknown failure' };
}

// ---- streams -----------------------------------------------------------------------------------------------------

/**
 * Events of a job's or a workflow's Redis Stream. token: answer text; thinking: reasoning text; progress: JSON of an
 * admin job (a pull's status); retry / requeued: an attempt ended and the job goes on; step / cancelling: workflow
 * progress; done / error: the terminal entry, written once.
 */
const STREAM_EVENTS = ['token', 'thinking', 'progress', 'retry', 'requeued', 'step', 'cancelling', 'done', 'error'] as const;
export type StreamEvent = (typeof STREAM_EVENTS)[number];
const TERMINAL_EVENTS: ReadonlySet<string> = new Set<StreamEvent>(['done', 'error']);
export const isTerminal = (event: string): boolean => TERMINAL_EVENTS.has(event);

/** Entries kept per stream (XADD MAXLEN ~): tokens of long answers are coalesced, so this is far more than one needs. */
export const STREAM_MAXLEN = 20_000;

/** One entry's fields: `e` the event, `d` its data (token text, or JSON). */
export const streamFields = (event: StreamEvent, data: string): [string, string, string, string] => ['e', event, 'd', data];

export interface StreamEntry {
  id: string;
  event: string;
  data: string;
  /** The node writing it: carried by an attempt's first entry, so a reader can name the node before the end. */
  node?: string;
}

/** An entry as XREAD returns it; entries without an event are tokens. */
export function parseStreamEntry(id: string, fields: readonly string[]): StreamEntry {
  const entry: StreamEntry = { id, event: fields[1] ?? 'token', data: fields[3] ?? '' };
  if (fields[4] === 'n' && fields[5]) entry.node = fields[5];
  return entry;
}

/** Append a non-terminal entry to a pipeline or transaction; `node` marks the writer (an attempt's first entry). */
export function appendEntry<C extends ChainableCommander>(c: C, key: string, event: StreamEvent, data: string, node?: string): C {
  c.xadd(key, ...entryArgs(event, data, node));
  return c;
}

/** XADD's arguments after the key for one entry (capped at STREAM_MAXLEN, approximately). */
export const entryArgs = (event: StreamEvent, data: string, node?: string): ['MAXLEN', '~', string, '*', ...string[]] => [
  'MAXLEN',
  '~',
  String(STREAM_MAXLEN),
  '*',
  ...streamFields(event, data),
  ...(node ? ['n', node] : []),
];

/**
 * Append the terminal entry, unless the stream has one already, and let the stream expire after `retentionS`
 * (stream-end.lua: an end resent after a lost reply must not end the stream twice). `c` comes from a connection that
 * `loadStreamEnd` was called on before `c` was made.
 */
export function appendEnd<C extends ChainableCommander>(c: C, key: string, event: 'done' | 'error', data: unknown, retentionS: number): C {
  return scriptIn(c, QUEUE_SCRIPTS, 'stream-end', [key], [STREAM_MAXLEN, event, JSON.stringify(data), retentionS]);
}

/** Load the script `appendEnd` calls on `redis` (once per connection; later calls are free). */
export const loadStreamEnd = (redis: RedisClient): void => void loadScript(redis, QUEUE_SCRIPTS, 'stream-end');

/**
 * `appendEnd` as one command on `redis` (no pipeline): sent at once, in this connection's order. `before`: entries
 * (event, data) written just before the end, in the same call (a stream's last tokens), and only if it ends now.
 */
export function endStream(redis: RedisClient, key: string, event: 'done' | 'error', data: unknown, retentionS: number, before: readonly [StreamEvent, string][] = []): Promise<'ended' | 'already'> {
  return loadScript<string>(redis, QUEUE_SCRIPTS, 'stream-end')([key], [STREAM_MAXLEN, event, JSON.stringify(data), retentionS, ...before.flat()]).then((r) => replyCode('stream-end', r, ['ended', 'already']));
}

// ---- the done message --------------------------------------------------------------------------------------------

/** Published on the done channel when a job or workflow ends. `result` is left out when large; read the job then. */
export interface DoneMessage {
  id: string;
  state: 'completed' | 'failed' | 'cancelled';
  attempts_made?: number;
  started_at?: number;
  finished_at?: number;
  result?: unknown;
  error?: Failure;
}

/** Results above this size (JSON chars) are not copied into the done message. */
export const DONE_MESSAGE_RESULT_LIMIT = 64 * 1024;

export function parseDoneMessage(raw: string): DoneMessage | null {
  try {
    const m = JSON.parse(raw) as DoneMessage;
    return typeof m?.id === 'string' ? m : null;
  } catch {
    return null;
  }
}

// ---- the lifecycle -----------------------------------------------------------------------------------------------

/** What a cancel found and did. */
export type CancelResult =
  | { outcome: 'unknown' }
  | { outcome: 'ended'; state: 'completed' | 'failed' }
  /** It had not started: removed from its queue, its stream ended with a cancelled error, its end announced. `data`: its payload. */
  | { outcome: 'removed'; data: unknown }
  /** It is running: flagged and the node running it told to abort (it then fails as cancelled). */
  | { outcome: 'signalled' };

export interface LifecycleDeps {
  redis: RedisClient;
  keys: HydraKeys;
  retentionS: number;
  /** The count retention (JOB_RETENTION_COUNT, JOB_RETENTION_FAILED_COUNT) that `retire` applies to side keys. */
  settings: JobSettings;
  /** The BullMQ Queue object of a queue name (the producer's). */
  queue: (name: string) => Queue;
}

/** The keys Hydra keeps beside a job's BullMQ record (all with a TTL; `retire` deletes them with the record). */
export const jobSideKeys = (keys: HydraKeys, jobId: string): string[] => [
  keys.jobIndex(jobId),
  keys.stream(jobId),
  keys.cancelFlag(jobId),
  keys.streamReaders(jobId),
  keys.excluded(jobId),
  keys.jobSession(jobId),
  keys.fenceClaim(jobId),
];

/** A SET with an expiry in seconds: key, value, 'EX', seconds. */
export type SetArgs = [key: string, value: string, ex: 'EX', seconds: number];

export class JobLifecycle {
  private retireScript: ScriptCall<string[]> | null = null;

  constructor(private readonly d: LifecycleDeps) {
    loadStreamEnd(d.redis);
  }

  /** Record which queue holds a job (GET /v1/jobs/:id, cancel), in the same write as whatever `c` batches. */
  index<C extends ChainableCommander>(c: C, jobId: string, queue: string): C {
    c.set(...this.indexEntry(jobId, queue));
    return c;
  }

  /** The index's SET arguments, for a caller that sends it straight on a connection rather than in a batch. */
  indexEntry(jobId: string, queue: string): SetArgs {
    return [this.d.keys.jobIndex(jobId), queue, 'EX', this.d.retentionS * 7];
  }

  /**
   * Tell idle workers that `queue` has work: the `nodes` named, each on its own channel (one subscriber each), or
   * without them every worker process (each wakes a few of its agents that can take it: worker-process.ts).
   */
  wake<C extends ChainableCommander>(c: C, queue: string, nodes?: readonly string[]): C {
    if (nodes && nodes.length > 0) for (const n of nodes) c.publish(this.wakeChannel(n), queue);
    else c.publish(this.wakeChannel(), queue);
    return c;
  }

  /** The channel a wake for `node` goes on (its own), or without one the channel of every worker process. */
  wakeChannel(node?: string): string {
    return node === undefined ? this.d.keys.channels.wake : this.d.keys.channels.wakeNode(node);
  }

  async queueOf(jobId: string): Promise<string | null> {
    return this.d.redis.get(this.d.keys.jobIndex(jobId));
  }

  /** The job and its queue, or null when the id is unknown (or expired). */
  async find(jobId: string): Promise<{ queue: Queue; job: Job | undefined } | null> {
    const name = await this.queueOf(jobId);
    if (!name) return null;
    const queue = this.d.queue(name);
    return { queue, job: await queue.getJob(jobId) };
  }

  /** Announce an end (waiters wake on it) in the same write as whatever `c` batches. */
  done<C extends ChainableCommander>(c: C, msg: DoneMessage): C {
    c.publish(this.d.keys.channels.done, JSON.stringify(msg));
    return c;
  }

  /** The done message as a write that rides in a completed job's end call (job-end.ts), after everything else in it. */
  doneWrite(msg: DoneMessage, failed: (e: Error) => void): EndWrite {
    return { kind: 'command', keys: [], args: ['PUBLISH', this.d.keys.channels.done, JSON.stringify(msg)], then: (_r, err) => err && failed(err) };
  }

  async publishDone(msg: DoneMessage): Promise<void> {
    await this.d.redis.publish(this.d.keys.channels.done, JSON.stringify(msg));
  }

  /**
   * A job of `kind` ended for good in `queue`: once more than its count retention of such jobs ended after it, its
   * side keys (token stream, index, flags; `sideKeys`, by default jobSideKeys) are deleted, as BullMQ removes the job
   * itself by the same count. Without this they would live out their TTL (JOB_RETENTION_S, the index 7x that), so
   * Redis memory would grow with the job rate instead of staying flat at the retained count. One call per job, one
   * deletion per batch of retired jobs. Returns how many jobs' side keys were deleted.
   */
  async retire(kind: JobKind, queue: string, state: 'completed' | 'failed', jobId: string, sideKeys = (id: string) => jobSideKeys(this.d.keys, id)): Promise<number> {
    const r = this.retirement(kind, queue, state);
    this.retireScript ??= loadScript<string[]>(this.d.redis, QUEUE_SCRIPTS, 'retire');
    return this.unlinkRetired(await this.retireScript([r.key], [jobId, r.cap, r.batch]), sideKeys);
  }

  /** retire.lua's list and counts for a job of `kind` that ended in `state` (also run inside job-end.lua). */
  retirement(kind: JobKind, queue: string, state: 'completed' | 'failed'): { key: string; cap: number; batch: number } {
    const cap = retentionCounts(this.d.settings, kind)[state];
    return { key: this.d.keys.retired(queue, state), cap, batch: Math.max(1, Math.min(100, Math.floor(cap / 10))) };
  }

  /** Delete the side keys of the jobs retire.lua popped (`gone`); how many jobs. */
  async unlinkRetired(gone: readonly string[], sideKeys = (id: string) => jobSideKeys(this.d.keys, id)): Promise<number> {
    if (gone.length === 0) return 0;
    await this.d.redis.unlink(...gone.flatMap(sideKeys));
    return gone.length;
  }

  async isCancelled(jobId: string): Promise<boolean> {
    return (await this.d.redis.exists(this.d.keys.cancelFlag(jobId))) === 1;
  }

  /**
   * Cancel a job or a workflow step: one that has not started is removed (and its stream ended, its end announced);
   * one that runs is flagged and its node told to abort. `flagUnknown` flags an id whose job does not exist (yet):
   * a workflow step claimed but not added is then refused by whichever worker takes it.
   */
  async cancel(jobId: string, why: string, opts: { flagUnknown?: boolean } = {}): Promise<CancelResult> {
    const { redis, keys, retentionS } = this.d;
    const found = await this.find(jobId);
    const job = found?.job;
    if (!job) {
      if (opts.flagUnknown) await redis.set(keys.cancelFlag(jobId), why, 'EX', retentionS);
      return { outcome: 'unknown' };
    }
    const state = await job.getState();
    if (state === 'completed' || state === 'failed') return { outcome: 'ended', state };
    await redis.set(keys.cancelFlag(jobId), why, 'EX', retentionS);
    if (state !== 'active') {
      try {
        await job.remove();
        const err: Failure = { code: 'cancelled', message: `job ${jobId} was cancelled before it started (${why})` };
        await appendEnd(redis.multi(), keys.stream(jobId), 'error', err, retentionS).exec();
        await this.publishDone({ id: jobId, state: 'cancelled', error: err });
        await this.retire(kindOfJobName(job.name) === 'admin' ? 'admin' : 'infer', job.queueName, 'failed', jobId).catch(() => undefined);
        return { outcome: 'removed', data: job.data };
      } catch {
        // It became active meanwhile (locked): abort it on its node instead.
      }
    }
    await redis.publish(keys.channels.cancel, jobId);
    return { outcome: 'signalled' };
  }
}
