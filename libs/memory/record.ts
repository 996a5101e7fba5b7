// One finished job or workflow as the results history keeps it, built from the job and its outcome (pure), and parsed
// back leniently from the Redis stream, since entries may outlive the code that wrote them.
import { z } from 'zod';
import type { HydraError, InferenceCall, InferResult } from '../core/index.js';
import type { InferJob } from '../queue/index.js';

/** Prompt and answer are cut to this many characters each: a record stays a few KB, so the stream stays bounded. */
export const MAX_TEXT_CHARS = 32_768;
const cut = (s: string, max = MAX_TEXT_CHARS): string => (s.length > max ? `${s.slice(0, max - 1)}…` : s);

export const OUTCOMES = ['completed', 'failed', 'cancelled'] as const;
export const RECORD_KINDS = ['job', 'workflow'] as const;

const int = z.number().int();
export const HistoryRecordSchema = z.object({
  kind: z.enum(RECORD_KINDS),
  /** Job id, or workflow id. */
  id: z.string().min(1),
  /** Attempts made when it ended (1 for a job that completed at once; 0 for a workflow): with `id`, the row's identity. */
  attempt: int,
  request_id: z.string().nullable(),
  /** `k_` + the first 16 hex digits of SHA-256(key) of the API key that submitted it; never the key. Null without API_KEYS. */
  api_key_id: z.string().nullable(),
  /** The model asked for (a workflow: null). */
  model: z.string().nullable(),
  /** generate / chat / embed; a workflow: its kind (dag, map_reduce, orchestrate, ...). */
  type: z.string(),
  /** The node that ran the last attempt (a workflow: null). */
  node: z.string().nullable(),
  queue: z.string().nullable(),
  priority: int,
  outcome: z.enum(OUTCOMES),
  error_code: z.string().nullable(),
  error_message: z.string().nullable(),
  /** The request's text: a generate prompt, a chat's messages as "role: content" lines, embed inputs; a workflow: its input as JSON. */
  prompt: z.string(),
  /** The answer's text (an embed: a note of the vectors' shape, not the vectors; a workflow: its result as JSON). */
  answer: z.string().nullable(),
  /** The call's settings without its text (options, format, system, tool names, think); JSON. */
  request: z.record(z.string(), z.unknown()),
  /** The routing decision (requested/selected node, reason, queued ms, candidates, attempts); a workflow: {steps}. */
  routing: z.record(z.string(), z.unknown()).nullable(),
  prompt_tokens: int.nullable(),
  completion_tokens: int.nullable(),
  /** ms since epoch. */
  submitted_at: z.number(),
  started_at: z.number().nullable(),
  finished_at: z.number(),
  /** Durations, ms. total = submit to end, what the caller waited. */
  queued_ms: z.number().nullable(),
  total_ms: z.number(),
  load_ms: z.number().nullable(),
  prompt_eval_ms: z.number().nullable(),
  eval_ms: z.number().nullable(),
  workflow_id: z.string().nullable(),
  workflow_step: z.string().nullable(),
});
export type HistoryRecord = z.infer<typeof HistoryRecordSchema>;

