// The job catalog: each job type's payload schema, attempts and backoff. Handlers are typed from it.
import { z } from 'zod';
import { InferenceCallSchema } from '../core/index.js';

export const CandidateSchema = z.object({
  id: z.string(),
  healthy: z.boolean(),
  warm: z.boolean(),
  need_mb: z.number(),
  capacity_mb: z.number(),
});

export const RouteSchema = z.object({
  queue: z.string(),
  requested_node: z.string().nullable(),
  reason: z.string(),
  candidates: z.array(CandidateSchema),
});
export type Route = z.infer<typeof RouteSchema>;

export const InferJobSchema = z.object({
  call: InferenceCallSchema,
  priority: z.number().int().min(1).max(10),
  route: RouteSchema,
  timeout_ms: z.number().int().positive().optional(),
  submitted_at: z.number(),
  /** Survives its client going away (no cancel on disconnect). */
  detach: z.boolean().optional(),
  /** Failed attempts so far (written by the worker before a retry). */
  attempts_log: z
    .array(z.object({ attempt: z.number(), node_id: z.string(), error: z.object({ code: z.string(), message: z.string() }).optional(), at: z.number() }))
    .default([]),
  /** L1 cache key (hex SHA-256 of the normalized call): the worker stores the result under it when the job completes. */
  cache_key: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  /** Set when the job is a workflow step: its completion advances that workflow (libs/workflows). */
  workflow: z.object({ id: z.string().min(1), step: z.string().min(1) }).optional(),
});
export type InferJob = z.infer<typeof InferJobSchema>;

export const JobCatalog = {
  infer: { schema: InferJobSchema, attempts: 3, backoff: { type: 'hydra', delay: 1000 } },
} as const;
export type JobKind = keyof typeof JobCatalog;
export type JobPayload<K extends JobKind> = z.infer<(typeof JobCatalog)[K]['schema']>;

/** Exponential backoff with jitter and a cap; used as the Worker's `backoffStrategy`. */
export function backoffDelay(attemptsMade: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const exp = Math.min(capMs, baseMs * 2 ** Math.max(0, attemptsMade - 1));
  return Math.round(exp / 2 + (random() * exp) / 2);
}

/** Published on the done channel when a job ends. `result` is left out when large; read the job then. */
export interface DoneMessage {
  id: string;
  state: 'completed' | 'failed' | 'cancelled';
  attempts_made?: number;
  started_at?: number;
  finished_at?: number;
  result?: unknown;
  error?: { code: string; message: string };
}

/** Results above this size (JSON chars) are not copied into the done message. */
export const DONE_MESSAGE_RESULT_LIMIT = 64 * 1024;
