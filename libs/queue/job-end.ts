// Completing a job in one round trip (scripts/job-end.lua): BullMQ's own moveToFinished, then the token stream's end,
// the count retention, the reservation, the liveness entry and the writes that ride along (metrics, speed figures,
// activity, history, the done message), in one Lua call. BullMQ's script is included as the pinned version ships it and
// its keys and arguments are BullMQ's own (`moveToCompletedArgs`, which `job.moveToCompleted` calls):
// bullmq-internals.ts names the version; libs/queue/job-end.int.test.ts checks the job BullMQ then holds.
import type { Job } from 'bullmq';
import { moveToFinished } from 'bullmq/dist/esm/scripts/moveToFinished-14.js';
import type { RedisClient } from './connection.js';
import type { HydraKeys } from './keys.js';
import { STREAM_MAXLEN, type JobLifecycle, type StreamEvent } from './lifecycle.js';
import type { EndScripts, EndWrite, SentWrite } from './end-write.js';
import { loadScript, QUEUE_SCRIPTS, readScript, replyCode, type ScriptCall } from './scripts.js';

/** What BullMQ's Job and its backend do for a completion, reached past their protected types (BullMQ 6.7). */
interface JobInternals {
  backend: {
    moveToCompletedArgs(job: Job, returnValue: string, removeOnComplete: unknown, token: string, fetchNext: boolean): (string | number | undefined)[];
    finishedErrors(e: { code: number; jobId?: string; command: string; state: string }): Error;
  };
  recordJobMetrics?(state: string): void;
}

/** BullMQ's moveToFinished takes 14 keys. */
const BULL_KEYS = 14;

const KIND_CODE: Record<SentWrite['kind'], string> = { command: 'c', jobMetrics: 'm', nodePerf: 'p' };

/** end-writes.lua's keys, layout and arguments for the writes that are sent (`sent`; the local ones are not). */
function encodeWrites(writes: readonly EndWrite[]): { sent: SentWrite[]; keys: string[]; layout: string; args: (string | number)[] } {
  const sent = writes.filter((w): w is SentWrite => w.kind !== 'local');
  return {
    sent,
    keys: sent.flatMap((w) => w.keys),
    layout: sent.map((w) => `,${KIND_CODE[w.kind]}:${w.keys.length}:${w.args.length}`).join(''),
    args: sent.flatMap((w) => w.args),
  };
}

/** Hand each sent write its reply (or the error it failed with). */
function settle(sent: readonly SentWrite[], replies: readonly unknown[]): void {
  sent.forEach((w, i) => {
    const r = replies[i];
    w.then?.(r instanceof Error ? null : r, r instanceof Error ? r : null);
  });
}

/** Run the local writes: the end they belong to is recorded, and stands whatever one of them throws. */
function runLocal(writes: readonly EndWrite[]): void {
  for (const w of writes) {
    if (w.kind !== 'local') continue;
    try {
      w.then();
    } catch {
      /* the end is recorded; a local write is its owner's to report */
    }
  }
}

/** end-writes.lua with the scripts it includes. */
const endWritesLua = (scripts: EndScripts): string => readScript(QUEUE_SCRIPTS, 'end-writes', { ...scripts }).lua;

export type EndWriter = (writes: readonly EndWrite[]) => Promise<void>;

/**
 * The same writes in a call of their own, for an end BullMQ recorded otherwise (a final failure: moveToFailed). The
 * call fails only if Redis refuses it as a whole; a failed write is handed to its `then`. The local writes run first:
 * the end is recorded already.
 */
export function endWriter(redis: RedisClient, scripts: EndScripts): EndWriter {
  const call: ScriptCall<unknown[]> = loadScript(redis, QUEUE_SCRIPTS, 'end-writes', { ...scripts });
  return async (writes) => {
    runLocal(writes);
    const w = encodeWrites(writes);
    if (w.sent.length === 0) return;
    settle(w.sent, await call(w.keys, [w.layout, ...w.args]));
  };
}

