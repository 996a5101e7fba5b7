// Zod schemas of what Hydra's own routes send (job, workflow, node, cluster, history, memory and batch views, the
// error body): the response half of the OpenAPI document. Written from the code that builds each answer (job-view.ts,
// libs/workflows/view.ts, nodes.route.ts, ...); the drift check (test/support/openapi-check.ts) holds them to it.
import { z } from 'zod';
import { HistoryRecordSchema } from '../../../libs/memory/index.js';
import { ErrorCode, JOB_TYPES, RoutingDecisionSchema, ToolCallSchema, BACKEND_KINDS, KV_CACHE_TYPES, MODEL_CAPABILITIES } from '../../../libs/core/index.js';

const iso = z.string().describe('ISO 8601 date-time (UTC)');
const int = z.number().int();

// ---- errors --------------------------------------------------------------------------------------------------------

export const ErrorBodySchema = z
  .object({
    error: z.object({
      code: z.enum(Object.values(ErrorCode) as [ErrorCode, ...ErrorCode[]]).describe('stable error code (libs/core/errors.ts)'),
      message: z.string().describe('what was wrong and what to do'),
      retryable: z.boolean().describe('whether the same request may succeed later'),
      details: z.unknown().optional().describe('code-specific: `fields` (the bad fields of a 400), `retry_after_s`, ...'),
    }),
  })
  .describe("Hydra's error body (apps/api/errors.ts sendError)");

// ---- jobs ----------------------------------------------------------------------------------------------------------

/** BullMQ's states as a user sees them (prioritized and waiting-children are waiting; a removed job is cancelled). */
const JOB_STATES = ['waiting', 'active', 'delayed', 'completed', 'failed', 'cancelled'] as const;

const FailureSchema = z.object({ code: z.string(), message: z.string() });

/** What a finished inference job returns (libs/core InferResult). Durations are ms. */
export const InferResultSchema = z
  .object({
    model: z.string(),
    response: z.string().optional().describe('generate: the text'),
    thinking: z.string().optional(),
    message: z.object({ role: z.literal('assistant'), content: z.string(), thinking: z.string().optional(), tool_calls: z.array(ToolCallSchema).optional() }).optional().describe('chat: the assistant message'),
    embeddings: z.array(z.array(z.number())).optional().describe('embed: one vector per input'),
    done_reason: z.string().optional(),
    prompt_tokens: int,
    completion_tokens: int,
    total_duration_ms: z.number(),
    load_duration_ms: z.number(),
    prompt_eval_duration_ms: z.number(),
    eval_duration_ms: z.number(),
    node_id: z.string(),
    node_url: z.string(),
    simulated: z.boolean(),
    routing_decision: RoutingDecisionSchema,
    cached: z.union([z.literal(true), z.literal('semantic')]).optional().describe('answered from the L1/L2 cache, or by a semantic match'),
  })
  .describe('the answer of a completed job and where it ran');

const RecalledSchema = z.object({ source_job_id: z.string(), score: z.number(), prompt: z.string(), answer: z.string() });

const DeliveryAttemptSchema = z.object({
  attempt: int,
  at: iso,
  status_code: int.nullable().describe('null when no HTTP answer came (timeout, refused address)'),
  ok: z.boolean(),
  error: z.string().optional(),
  duration_ms: z.number(),
});

export const JobViewSchema = z
  .object({
    id: z.string(),
    state: z.enum(JOB_STATES),
    queue: z.string(),
    type: z.enum(JOB_TYPES),
    model: z.string(),
    priority: int.min(1).max(10),
    attempts_made: int,
    attempts_max: int,
    submitted_at: iso,
    started_at: iso.nullable(),
    finished_at: iso.nullable(),
    result: InferResultSchema.optional().describe('completed jobs'),
    error: FailureSchema.optional().describe('failed jobs'),
    routing_decision: RoutingDecisionSchema,
    request_id: z.string().optional().describe('X-Request-Id of the submitting request'),
    queue_position: int.nullable().optional().describe('waiting jobs: place in line, 1 = next'),
    estimated_start: iso.nullable().optional().describe('waiting jobs: when it should start, null when unknown'),
    node_id: z.string().nullable().optional().describe('active jobs: the node running it'),
    attempt: int.optional().describe('active jobs: which attempt this is'),
    recalled: z.array(RecalledSchema).optional().describe('memory.recall: the earlier jobs put in front of the prompt'),
    callback: z.object({ url: z.string(), deliveries: z.array(DeliveryAttemptSchema) }).optional().describe('callback_url: the URL and each delivery attempt'),
  })
  .describe('a job: state, attempts, result or error, routing decision (GET /v1/jobs/{id})');

