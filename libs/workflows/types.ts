// Workflow domain types: step definitions, step and workflow states, what a finished step records.
import type { ChatCall, GenerateCall, InferResult, RoutingFields } from '../core/index.js';

/** BullMQ queue of workflow parents; its jobs are finalised by the workflow finaliser, never run as inference. */
export const WORKFLOW_QUEUE = 'workflow';
/** Queue nobody consumes: each workflow's gate child lives here until every step has settled. */
export const GATE_QUEUE = 'workflow.gate';
/** Most steps one workflow may hold (submitted plus added by the orchestrator). */
export const MAX_STEPS = 200;

const WORKFLOW_KINDS = ['dag', 'distribute', 'orchestrate'] as const;
export type WorkflowKind = (typeof WORKFLOW_KINDS)[number];

/** waiting: dependencies not done; queued: its job was (or is being) added; then one terminal state. */
export type StepState = 'waiting' | 'queued' | 'completed' | 'failed' | 'skipped' | 'cancelled';
export const TERMINAL_STEP_STATES: readonly StepState[] = ['completed', 'failed', 'skipped', 'cancelled'];

/** failing / cancelling: no new steps start, the ones in flight are being wound down. */
export type WorkflowStatus = 'running' | 'failing' | 'cancelling' | 'completed' | 'failed' | 'cancelled';
export const FINAL_STATUSES: readonly WorkflowStatus[] = ['completed', 'failed', 'cancelled'];

export type StepCall = GenerateCall | ChatCall;

export const SUBTASK_TYPES = ['code', 'math', 'reasoning', 'general'] as const;
export type SubtaskType = (typeof SUBTASK_TYPES)[number];

/** One part of an orchestrated task, as the decomposition named it (ids t1, t2, ...). */
export interface SubtaskInfo {
  id: string;
  subtask: string;
  type: SubtaskType;
  depends_on: string[];
}

/** An execute run as a later stage refers to it: enough to group the answers by subtask and model. */
export interface RunRef {
  step: string;
  subtask: string;
  model: string;
}

export const ORCHESTRATE_STAGES = ['analyze', 'answer', 'decompose', 'execute', 'synthesize'] as const;
export type OrchestrateStage = (typeof ORCHESTRATE_STAGES)[number];

/**
 * What a step is within its kind, stored with its definition: the fan-out pair of a distribute step, the stage of an
 * orchestrator step with the subtask data its prompt is built from. The view shows the labels (view.ts).
 */
export type StepLabel =
  | { kind: 'distribute'; prompt_index: number; model_index: number }
  | { kind: 'orchestrate'; stage: 'analyze' | 'answer' | 'decompose' }
  /** context: the subtasks it depends on; runs: their runs, whose answers are quoted into its prompt. */
  | { kind: 'orchestrate'; stage: 'execute'; subtask: SubtaskInfo; context: SubtaskInfo[]; runs: RunRef[] }
  /** runs: every execute run, whose answers the heavy model merges. */
  | { kind: 'orchestrate'; stage: 'synthesize'; subtasks: SubtaskInfo[]; runs: RunRef[] };

/** A step as stored: the call with its templates unrendered, its dependencies and how it is routed. */
export interface StepDef {
  id: string;
  call: StepCall;
  depends_on: string[];
  /** An optional step that fails lets its dependents run without it (its output renders as ""). */
  optional: boolean;
  routing: RoutingFields;
  cache?: boolean;
  timeout_ms?: number;
  label?: StepLabel;
}

export interface StepError {
  code: string;
  message: string;
}

/** What a settled step leaves behind. */
export interface StepRecord {
  state: StepState;
  job_id: string | null;
  model: string;
  node_id: string | null;
  /** Answer text (generate: response; chat: message content). */
  output?: string;
  cached?: boolean;
  error?: StepError;
  started_at?: number;
  finished_at: number;
  queued_ms?: number;
  attempts?: number;
  result?: InferResult;
}

/** What a finished step job reports. */
export type StepOutcome = { state: 'completed'; result: InferResult } | { state: 'failed'; error: StepError };

/** The parts of a step's BullMQ job the coordinator reads. */
export interface StepJobInfo {
  id?: string | undefined;
  timestamp: number;
  processedOn?: number | undefined;
  attemptsMade: number;
}

/** Everything the coordinator knows about a workflow, read in one round trip. */
export interface WorkflowSnapshot {
  id: string;
  kind: WorkflowKind;
  name: string | null;
  status: WorkflowStatus;
  priority: number;
  cache: boolean | undefined;
  input: Record<string, string | number | boolean>;
  /** Kind-specific settings (the orchestrator's models and synthesis mode). */
  settings: Record<string, unknown>;
  created_at: number;
  finished_at: number | null;
  /** The HTTP request that created it (X-Request-Id): put in every step job's data, so the worker's lines carry it. */
  request_id: string | null;
  /** The submitting API key's id (never the key), or null without API_KEYS: every step job carries it too. */
  api_key_id: string | null;
  pending: number;
  error: StepError | null;
  failed_step: string | null;
  result: unknown;
  defs: Map<string, StepDef>;
  states: Map<string, StepState>;
  records: Map<string, StepRecord>;
  /** Definition order (submission order, then order of addition). */
  order: string[];
}

export const stepJobId = (workflowId: string, stepId: string): string => `${workflowId}.${stepId}`;
export const gateJobId = (workflowId: string): string => `${workflowId}.gate`;

/** Answer text of a finished inference. */
export const outputOf = (r: InferResult): string => r.response ?? r.message?.content ?? (r.embeddings ? JSON.stringify(r.embeddings) : '');
