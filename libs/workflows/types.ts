// Workflow domain types: step definitions, step and workflow states, what a finished step records.
import type { ChatCall, GenerateCall, InferResult, RoutingFields } from '../core/index.js';

/** BullMQ queue of workflow parents; its jobs are finalised by the workflow finaliser, never run as inference. */
export const WORKFLOW_QUEUE = 'workflow';
/** Queue nobody consumes: each workflow's gate child lives here until every step has settled. */
export const GATE_QUEUE = 'workflow.gate';
/** Most steps one workflow may hold (submitted plus added by the orchestrator). */
export const MAX_STEPS = 200;

export const WORKFLOW_KINDS = ['dag', 'distribute', 'orchestrate'] as const;
export type WorkflowKind = (typeof WORKFLOW_KINDS)[number];

/** waiting: dependencies not done; queued: its job was (or is being) added; then one terminal state. */
export type StepState = 'waiting' | 'queued' | 'completed' | 'failed' | 'skipped' | 'cancelled';
export const TERMINAL_STEP_STATES: readonly StepState[] = ['completed', 'failed', 'skipped', 'cancelled'];

/** failing / cancelling: no new steps start, the ones in flight are being wound down. */
export type WorkflowStatus = 'running' | 'failing' | 'cancelling' | 'completed' | 'failed' | 'cancelled';
export const FINAL_STATUSES: readonly WorkflowStatus[] = ['completed', 'failed', 'cancelled'];

export type StepCall = GenerateCall | ChatCall;

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
  /** Labels for views: orchestrator stage, subtask, fan-out pair. */
  meta?: Record<string, unknown>;
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