/**
 * A model-management job (pull, delete, unload through the Ollama surface, run on its node's queue) as GET /v1/jobs/{id}
 * shows it: the job view without type, priority or a submit-time route (an admin job is pinned, not routed).
 */
export const AdminJobViewSchema = JobViewSchema.omit({ type: true, priority: true, result: true, routing_decision: true, recalled: true, callback: true })
  .extend({
    result: z.unknown().optional().describe('the operation\'s outcome'),
    routing_decision: z.object({ selected_node: z.string().nullable(), queued_ms: z.number(), attempts: z.array(z.unknown()) }),
  })
  .describe('a model-management (admin) job: pull, delete or unload on one node');

export const JobCancelledSchema = z.object({ id: z.string(), state: z.literal('cancelled') }).describe('a job cancelled before it ran (its data is gone)');

/** A job answered from the cache without running: the job view's shape with `cached` and the cache entry. */
export const CachedJobViewSchema = z
  .object({
    id: z.string().nullable().describe('the job whose answer was stored'),
    state: z.literal('completed'),
    cached: z.union([z.literal(true), z.literal('semantic')]),
    queue: z.null(),
    type: z.enum(JOB_TYPES),
    model: z.string(),
    priority: int,
    attempts_made: z.literal(0),
    submitted_at: iso,
    started_at: z.null(),
    finished_at: iso,
    result: InferResultSchema,
    cache: z.union([
      z.object({ hit: z.literal(true), tier: z.enum(['L1', 'L2']), key: z.string(), stored_at: iso, source_job_id: z.string().nullable() }),
      z.object({ hit: z.literal(true), kind: z.literal('semantic'), source_job_id: z.string(), score: z.number(), threshold: z.number(), matched_prompt: z.string() }),
    ]),
    routing_decision: RoutingDecisionSchema,
  })
  .describe('a job answered from the response cache (L1, L2 or semantic), no job run');

export const JobLinksSchema = z
  .object({
    id: z.string(),
    status_url: z.string(),
    stream_url: z.string(),
    state: z.string().describe('waiting, active, ... or unknown while Redis is away'),
    queue: z.string().optional(),
    reason: z.string().optional().describe('why this queue (the routing decision so far)'),
    note: z.string().optional(),
  })
  .describe('a job accepted (or still running past the wait limit): where to poll and stream it');

export const JobCancelSchema = z.object({ id: z.string(), state: z.enum(['cancelled', 'cancelling']), note: z.string().optional() });

const JobSummarySchema = z.object({
  id: z.string(),
  state: z.string(),
  type: z.string(),
  model: z.string(),
  queue: z.string(),
  priority: int,
  created_at: iso,
  finished_at: iso.nullable(),
  node_id: z.string().nullable(),
});
export const JobListSchema = z.object({ jobs: z.array(JobSummarySchema) }).describe('recent jobs, newest first');

// ---- workflows -----------------------------------------------------------------------------------------------------

const WORKFLOW_KINDS = ['dag', 'distribute', 'orchestrate'] as const;
const WORKFLOW_STATES = ['running', 'failing', 'cancelling', 'completed', 'failed', 'cancelled'] as const;
const STEP_STATES = ['waiting', 'queued', 'running', 'completed', 'failed', 'skipped', 'cancelled'] as const;

const SubtaskSchema = z.object({ id: z.string(), subtask: z.string(), type: z.enum(['code', 'math', 'reasoning', 'general']), depends_on: z.array(z.string()) });

const StepViewSchema = z.object({
  id: z.string(),
  state: z.enum(STEP_STATES),
  model: z.string(),
  depends_on: z.array(z.string()),
  optional: z.boolean(),
  job_id: z.string().nullable(),
  queue: z.string().nullable(),
  node_id: z.string().nullable(),
  cached: z.boolean(),
  attempts: int,
  output: z.string().optional().describe('answer text'),
  error: FailureSchema.optional(),
  queued_ms: z.number().nullable(),
  started_at: iso.nullable(),
  finished_at: iso.nullable(),
  duration_ms: z.number().nullable(),
  meta: z.union([z.object({ prompt_index: int, model_index: int }), z.object({ stage: z.string(), subtask: SubtaskSchema.optional() })]).optional(),
  result: InferResultSchema.optional(),
});

