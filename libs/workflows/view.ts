// How a workflow looks to API users: overall state and progress, and every step's state, node, result and timing. Pure.
import type { StepError, StepLabel, StepState, SubtaskInfo, WorkflowKind, WorkflowSnapshot, WorkflowStatus } from './types.js';

/** A queued step's BullMQ job as read right now. */
export interface LiveStep {
  job_id: string;
  queue: string;
  state: string;
  processed_on: number | null;
  attempts_made: number;
  timestamp: number;
}

export interface StepView {
  id: string;
  /** waiting, queued, running, completed, failed, skipped or cancelled. */
  state: StepState | 'running';
  model: string;
  depends_on: string[];
  optional: boolean;
  job_id: string | null;
  queue: string | null;
  node_id: string | null;
  cached: boolean;
  attempts: number;
  output?: string;
  error?: StepError;
  queued_ms: number | null;
  started_at: string | null;
  finished_at: string | null;
  duration_ms: number | null;
  meta?: StepMeta;
  result?: unknown;
}

/** A step's label as users see it: the fan-out pair, or the orchestrator stage (and an execute run's subtask). */
export type StepMeta = { prompt_index: number; model_index: number } | { stage: string; subtask?: SubtaskInfo };

export interface WorkflowView {
  id: string;
  kind: WorkflowKind;
  name: string | null;
  state: WorkflowStatus;
  priority: number;
  created_at: string;
  finished_at: string | null;
  /** The id of the HTTP request that created it (X-Request-Id, or the one the API made). */
  request_id?: string;
  /** The earlier jobs recalled into the prompt (memory.recall), when asked. */
  recalled?: unknown[];
  progress: { stage?: string; total: number; completed: number; failed: number; skipped: number; cancelled: number; running: number; queued: number; waiting: number; percent: number };
  steps: StepView[];
  result?: unknown;
  error?: StepError;
  failed_step?: string;
  status_url: string;
  stream_url: string;
}

const iso = (ms: number | null | undefined): string | null => (ms ? new Date(ms).toISOString() : null);

/** The label the view shows, without what the orchestrator keeps to build prompts (context, runs, subtasks). */
function publicMeta(label: StepLabel | undefined): StepMeta | undefined {
  if (!label) return undefined;
  if (label.kind === 'distribute') return { prompt_index: label.prompt_index, model_index: label.model_index };
  return label.stage === 'execute' ? { stage: label.stage, subtask: label.subtask } : { stage: label.stage };
}

export function buildView(snap: WorkflowSnapshot, live: ReadonlyMap<string, LiveStep>, stage?: string): WorkflowView {
  const steps: StepView[] = snap.order.flatMap((id) => {
    const def = snap.defs.get(id);
    if (!def) return [];
    const rec = snap.records.get(id);
    const lv = live.get(id);
    const stored = snap.states.get(id) ?? 'waiting';
    const state: StepView['state'] = stored === 'queued' && lv?.state === 'active' ? 'running' : stored;
    const started = rec?.started_at ?? lv?.processed_on ?? null;
    const meta = publicMeta(def.label);
    return [
      {
        id,
        state,
        model: rec?.result?.model ?? def.call.model,
        depends_on: def.depends_on,
        optional: def.optional,
        job_id: rec?.job_id ?? lv?.job_id ?? null,
        queue: lv?.queue ?? rec?.result?.routing_decision.queue ?? null,
        node_id: rec?.node_id ?? null,
        cached: rec?.cached ?? false,
        attempts: rec?.attempts ?? lv?.attempts_made ?? 0,
        ...(rec?.output !== undefined ? { output: rec.output } : {}),
        ...(rec?.error ? { error: rec.error } : {}),
        queued_ms: rec?.queued_ms ?? (lv?.processed_on ? lv.processed_on - lv.timestamp : null),
        started_at: iso(started),
        finished_at: iso(rec?.finished_at),
        duration_ms: started && rec?.finished_at ? rec.finished_at - started : null,
        ...(meta ? { meta } : {}),
        ...(rec?.result ? { result: rec.result } : {}),
      },
    ];
  });
  const count = (s: StepView['state']) => steps.filter((x) => x.state === s).length;
  const settled = count('completed') + count('failed') + count('skipped') + count('cancelled');
  return {
    id: snap.id,
    kind: snap.kind,
    name: snap.name,
    state: snap.status,
    priority: snap.priority,
    created_at: new Date(snap.created_at).toISOString(),
    finished_at: iso(snap.finished_at),
    ...(snap.request_id ? { request_id: snap.request_id } : {}),
    // Recall (memory.recall on /v1/orchestrate): what was put in front of the prompt, kept in the settings.
    ...(Array.isArray(snap.settings.recalled) ? { recalled: snap.settings.recalled } : {}),
    progress: {
      ...(stage ? { stage } : {}),
      total: steps.length,
      completed: count('completed'),
      failed: count('failed'),
      skipped: count('skipped'),
      cancelled: count('cancelled'),
      running: count('running'),
      queued: count('queued'),
      waiting: count('waiting'),
      percent: steps.length ? Math.round((settled / steps.length) * 100) : 0,
    },
    steps,
    ...(snap.result !== undefined ? { result: snap.result } : {}),
    ...(snap.error ? { error: snap.error } : {}),
    ...(snap.failed_step ? { failed_step: snap.failed_step } : {}),
    status_url: `/v1/workflows/${snap.id}`,
    stream_url: `/v1/workflows/${snap.id}/stream`,
  };
}

/** Progress as the workflow job reports it (Bull Board): step counts by state, and the stage of kinds that name one. */
export function progressOf(snap: Pick<WorkflowSnapshot, 'states' | 'status'>, stage?: string) {
  const count = (s: StepState) => [...snap.states.values()].filter((x) => x === s).length;
  const total = snap.states.size;
  const settled = count('completed') + count('failed') + count('skipped') + count('cancelled');
  return {
    status: snap.status,
    ...(stage ? { stage } : {}),
    total,
    completed: count('completed'),
    failed: count('failed'),
    skipped: count('skipped'),
    cancelled: count('cancelled'),
    queued: count('queued'),
    waiting: count('waiting'),
    percent: total ? Math.round((settled / total) * 100) : 0,
  };
}
