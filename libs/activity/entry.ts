// One finished job as the activity log keeps it: when, where, how it was routed and how long it took. Built from the
// job and its outcome (pure); parsed back leniently, since entries outlive the code that wrote them.
import { z } from 'zod';
import type { HydraError, InferResult } from '../core/index.js';
import type { InferJob } from '../queue/index.js';

const ActivityEntrySchema = z.object({
  /** When the job ended (ms since epoch). */
  at: z.number(),
  job_id: z.string(),
  model: z.string(),
  /** generate, chat or embed. */
  type: z.string(),
  /** The node that ran the last attempt. */
  node: z.string(),
  queue: z.string(),
  /** 1-10, 10 most urgent, as submitted. */
  priority: z.number(),
  outcome: z.enum(['completed', 'failed']),
  /** A failed job's error code (`cancelled`, `timeout`, ...). */
  error_code: z.string().optional(),
  /** The routing decision's reason: the submit-time reason and the node's own. */
  reason: z.string(),
  /** Waiting before the last attempt started, ms. */
  queued_ms: z.number(),
  /** Submit to end, ms: what the caller waited. */
  total_ms: z.number(),
  /** Submit to first token, ms (queued + model load + prompt evaluation, as the backend reported them); absent when unknown. */
  ttft_ms: z.number().optional(),
});
export type ActivityEntry = z.infer<typeof ActivityEntrySchema>;

/** Long strings are cut: model names and reasons come from users and must not bloat a capped list read every second. */
const MAX_TEXT = 300;
const cut = (s: string): string => (s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT - 1)}…` : s);

/** The fields of a BullMQ job an entry needs (kept structural: this lib does not depend on BullMQ's Job class). */
export interface FinishedJob {
  id?: string | undefined;
  queueName: string;
  /** When it was added, ms. */
  timestamp: number;
  /** When its last attempt started, ms. */
  processedOn?: number | undefined;
  data: unknown;
}

export type FinishedOutcome = { state: 'completed'; result: InferResult } | { state: 'failed'; error: HydraError };

/** The entry for a job that ended for good on `nodeId` at `now`. */
export function finishedEntry(job: FinishedJob, outcome: FinishedOutcome, nodeId: string, now: number): ActivityEntry {
  const data = job.data as InferJob;
  const base = {
    at: now,
    job_id: job.id ?? '',
    model: cut(data.call.model),
    type: data.call.type,
    queue: job.queueName,
    priority: data.priority,
    total_ms: Math.max(0, now - job.timestamp),
  };
  if (outcome.state === 'failed') {
    return {
      ...base,
      node: nodeId,
      outcome: 'failed',
      error_code: outcome.error.code,
      reason: cut(data.route.reason),
      queued_ms: job.processedOn ? Math.max(0, job.processedOn - job.timestamp) : base.total_ms,
    };
  }
  const r = outcome.result;
  const d = r.routing_decision;
  // Embeddings have no first token; a backend that reports no timings leaves the time to first token unknown.
  const timed = data.call.type !== 'embed' && r.prompt_eval_duration_ms + r.eval_duration_ms > 0;
  return {
    ...base,
    node: r.node_id || nodeId,
    outcome: 'completed',
    reason: cut(d.reason),
    queued_ms: d.queued_ms,
    ...(timed ? { ttft_ms: Math.round(d.queued_ms + r.load_duration_ms + r.prompt_eval_duration_ms) } : {}),
  };
}

/** An entry read back from Redis, or null when it is not one (written by another version, or corrupted). */
export function parseEntry(raw: string): ActivityEntry | null {
  try {
    const parsed = ActivityEntrySchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