export interface JobEnd {
  /** The job's token stream: its key, the end's data, what was still unsent, and how long it lives after. */
  stream: { key: string; data: unknown; tail: readonly [StreamEvent, string][]; retentionS: number };
  /** The count retention of the job's side keys (JobLifecycle.retirement). */
  retire: { key: string; cap: number; batch: number };
  /** The node whose reservation the job held under its lock token, and the process's liveness hash. */
  nodeId: string;
  liveJobs: string;
  /** The writes that ride along, made from the Job as BullMQ will hold it completed (attempt counted, finishedOn, answer). */
  writes?: (job: Job) => readonly EndWrite[];
}

export type JobEnder = (job: Job, token: string, result: unknown, end: JobEnd) => Promise<{ stream: 'ended' | 'already'; retired: string[] }>;

/**
 * Complete `job` (held under `token`) with `result` and write the rest of its end in the same call. Throws BullMQ's own
 * error when BullMQ refuses (the lock lost, the job no longer active): then nothing of the end is written and the Job
 * object is as it was. On success the Job object is updated as `job.moveToCompleted` updates it (returnvalue,
 * finishedOn, attemptsMade).
 */
export function jobEnder(redis: RedisClient, keys: HydraKeys, lifecycle: Pick<JobLifecycle, 'unlinkRetired'>, scripts: EndScripts): JobEnder {
  const end: ScriptCall<unknown[]> = loadScript(redis, QUEUE_SCRIPTS, 'job-end', {
    moveToFinished: moveToFinished.content,
    streamEnd: readScript(QUEUE_SCRIPTS, 'stream-end').lua,
    retire: readScript(QUEUE_SCRIPTS, 'retire').lua,
    endWrites: endWritesLua(scripts),
  });
  return async (job, token, result, e) => {
    const j = job as unknown as JobInternals;
    const returned = JSON.stringify(result);
    const bull = j.backend.moveToCompletedArgs(job, returned, job.opts.removeOnComplete, token, false);
    const bullKeys = bull.slice(0, BULL_KEYS).map(String);
    const bullArgs = bull.slice(BULL_KEYS).map((a) => (a === undefined ? '' : a));
    // The Job as BullMQ will hold it once completed, for the writes built from it; put back if BullMQ refuses.
    const was = { returnvalue: job.returnvalue as unknown, finishedOn: job.finishedOn, attemptsMade: job.attemptsMade };
    job.returnvalue = result;
    job.finishedOn = Number(bullArgs[1]);
    job.attemptsMade = was.attemptsMade + 1;
    const writes = e.writes?.(job) ?? [];
    const tail = e.stream.tail.flat();
    const w = encodeWrites(writes);
    let reply: unknown[];
    try {
      reply = await end(
        [...bullKeys, e.stream.key, e.retire.key, keys.reservations(e.nodeId), e.liveJobs, ...w.keys],
        // The answer as BullMQ stores it is the stream end's data too (one JSON.stringify, not two).
        [...bullArgs, STREAM_MAXLEN, 'done', e.stream.data === result ? returned : JSON.stringify(e.stream.data), e.stream.retentionS, e.retire.cap, e.retire.batch, token, tail.length, w.layout, ...tail, ...w.args],
      );
    } catch (err) {
      Object.assign(job, was);
      throw err;
    }
    const code = Number(reply[0]);
    if (code < 0) {
      Object.assign(job, was);
      throw j.backend.finishedErrors({ code, jobId: job.id!, command: 'moveToFinished', state: 'active' });
    }
    j.recordJobMetrics?.('completed');
    const nRetired = Number(reply[2]);
    const retired = reply.slice(3, 3 + nRetired).map(String);
    settle(w.sent, reply.slice(3 + nRetired));
    runLocal(writes);
    // Side keys of the jobs that left the count retention (one batch per cap/10 jobs): off the answer's path.
    void lifecycle.unlinkRetired(retired).catch(() => undefined);
    return { stream: replyCode('job-end', reply[1], ['ended', 'already']), retired };
  };
}
