// The contract every workflow kind fulfils: how a ready step's call is built, whether a settled step adds steps, the final result.
import type { StepCall, StepDef, StepError, StepRecord, WorkflowKind, WorkflowSnapshot } from '../types.js';

export interface RenderContext {
  input: Record<string, string | number | boolean>;
  settings: Record<string, unknown>;
  /** Records of the steps `needs(def)` named. */
  records: Map<string, StepRecord>;
}

export type Summary = { ok: true; result: unknown } | { ok: false; error: StepError };

export interface KindHandler {
  /** Steps whose records `render` reads. */
  needs(def: StepDef): string[];
  render(def: StepDef, ctx: RenderContext): StepCall;
  /** Steps to add when `def` settles (read from its record); they are added in the same atomic call. */
  expand?(snap: WorkflowSnapshot, def: StepDef, record: StepRecord): StepDef[];
  /** The workflow's result once every step has settled and none required failed; or why it fails. */
  summarize(snap: WorkflowSnapshot): Summary;
  /** Label of the stage in progress, for progress reports. */
  stage?(snap: WorkflowSnapshot): string;
}

/** The handler of every kind: the coordinator receives this map (kinds/index.ts builds the default one). */
export type KindHandlers = Readonly<Record<WorkflowKind, KindHandler>>;

/** A step's public summary inside a workflow result. */
export function stepSummary(def: StepDef, snap: WorkflowSnapshot) {
  const rec = snap.records.get(def.id);
  const state = snap.states.get(def.id) ?? 'waiting';
  return {
    state,
    model: def.call.model,
    node_id: rec?.node_id ?? null,
    ...(rec?.output !== undefined ? { output: rec.output } : {}),
    ...(rec?.cached ? { cached: true } : {}),
    ...(rec?.error ? { error: rec.error } : {}),
  };
}
