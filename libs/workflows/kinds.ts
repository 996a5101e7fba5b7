// What differs between workflow kinds: how a ready step's call is built, whether a settled step adds steps, and the final result.
import { renderTemplate, templateRefs } from './template.js';
import type { StepCall, StepDef, StepError, StepRecord, WorkflowKind, WorkflowSnapshot } from './types.js';

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

const dag: KindHandler = {
  needs(def) {
    const texts = def.call.type === 'chat' ? def.call.messages.map((m) => m.content) : [def.call.prompt, def.call.system ?? ''];
    return [...new Set(texts.flatMap((t) => templateRefs(t).refs.flatMap((r) => (r.kind === 'step' ? [r.step] : []))))];
  },
  render(def, ctx) {
    const outputs: Record<string, string> = {};
    for (const [id, r] of ctx.records) outputs[id] = r.state === 'completed' ? (r.output ?? '') : '';
    const values = { input: ctx.input, outputs };
    if (def.call.type === 'chat') return { ...def.call, messages: def.call.messages.map((m) => ({ ...m, content: renderTemplate(m.content, values) })) };
    return { ...def.call, prompt: renderTemplate(def.call.prompt, values), ...(def.call.system !== undefined ? { system: renderTemplate(def.call.system, values) } : {}) };
  },
  summarize(snap) {
    const steps: Record<string, ReturnType<typeof stepSummary>> = {};
    const outputs: Record<string, string> = {};
    for (const id of snap.order) {
      const def = snap.defs.get(id);
      if (!def) continue;
      steps[id] = stepSummary(def, snap);
      const rec = snap.records.get(id);
      if (rec?.state === 'completed') outputs[id] = rec.output ?? '';
    }
    return { ok: true, result: { outputs, steps } };
  },
};

const distribute: KindHandler = {
  needs: () => [],
  render: (def) => def.call,
  summarize(snap) {
    const pairs = snap.order.flatMap((id) => {
      const def = snap.defs.get(id);
      if (!def) return [];
      const rec = snap.records.get(id);
      const r = rec?.result;
      const prompt = def.call.type === 'chat' ? (def.call.messages.at(-1)?.content ?? '') : def.call.prompt;
      return [
        {
          step: id,
          prompt_index: Number(def.meta?.prompt_index ?? 0),
          model_index: Number(def.meta?.model_index ?? 0),
          prompt,
          model: def.call.model,
          state: snap.states.get(id) ?? 'waiting',
          job_id: rec?.job_id ?? null,
          node_id: rec?.node_id ?? null,
          answer: rec?.state === 'completed' ? (rec.output ?? '') : null,
          ...(rec?.cached ? { cached: true } : {}),
          ...(rec?.error ? { error: rec.error } : {}),
          queued_ms: rec?.queued_ms ?? null,
          started_at: rec?.started_at ?? null,
          finished_at: rec?.finished_at ?? null,
          total_duration_ms: r?.total_duration_ms ?? null,
          eval_duration_ms: r?.eval_duration_ms ?? null,
          completion_tokens: r?.completion_tokens ?? null,
        },
      ];
    });
    const completed = pairs.filter((p) => p.state === 'completed');
    if (completed.length === 0 && pairs.length > 0) {
      const first = pairs.find((p) => p.error)?.error ?? { code: 'internal', message: 'no pair completed' };
      return { ok: false, error: { code: first.code, message: `every prompt × model pair failed; first error: ${first.message}` } };
    }
    const byNode: Record<string, number> = {};
    for (const p of completed) if (p.node_id) byNode[p.node_id] = (byNode[p.node_id] ?? 0) + 1;
    return { ok: true, result: { pairs, summary: { pairs: pairs.length, completed: completed.length, failed: pairs.length - completed.length, by_node: byNode } } };
  },
};

/** Handlers by kind; the orchestrator's is registered by its module to keep this file small. */
export function kindHandlers(orchestrate: KindHandler): Record<WorkflowKind, KindHandler> {
  return { dag, distribute, orchestrate };
}
