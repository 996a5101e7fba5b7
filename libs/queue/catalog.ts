// The job catalog: every job kind Hydra enqueues (inference, workflow parent, workflow gate), its payload schema,
// job name and BullMQ options, in one place. Payloads are validated when enqueued and again when received.
import type { JobsOptions } from 'bullmq';
import { z } from 'zod';
import { AdminCallSchema, AttemptRecordSchema, ErrorCode, HydraError, InferenceCallSchema, PrioritySchema, RouteSchema, zodProblems } from '../core/index.js';
import { toBullPriority } from '../scheduling/index.js';

/** A request id as the API accepts it from X-Request-Id (else it makes one, a uuid): short, no spaces, safe in logs. */
export const RequestIdSchema = z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/);

export const InferJobSchema = z.object({
  call: InferenceCallSchema,
  priority: PrioritySchema,
  route: RouteSchema,
  timeout_ms: z.number().int().positive().optional(),
  submitted_at: z.number(),
  /** The request's min_vram_gb bucket (MB): kept when a job pinned to a node that went away moves to its class queue. */
  min_vram_mb: z.number().int().min(0).optional(),
  /** Survives its client going away (no cancel on disconnect). */
  detach: z.boolean().optional(),
  /** Session affinity key (hex, from session_id or the conversation's opening messages): see sessionKeyOf. */
  session: z.string().regex(/^[0-9a-f]{16,64}$/).optional(),
  /** Failed attempts so far (written by the worker before a retry). */
  attempts_log: z.array(AttemptRecordSchema).default([]),
  /** L1 cache key (hex SHA-256 of the normalized call): the worker stores the result under it when the job completes. */
  cache_key: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  /** The HTTP request that submitted it (X-Request-Id): the API's access log and the worker's log lines carry it. */
  request_id: RequestIdSchema.optional(),
  /** The API key that submitted it, as an id (apps/api/auth.ts keyIdOf), never the key: the results history records it. */
  api_key_id: z.string().regex(/^k_[0-9a-f]{16}$/).optional(),
  /** Recall: the earlier jobs whose prompt and answer were put in front of this one (apps/api/recall.ts). */
  recalled: z.array(z.object({ source_job_id: z.string(), score: z.number(), prompt: z.string(), answer: z.string() })).max(20).optional(),
  /** Set when the job is a workflow step: its completion advances that workflow (libs/workflows). */
  workflow: z.object({ id: z.string().min(1), step: z.string().min(1) }).optional(),
  /** Webhook: where its view is POSTed when it ends (checked at submit and again at delivery: deliveries.ts). */
  callback_url: z.string().max(2048).optional(),
  /** Set when the job is item `index` of a batch (POST /v1/batches): its end counts down that batch (batch-store.ts). */
  batch: z.object({ id: z.string().min(1), index: z.number().int().min(0) }).optional(),
});
export type InferJob = z.infer<typeof InferJobSchema>;

/** A workflow's parent job: a label for Bull Board; the state lives in the workflow store. */
export const WorkflowJobSchema = z.object({
  id: z.string().min(1),
  kind: z.string().min(1),
  name: z.string().optional(),
  steps: z.number().int().min(0),
  /** Webhook: where the workflow's view is POSTed when it ends (deliveries.ts). */
  callback_url: z.string().max(2048).optional(),
});
export type WorkflowJob = z.infer<typeof WorkflowJobSchema>;

/** A workflow's gate child, in a queue nobody consumes: it holds the parent open until every step has settled. */
export const GateJobSchema = z.object({ workflow: z.string().min(1), note: z.string() });
export type GateJob = z.infer<typeof GateJobSchema>;

/** Model management on one node (pull, delete, unload), in that node's own queue; never retried elsewhere. */
export const AdminJobSchema = z.object({
  call: AdminCallSchema,
  node_id: z.string().min(1),
  submitted_at: z.number(),
});
export type AdminJob = z.infer<typeof AdminJobSchema>;

/** The settings job options are built from, picked from config once (JOB_ATTEMPTS, BACKOFF_MS, JOB_RETENTION_*). */
export interface JobSettings {
  attempts: number;
  backoffMs: number;
  retentionS: number;
  /** Completed and finally failed jobs kept per queue (JOB_RETENTION_COUNT, JOB_RETENTION_FAILED_COUNT). */
  retentionCount: number;
  retentionFailedCount: number;
}