/** A record read back from the stream, or null when it is not one (another version, or corrupted). */
export function parseRecord(raw: string): HistoryRecord | null {
  try {
    const r = HistoryRecordSchema.safeParse(JSON.parse(raw));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

/** The fields of a BullMQ job a record needs (structural: this lib does not depend on BullMQ's Job class). */
export interface HistoryJob {
  id?: string | undefined;
  queueName: string;
  /** When it was added, ms. */
  timestamp: number;
  /** When its last attempt started, ms. */
  processedOn?: number | undefined;
  attemptsMade: number;
  data: unknown;
}

export type HistoryOutcome = { state: 'completed'; result: InferResult } | { state: 'failed'; error: HydraError };

/** The text a history row keeps as its prompt (and its vector is made of): the semantic cache builds the same. */
export function promptText(call: InferenceCall): string {
  if (call.type === 'generate') return cut(call.prompt);
  if (call.type === 'chat') return cut(call.messages.map((m) => `${m.role}: ${m.content}`).join('\n'));
  return cut(typeof call.input === 'string' ? call.input : call.input.join('\n'));
}

/** What the call asked besides its text; images and token contexts only as counts. */
export function requestOf(call: InferenceCall): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if ('options' in call && call.options) out.options = call.options;
  if ('format' in call && call.format) out.format = call.format;
  if ('think' in call && call.think !== undefined) out.think = call.think;
  if (call.type === 'generate') {
    if (call.system) out.system = cut(call.system, 4096);
    if (call.images?.length) out.images = call.images.length;
    if (call.raw) out.raw = true;
  }
  if (call.type === 'chat') {
    if (call.tools?.length) out.tools = call.tools.map((t) => t.function.name);
    const images = call.messages.reduce((n, m) => n + (m.images?.length ?? 0), 0);
    if (images) out.images = images;
    out.messages = call.messages.length;
  }
  if (call.type === 'embed' && call.dimensions) out.dimensions = call.dimensions;
  return out;
}

function answerText(call: InferenceCall, r: InferResult): string {
  if (call.type === 'embed') {
    const e = r.embeddings ?? [];
    return `[${e.length} embedding(s) of ${e[0]?.length ?? 0} dims]`;
  }
  if (call.type === 'chat') {
    const calls = r.message?.tool_calls?.length ? `\n[tool calls] ${JSON.stringify(r.message.tool_calls)}` : '';
    return cut(`${r.message?.content ?? ''}${calls}`);
  }
  return cut(r.response ?? '');
}

/** The record of an inference job that ended for good on `nodeId` at `now`; `apiKeyId` as the API put it in the payload. */
export function jobRecord(job: HistoryJob, outcome: HistoryOutcome, nodeId: string, now: number): HistoryRecord {
  const data = job.data as InferJob & { api_key_id?: string };
  const base = {
    kind: 'job' as const,
    id: job.id ?? '',
    attempt: job.attemptsMade,
    request_id: data.request_id ?? null,
    api_key_id: data.api_key_id ?? null,
    model: data.call.model,
    type: data.call.type,
    queue: job.queueName,
    priority: data.priority,
    prompt: promptText(data.call),
    request: requestOf(data.call),
    submitted_at: job.timestamp,
    started_at: job.processedOn ?? null,
    finished_at: now,
    total_ms: Math.max(0, now - job.timestamp),
    workflow_id: data.workflow?.id ?? null,
    workflow_step: data.workflow?.step ?? null,
  };
  if (outcome.state === 'failed') {
    return {
      ...base,
      node: nodeId,
      outcome: outcome.error.code === 'cancelled' ? 'cancelled' : 'failed',
      error_code: outcome.error.code,
      error_message: cut(outcome.error.message, 4096),
      answer: null,
      routing: { ...data.route, selected_node: nodeId, attempts: data.attempts_log ?? [] },
      prompt_tokens: null,
      completion_tokens: null,
      queued_ms: job.processedOn ? Math.max(0, job.processedOn - job.timestamp) : null,
      load_ms: null,
      prompt_eval_ms: null,
      eval_ms: null,
    };
  }
  const r = outcome.result;
  return {
    ...base,
    node: r.node_id || nodeId,
    outcome: 'completed',
    error_code: null,
    error_message: null,
    answer: answerText(data.call, r),
    routing: r.routing_decision as unknown as Record<string, unknown>,
    prompt_tokens: r.prompt_tokens,
    completion_tokens: r.completion_tokens,
    queued_ms: r.routing_decision.queued_ms,
    load_ms: r.load_duration_ms,
    prompt_eval_ms: r.prompt_eval_duration_ms,
    eval_ms: r.eval_duration_ms,
  };
}

/** What a finished workflow contributes (libs/workflows' snapshot and ending, kept structural). */
export interface FinishedWorkflow {
  id: string;
  kind: string;
  priority: number;
  status: string;
  created_at: number;
  finished_at: number;
  request_id: string | null;
  /** The submitting API key's id (never the key); null without API_KEYS. */
  api_key_id?: string | null;
  input: unknown;
  result?: unknown;
  error?: { code: string; message: string } | null;
  steps: number;
}

export function workflowRecord(w: FinishedWorkflow): HistoryRecord {
  const outcome = w.status === 'completed' ? 'completed' : w.status === 'cancelled' ? 'cancelled' : 'failed';
  return {
    kind: 'workflow',
    id: w.id,
    attempt: 0,
    request_id: w.request_id,
    api_key_id: w.api_key_id ?? null,
    model: null,
    type: w.kind,
    node: null,
    queue: null,
    priority: w.priority,
    outcome,
    error_code: w.error?.code ?? null,
    error_message: w.error ? cut(w.error.message, 4096) : null,
    prompt: cut(JSON.stringify(w.input ?? {})),
    answer: w.result === undefined ? null : cut(typeof w.result === 'string' ? w.result : JSON.stringify(w.result)),
    request: {},
    routing: { steps: w.steps },
    prompt_tokens: null,
    completion_tokens: null,
    submitted_at: w.created_at,
    started_at: null,
    finished_at: w.finished_at,
    queued_ms: null,
    total_ms: Math.max(0, w.finished_at - w.created_at),
    load_ms: null,
    prompt_eval_ms: null,
    eval_ms: null,
    workflow_id: w.id,
    workflow_step: null,
  };
}
