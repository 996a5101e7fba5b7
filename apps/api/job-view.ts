// How a job looks to API users: state, attempts, result or error, routing decision.
import type { Job, Queue } from 'bullmq';
import type { InferResult } from '../../libs/core/index.js';
import type { DoneMessage, InferJob } from '../../libs/queue/index.js';

export interface JobView {
  id: string;
  state: string;
  queue: string;
  type: string;
  model: string;
  priority: number;
  attempts_made: number;
  attempts_max: number;
  submitted_at: string;
  started_at: string | null;
  finished_at: string | null;
  result?: InferResult;
  error?: { code: string; message: string };
  routing_decision: InferResult['routing_decision'] | (InferJob['route'] & { selected_node: null; attempts: InferJob['attempts_log'] });
}

/** BullMQ keeps failedReason as a string; Hydra writes `[code] message`. */
export function parseFailure(reason: string | undefined): { code: string; message: string } {
  const m = /^\[([a-z_]+)\] ([\s\S]*)$/.exec(reason ?? '');
  if (m) return { code: m[1]!, message: m[2]! };
  if (/stalled more than allowable limit/i.test(reason ?? '')) {
    return { code: 'poison_pill', message: `the job crashed its worker too many times and was failed: ${reason}` };
  }
  return { code: 'internal', message: reason || 'unknown failure' };
}

const iso = (ms: number | undefined): string | null => (ms ? new Date(ms).toISOString() : null);

/** BullMQ's "prioritized" and "waiting" are both waiting to a user. */
export const publicState = (s: string): string => (s === 'prioritized' || s === 'waiting-children' ? 'waiting' : s === 'unknown' ? 'cancelled' : s);

export async function viewJob(queue: Queue, fetched: Job): Promise<JobView> {
  const state = publicState(await fetched.getState());
  // The job may have ended between fetching it and reading its state: read it again for its result or error.
  const job = (state === 'completed' || state === 'failed') && fetched.finishedOn === undefined ? ((await queue.getJob(fetched.id!)) ?? fetched) : fetched;
  const data = job.data as InferJob;
  const result = job.returnvalue as InferResult | null;
  return {
    id: job.id!,
    state,
    queue: queue.name,
    type: data.call.type,
    model: data.call.model,
    priority: data.priority,
    attempts_made: job.attemptsMade,
    attempts_max: job.opts.attempts ?? 1,
    submitted_at: new Date(job.timestamp).toISOString(),
    started_at: iso(job.processedOn),
    finished_at: iso(job.finishedOn),
    ...(state === 'completed' && result ? { result } : {}),
    ...(state === 'failed' ? { error: parseFailure(job.failedReason) } : {}),
    routing_decision: result?.routing_decision ?? { ...data.route, selected_node: null, attempts: data.attempts_log ?? [] },
  };
}

/** The same view, built from the payload the API just enqueued and the worker's done message (no Redis reads). */
export function viewFromMessage(id: string, data: InferJob, queue: string, msg: DoneMessage, attemptsMax: number): JobView {
  const result = msg.result as InferResult;
  return {
    id,
    state: 'completed',
    queue,
    type: data.call.type,
    model: data.call.model,
    priority: data.priority,
    attempts_made: msg.attempts_made ?? 1,
    attempts_max: attemptsMax,
    submitted_at: new Date(data.submitted_at).toISOString(),
    started_at: iso(msg.started_at),
    finished_at: iso(msg.finished_at),
    result,
    routing_decision: result.routing_decision,
  };
}