const jobName = (kind: string, model: string): string => `${kind}:${model}`;
/** Inverse of jobName: the model a job is for (the part after the kind). */
export const modelOfJobName = (name: string): string => name.slice(name.indexOf(':') + 1);
/** The catalog kind a job name starts with (`infer:m` → infer, `admin:m` → admin). */
export const kindOfJobName = (name: string): string => name.slice(0, Math.max(0, name.indexOf(':')));

/** Custom backoff type: the Worker's backoffStrategy (exponential, jitter, cap) computes the delay. */
const HYDRA_BACKOFF = 'hydra';

/** Workflow and admin jobs kept per queue at most (each workflow also keeps its state, a few KB, as long as its job). */
const SMALL_QUEUE_RETENTION = 10_000;

/**
 * How many finished jobs of `kind` a queue keeps, by end state: BullMQ's count retention, and the lifecycle's
 * retirement of each job's side keys (lifecycle.ts `retire`) use the same figures, so both leave together.
 */
export function retentionCounts(s: JobSettings, kind: JobKind): { completed: number; failed: number } {
  const cap = kind === 'infer' ? Infinity : SMALL_QUEUE_RETENTION;
  return { completed: Math.min(cap, s.retentionCount), failed: Math.min(cap, s.retentionFailedCount) };
}

const retention = (s: JobSettings, kind: JobKind) => {
  const n = retentionCounts(s, kind);
  return { removeOnComplete: { age: s.retentionS, count: n.completed }, removeOnFail: { age: s.retentionS * 7, count: n.failed } };
};

export const JobCatalog = {
  infer: {
    schema: InferJobSchema,
    name: (p: InferJob) => jobName('infer', p.call.model),
    options: (s: JobSettings, jobId: string, priority: number): JobsOptions => ({
      jobId,
      priority: toBullPriority(priority),
      attempts: s.attempts,
      backoff: { type: HYDRA_BACKOFF, delay: s.backoffMs },
      ...retention(s, 'infer'),
    }),
  },
  workflow: {
    schema: WorkflowJobSchema,
    name: (p: WorkflowJob) => `workflow:${p.kind}`,
    // The finaliser only reads state; a failed finalisation (Redis blip) is simply run again.
    options: (s: JobSettings, jobId: string, priority: number): JobsOptions => ({ jobId, priority: toBullPriority(priority), attempts: 3, backoff: { type: 'fixed', delay: 1000 }, ...retention(s, 'workflow') }),
  },
  admin: {
    schema: AdminJobSchema,
    name: (p: AdminJob) => `admin:${p.call.model}`,
    // A pull that failed on a node is reported as failed on that node; running it again elsewhere would be wrong.
    options: (s: JobSettings, jobId: string, priority: number): JobsOptions => ({ jobId, priority: toBullPriority(priority), attempts: 1, ...retention(s, 'admin') }),
  },
  gate: {
    schema: GateJobSchema,
    name: () => 'gate',
    options: (_s: JobSettings, jobId: string): JobsOptions => ({ jobId }),
  },
} as const;
export type JobKind = keyof typeof JobCatalog;
export type JobPayload<K extends JobKind> = z.infer<(typeof JobCatalog)[K]['schema']>;

/** Validate a payload of `kind`; throws bad_request naming each bad field (never enqueue or run a payload that fails). */
export function checkPayload<K extends JobKind>(kind: K, data: unknown): JobPayload<K> {
  const r = JobCatalog[kind].schema.safeParse(data);
  if (r.success) return r.data as JobPayload<K>;
  throw new HydraError(ErrorCode.BadRequest, `invalid ${kind} job payload: ${zodProblems(r.error).map((p) => `${p.field} ${p.problem}`).join('; ')}`);
}

/** Exponential backoff with jitter and a cap; used as the Worker's `backoffStrategy`. */
export function backoffDelay(attemptsMade: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const exp = Math.min(capMs, baseMs * 2 ** Math.max(0, attemptsMade - 1));
  return Math.round(exp / 2 + (random() * exp) / 2);
}