const WorkflowProgressSchema = z.object({
  stage: z.string().optional(),
  total: int,
  completed: int,
  failed: int,
  skipped: int,
  cancelled: int,
  running: int,
  queued: int,
  waiting: int,
  percent: z.number(),
});

export const WorkflowViewSchema = z
  .object({
    id: z.string(),
    kind: z.enum(WORKFLOW_KINDS),
    name: z.string().nullable(),
    state: z.enum(WORKFLOW_STATES),
    priority: int,
    created_at: iso,
    finished_at: iso.nullable(),
    request_id: z.string().optional(),
    recalled: z.array(z.unknown()).optional(),
    progress: WorkflowProgressSchema,
    steps: z.array(StepViewSchema),
    result: z.unknown().optional().describe('kind-specific: the DAG outputs, the distribute grid, the orchestrator answer'),
    error: FailureSchema.optional(),
    failed_step: z.string().optional(),
    status_url: z.string(),
    stream_url: z.string(),
  })
  .describe('a workflow: overall state and progress, every step (GET /v1/workflows/{id})');

export const WorkflowLinksSchema = z
  .object({
    id: z.string(),
    status_url: z.string(),
    stream_url: z.string(),
    state: z.enum(WORKFLOW_STATES),
    kind: z.enum(WORKFLOW_KINDS).optional(),
    steps: int.optional().describe('steps submitted'),
    progress: WorkflowProgressSchema.optional(),
    note: z.string().optional(),
  })
  .describe('a workflow accepted, cancelling, or still running past the wait limit');

export const OrchestrateCachedSchema = z
  .object({
    id: z.string().nullable(),
    kind: z.literal('orchestrate'),
    state: z.literal('completed'),
    cached: z.literal(true),
    result: z.unknown(),
    cache: z.object({ hit: z.literal(true), key: z.string(), stored_at: iso, source_workflow_id: z.string().nullable() }),
  })
  .describe('a deterministic orchestration answered from the L1 cache');

// ---- nodes and cluster ---------------------------------------------------------------------------------------------

const NodeModelSchema = z.object({
  name: z.string(),
  size_mb: z.number(),
  need_mb: z.number(),
  size_bytes: z.number().optional(),
  digest: z.string().optional(),
  modified_at: z.string().optional(),
  details: z.object({ format: z.string().optional(), family: z.string().optional(), families: z.array(z.string()).nullable().optional(), parameter_size: z.string().optional(), quantization_level: z.string().optional() }).optional(),
  capabilities: z.array(z.enum(MODEL_CAPABILITIES)).optional(),
  context_length: z.number().optional(),
  need_source: z.enum(['estimate', 'weights', 'backend', 'unknown']).optional(),
  kv_bytes_per_token: z.number().optional(),
  kv_cache_type: z.enum(KV_CACHE_TYPES).optional(),
  graph: z.object({ embedding_length: z.number(), head_count: z.number(), vocab_size: z.number().optional() }).optional(),
  correction_mb: z.number().optional(),
});

const ModelPerfSchema = z.object({
  tokens_per_s: z.number(),
  ttft_ms: z.number(),
  job_ms: z.number().optional(),
  load_ms: z.number().optional(),
  samples: z.number(),
  load_samples: z.number().optional(),
  updated_at: z.number().optional(),
});

export const NodeSchema = z
  .object({
    id: z.string(),
    url: z.string(),
    type: z.enum(['gpu', 'cpu']),
    backend: z.enum(BACKEND_KINDS),
    simulated: z.boolean(),
    healthy: z.boolean(),
    error: z.string().optional(),
    vram_total_mb: z.number(),
    vram_available_mb: z.number(),
    vram_available_gb: z.number(),
    ram_total_mb: z.number(),
    ram_available_mb: z.number(),
    capacity_mb: z.number(),
    reserved_mb: z.number(),
    models_available: z.array(z.string()),
    models: z.array(NodeModelSchema),
    models_loaded: z.array(z.string()),
    models_loaded_count: int,
    active_jobs: int,
    slots: int,
    perf: z.record(z.string(), ModelPerfSchema).describe('measured speed per model, {} until a job ran'),
    breaker: z.object({ state: z.enum(['closed', 'open', 'half_open']), recent_failures: int, open_until: z.number().nullable() }),
    last_heartbeat: iso,
  })
  .describe('a node of the registry; memory in MiB');

