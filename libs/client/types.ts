// What the client sends and gets back: request bodies from libs/core's schemas (types only, nothing loaded at run
// time), and the API's answers as docs/api.md describes them.
import type { z } from 'zod';
import type { InferResult, JobRequestSchema, RoutingDecision } from '../core/index.js';

/** The body of POST /v1/jobs as a caller writes it (defaults not yet applied): `z.input` of libs/core's schema. */
export type JobRequest = z.input<typeof JobRequestSchema>;
export type { InferResult, RoutingDecision };

/** An error as a job, a batch result or a stream's error event carries it. */
export interface JobFailure {
  code: string;
  message: string;
  retryable?: boolean;
  details?: unknown;
}

/** 202 of POST /v1/jobs: where to follow the job. */
export interface JobLinks {
  id: string;
  status_url: string;
  stream_url: string;
  state: string;
  queue?: string;
  reason?: string;
  note?: string;
}

/** GET /v1/jobs/:id (and the 200 of a `wait`). `state`: waiting, active, delayed, completed, failed or cancelled. */
export interface JobView {
  id: string;
  state: string;
  queue?: string | null;
  type?: string;
  model?: string;
  priority?: number;
  attempts_made?: number;
  attempts_max?: number;
  submitted_at?: string;
  started_at?: string | null;
  finished_at?: string | null;
  result?: InferResult;
  error?: JobFailure;
  routing_decision?: RoutingDecision;
  request_id?: string;
  queue_position?: number | null;
  estimated_start?: string | null;
  node_id?: string | null;
  attempt?: number;
  /** Set when the answer came from the response cache (no job ran). */
  cached?: boolean;
  callback?: { url: string; deliveries: { attempt: number; at: string; status_code: number | null; ok: boolean; error?: string; duration_ms: number }[] };
  [key: string]: unknown;
}

/** A submit's answer: the links of a queued job (202), or a complete view (200: a cache hit, or `wait: true`). */
export type SubmitAnswer = ({ status: 202 } & JobLinks) | ({ status: 200 } & JobView);

/** One row of GET /v1/jobs, newest first. */
export interface JobSummary {
  id: string;
  state: string;
  type: string;
  model: string;
  queue: string;
  priority: number;
  created_at: string;
  finished_at: string | null;
  node_id: string | null;
}

export interface JobListQuery {
  /** 1..200, default 20. */
  limit?: number;
  state?: string;
  model?: string;
}

/** DELETE /v1/jobs/:id: removed before it ran (`cancelled`), or its node is aborting it (`cancelling`). */
export interface CancelAnswer {
  id: string;
  state: 'cancelled' | 'cancelling';
  note?: string;
}

/** An event of a job's token stream (GET /v1/jobs/:id/stream). The stream ends after `done` or `error`. */
export type JobStreamEvent =
  | { event: 'token'; id: string; text: string }
  | { event: 'thinking'; id: string; text: string }
  /** An attempt failed and the job runs again (maybe elsewhere): text streamed so far may be repeated. */
  | { event: 'retry'; id: string; data: { attempt?: number; node_id?: string; error?: JobFailure } }
  /** Its node drained: the job went back to its queue and starts over. */
  | { event: 'requeued'; id: string; data: { node_id?: string; reason?: string } }
  | { event: 'progress'; id: string; data: unknown }
  | { event: 'done'; id: string; result: InferResult }
  | { event: 'error'; id: string; error: JobFailure }
  /** Any event this client version does not know, as sent. */
  | { event: 'other'; name: string; id: string; data: unknown };

/** An event of a workflow's stream (GET /v1/workflows/:id/stream). */
export interface WorkflowStreamEvent {
  event: string;
  id: string;
  data: unknown;
}

/** The body of POST /v1/workflows (checked by the API: ids, dependencies, cycles, templates; docs/workflows.md). */
export interface WorkflowRequest {
  name?: string;
  input?: Record<string, string | number | boolean>;
  steps: ({ id: string; model: string; type?: 'generate' | 'chat'; prompt?: string; system?: string; depends_on?: string[] } & Record<string, unknown>)[];
  priority?: number;
  cache?: boolean;
  wait?: boolean;
  timeout_ms?: number;
}

export interface WorkflowView {
  id: string;
  state: string;
  status_url: string;
  stream_url: string;
  [key: string]: unknown;
}

export interface BatchCounts {
  total: number;
  waiting: number;
  active: number;
  completed: number;
  failed: number;
  cancelled: number;
}

/** POST /v1/batches, GET /v1/batches/:id, POST /v1/batches/:id/cancel. */
export interface BatchView {
  id: string;
  object: 'batch';
  state: 'running' | 'completed' | 'cancelled';
  counts: BatchCounts;
  created_at: string;
  ended_at: string | null;
  callback_url: string | null;
  results_url: string;
}

/** One request's outcome in a batch, in request order. */
export interface BatchResult {
  index: number;
  job_id: string;
  state: string;
  result?: InferResult;
  error?: JobFailure;
}

export interface BatchPage extends BatchView {
  results: BatchResult[];
  next_offset: number | null;
}

/** A job request without `wait` (kept per member of the union). */
export type BatchJobRequest = JobRequest extends infer R ? (R extends unknown ? Omit<R, 'wait'> : never) : never;

export interface BatchRequest {
  /** Each exactly what POST /v1/jobs takes, without `wait`. */
  requests: BatchJobRequest[];
  callback_url?: string;
}

/** A node of GET /v1/nodes (the fields most callers read; the API sends more). */
export interface NodeInfo {
  id: string;
  url: string;
  type: string;
  backend: string;
  simulated: boolean;
  healthy: boolean;
  vram_total_mb: number;
  vram_available_mb: number;
  models_available: string[];
  models_loaded: string[];
  active_jobs: number;
  [key: string]: unknown;
}

/** GET /v1/cluster/stats. */
export interface ClusterStats {
  total_nodes: number;
  healthy_nodes: number;
  queues: Record<string, { waiting: number; active: number; delayed: number; completed: number; failed: number; [key: string]: unknown }>;
  [key: string]: unknown;
}