export const NodeListSchema = z.object({ nodes: z.array(NodeSchema) });

const CountsSchema = z.object({ waiting: int, active: int, delayed: int, completed: int, failed: int });

export const ClusterStatsSchema = z.object({
  total_nodes: int,
  healthy_nodes: int,
  gpu_nodes: int,
  cpu_nodes: int,
  simulated_nodes: int,
  active_jobs: int,
  totals: CountsSchema,
  queues: z.record(z.string(), CountsSchema.extend({ by_priority: z.array(z.object({ priority: int, count: int })), oldest_waiting_ms: z.number().nullable() })),
  cache: z.object({ hits: int, misses: int, stores: int, too_large: int, errors: int, hit_ratio: z.number() }).describe('L1 cache counters'),
});

// ---- history and memory ----------------------------------------------------------------------------------------------

// A stored row is the record the workers write (libs/memory/record.ts), with when the drainer stored it.
const HistoryRowSchema = HistoryRecordSchema.extend({ stored_at: z.number().describe('ms since epoch') });

export const HistoryPageSchema = z.object({ items: z.array(HistoryRowSchema), next_cursor: z.string().nullable().describe('pass as cursor for the next (older) page') });

export const HistoryStatsSchema = z.object({
  by: z.enum(['model', 'node', 'day']),
  since: z.number().nullable(),
  until: z.number().nullable(),
  store: z.enum(['sqlite', 'postgres']),
  groups: z.array(
    z.object({
      key: z.string(),
      jobs: int,
      completed: int,
      failed: int,
      cancelled: int,
      prompt_tokens: z.number(),
      completion_tokens: z.number(),
      avg_total_ms: z.number().nullable(),
      p50_total_ms: z.number().nullable(),
      p95_total_ms: z.number().nullable(),
      first_at: z.number(),
      last_at: z.number(),
    }),
  ),
  drain: z.object({ open: z.boolean(), draining: z.boolean(), stored: int, skipped: int, last_error: z.string().nullable(), last_error_at: z.number().nullable(), waiting: int.nullable() }),
});

export const MemorySearchResultSchema = z.object({
  model: z.string().describe('MEMORY_EMBED_MODEL, which embedded the query'),
  items: z.array(z.object({ id: z.string(), score: z.number(), text: z.string(), namespace: z.string(), kind: z.string(), source: z.string().nullable(), model: z.string().nullable(), created_at: z.number() })),
});

// ---- batches (docs/api.md "Batches") ---------------------------------------------------------------------------------

export const BatchViewSchema = z.object({
  id: z.string(),
  object: z.literal('batch'),
  state: z.enum(['running', 'completed', 'cancelled']),
  counts: z.object({ total: int, waiting: int, active: int, completed: int, failed: int, cancelled: int }),
  created_at: iso,
  ended_at: iso.nullable(),
  callback_url: z.string().nullable(),
  results_url: z.string(),
});

export const BatchResultSchema = z.object({
  index: int,
  job_id: z.string(),
  state: z.string(),
  result: InferResultSchema.optional(),
  error: z.object({ code: z.string(), message: z.string(), retryable: z.boolean() }).optional(),
});

export const BatchPageSchema = BatchViewSchema.extend({ results: z.array(BatchResultSchema), next_offset: int.nullable() });

// ---- probes --------------------------------------------------------------------------------------------------------

const ErrorObject = ErrorBodySchema.shape.error;
export const LivezSchema = z.object({ ok: z.literal(true), draining: z.boolean() });
export const ReadyzSchema = z.union([
  z.object({ ok: z.literal(true), redis: z.literal('up') }),
  z.object({ ok: z.literal(false), draining: z.literal(true), error: ErrorObject }),
  z.object({ ok: z.literal(false), redis: z.literal('down'), error: ErrorObject }),
]);
