// The orchestrator as a workflow kind: each stage adds the next when it settles (analyze → answer or decompose →
// execute runs → synthesize), prompts quote earlier answers, and the result carries every stage, vote and answer.
import { consensus, type ConsensusResult } from '../consensus.js';
import {
  decompositionSchema,
  decomposePrompt,
  DEFAULT_COMPLEXITY,
  DETERMINISTIC,
  MODERATE_MODELS_PER_SUBTASK,
  orchestrateStep,
  parseComplexity,
  parseDecomposition,
  subtaskPrompt,
  synthesizePrompt,
  type Complexity,
  type Decomposition,
  type OrchestrateSettings,
} from '../orchestrator.js';
import { ORCHESTRATE_STAGES, TERMINAL_STEP_STATES, type RunRef, type StepCall, type StepRecord, type SubtaskInfo, type SubtaskType, type WorkflowSnapshot } from '../types.js';
import { stepSummary, type KindHandler, type Summary } from './kind.js';

/** Resolved and stored at submit (parseOrchestrateRequest), so this is the shape the settings have. */
const settingsOf = (snap: { settings: Record<string, unknown> }): OrchestrateSettings => snap.settings as unknown as OrchestrateSettings;

function complexityOf(snap: WorkflowSnapshot): { level: Complexity; source: 'model' | 'default' } {
  const rec = snap.records.get('analyze');
  const level = rec?.state === 'completed' ? parseComplexity(rec.output) : null;
  return level ? { level, source: 'model' } : { level: DEFAULT_COMPLEXITY, source: 'default' };
}

function decompositionOf(snap: WorkflowSnapshot): Decomposition | null {
  if (!snap.defs.has('decompose')) return null;
  const s = settingsOf(snap);
  const rec = snap.records.get('decompose');
  return parseDecomposition(rec?.state === 'completed' ? rec.output : undefined, s.prompt, s.max_subtasks);
}

const runId = (subtask: string, i: number): string => `${subtask}-m${i}`;

function modelsFor(s: OrchestrateSettings, type: SubtaskType, level: Complexity): string[] {
  // A workflow stored before a type existed (math) has no pool for it: the reasoning one, else the heavy model.
  const pool = s.pools[type] ?? s.pools.reasoning ?? [s.heavy_model];
  return level === 'COMPLEX' ? pool : pool.slice(0, MODERATE_MODELS_PER_SUBTASK);
}

type Run = { ref: RunRef; rec: StepRecord | undefined };

/** Runs of each subtask with their records, in pool order. */
function runsBySubtask(records: Map<string, StepRecord>, refs: Iterable<RunRef>): Map<string, Run[]> {
  const out = new Map<string, Run[]>();
  for (const ref of refs) out.set(ref.subtask, [...(out.get(ref.subtask) ?? []), { ref, rec: records.get(ref.step) }]);
  return out;
}

/** Every execute run of the workflow, in definition order. */
function executeRuns(snap: WorkflowSnapshot): RunRef[] {
  return snap.order.flatMap((id) => {
    const def = snap.defs.get(id);
    return def?.label?.kind === 'orchestrate' && def.label.stage === 'execute' ? [{ step: id, subtask: def.label.subtask.id, model: def.call.model }] : [];
  });
}

const answered = (runs: readonly Run[]) => runs.flatMap((r) => (r.rec?.state === 'completed' ? [{ model: r.ref.model, text: r.rec.output ?? '' }] : []));

function voteOn(sub: SubtaskInfo, runs: readonly Run[], weights: Record<string, number>): ConsensusResult {
  return consensus(
    answered(runs).map((a) => ({ ...a, weight: weights[a.model] ?? 1 })),
    { code: sub.type === 'code' },
  );
}

/** The execute runs (and the synthesis) after a decomposition: each subtask on its models, after the runs it needs. */
function afterDecompose(s: OrchestrateSettings, d: Decomposition, level: Complexity) {
  const runIds = new Map<string, string[]>();
  const refs = new Map<string, RunRef>();
  const out = [];
  for (const sub of d.subtasks) {
    const models = modelsFor(s, sub.type, level);
    runIds.set(sub.id, models.map((_, i) => runId(sub.id, i)));
    const depRuns = sub.depends_on.flatMap((x) => runIds.get(x) ?? []);
    const context = d.subtasks.filter((x) => sub.depends_on.includes(x.id));
    const runs = depRuns.flatMap((x) => refs.get(x) ?? []);
    for (const [i, model] of models.entries()) {
      const id = runId(sub.id, i);
      const call: StepCall = { type: 'generate', model, prompt: '', ...(s.options ? { options: s.options } : {}) };
      out.push(orchestrateStep(id, call, ['decompose', ...depRuns], true, { kind: 'orchestrate', stage: 'execute', subtask: sub, context, runs }));
      refs.set(id, { step: id, subtask: sub.id, model });
    }
  }
  if (s.synthesis === 'llm' && out.length > 1) {
    const call: StepCall = { type: 'generate', model: s.heavy_model, prompt: '', options: { ...DETERMINISTIC } };
    out.push(orchestrateStep('synthesize', call, [...refs.keys()], false, { kind: 'orchestrate', stage: 'synthesize', subtasks: d.subtasks, runs: [...refs.values()] }));
  }
  return out;
}

export const orchestrateKind: KindHandler = {
  needs: (def) => def.depends_on,

  render(def, ctx) {
    const label = def.label;
    if (label?.kind !== 'orchestrate' || def.call.type !== 'generate') return def.call;
    const s = settingsOf(ctx);
    if (label.stage === 'execute') {
      const runs = runsBySubtask(ctx.records, label.runs);
      const context = label.context.map((d) => ({ subtask: d, answer: voteOn(d, runs.get(d.id) ?? [], s.weights).winner?.text ?? '(no answer)' }));
      return { ...def.call, prompt: subtaskPrompt(s.prompt, label.subtask, context) };
    }
    if (label.stage === 'synthesize') {
      const runs = runsBySubtask(ctx.records, label.runs);
      const parts = label.subtasks.map((sub) => ({ subtask: sub, answers: answered(runs.get(sub.id) ?? []) }));
      return { ...def.call, prompt: synthesizePrompt(s.prompt, parts) };
    }
    return def.call;
  },

  expand(snap, def, record) {
    const s = settingsOf(snap);
    if (def.id === 'analyze') {
      const level = (record.state === 'completed' ? parseComplexity(record.output) : null) ?? DEFAULT_COMPLEXITY;
      if (level === 'SIMPLE') {
        const call: StepCall = { type: 'generate', model: s.pools.general[0] ?? s.heavy_model, prompt: s.prompt, ...(s.options ? { options: s.options } : {}) };
        return [orchestrateStep('answer', call, ['analyze'], false, { kind: 'orchestrate', stage: 'answer' })];
      }
      const call: StepCall = {
        type: 'generate',
        model: s.heavy_model,
        prompt: decomposePrompt(s.prompt, s.max_subtasks, s.specialists),
        format: decompositionSchema(s.max_subtasks),
        options: { ...DETERMINISTIC, num_predict: 1024 },
      };
      // Optional: when the decomposition fails outright, the task runs as one subtask.
      return [orchestrateStep('decompose', call, ['analyze'], true, { kind: 'orchestrate', stage: 'decompose' })];
    }
    if (def.id === 'decompose') {
      const d = parseDecomposition(record.state === 'completed' ? record.output : undefined, s.prompt, s.max_subtasks);
      return afterDecompose(s, d, complexityOf(snap).level);
    }
    return [];
  },

  summarize(snap): Summary {
    const s = settingsOf(snap);
    const complexity = complexityOf(snap);
    const analyze = snap.records.get('analyze');
    const base = {
      complexity: { level: complexity.level, source: complexity.source, model: s.light_model, ...(analyze?.error ? { error: analyze.error } : {}) },
      stages: stagesOf(snap),
    };
    if (snap.defs.has('answer')) {
      const rec = snap.records.get('answer');
      return { ok: true, result: { answer: rec?.output ?? '', ...base, decomposition: null, subtasks: [], synthesis: { mode: 'single', step: 'answer', model: rec?.model ?? null, node_id: rec?.node_id ?? null } } };
    }
    const d = decompositionOf(snap) ?? parseDecomposition(undefined, s.prompt, s.max_subtasks);
    const runs = runsBySubtask(snap.records, executeRuns(snap));
    const subtasks = d.subtasks.map((sub) => {
      const rs = runs.get(sub.id) ?? [];
      const vote = voteOn(sub, rs, s.weights);
      return {
        ...sub,
        runs: rs.flatMap((r) => {
          const def = snap.defs.get(r.ref.step);
          return def ? [{ step: r.ref.step, ...stepSummary(def, snap) }] : [];
        }),
        consensus: { winner_model: vote.winner?.model ?? null, agreed: vote.agreed, groups: vote.groups, method: vote.method },
        answer: vote.winner?.text ?? null,
      };
    });
    const empty = subtasks.find((x) => x.answer === null);
    if (empty) {
      const err = empty.runs.find((r) => r.error)?.error;
      return { ok: false, error: { code: err?.code ?? 'internal', message: `subtask ${empty.id} ("${empty.subtask}") failed on every model${err ? `: ${err.message}` : ''}` } };
    }
    const decomposition = { source: d.source, ...(d.problem ? { problem: d.problem } : {}), model: s.heavy_model, subtasks: d.subtasks };
    const synth = snap.records.get('synthesize');
    if (snap.defs.has('synthesize')) {
      return {
        ok: true,
        result: { answer: synth?.output ?? '', ...base, decomposition, subtasks, synthesis: { mode: 'llm', step: 'synthesize', model: s.heavy_model, node_id: synth?.node_id ?? null } },
      };
    }
    const answer = subtasks.length === 1 ? (subtasks[0]?.answer ?? '') : subtasks.map((x) => `## ${x.id}: ${x.subtask}\n\n${x.answer}`).join('\n\n');
    const agreed = subtasks.map((x) => ({ subtask: x.id, winner_model: x.consensus.winner_model, agreed: x.consensus.agreed }));
    return { ok: true, result: { answer, ...base, decomposition, subtasks, synthesis: { mode: s.synthesis === 'consensus' ? 'consensus' : 'single', agreed } } };
  },

  stage(snap) {
    return stagesOf(snap).find((x) => x.state !== 'done')?.stage ?? 'done';
  },
};

/** Each stage with its steps and whether it is done: what a user watches in progress and in the result. */
function stagesOf(snap: WorkflowSnapshot): { stage: string; steps: string[]; state: 'pending' | 'running' | 'done' }[] {
  const byStage = new Map<string, string[]>();
  for (const id of snap.order) {
    const label = snap.defs.get(id)?.label;
    const st = label?.kind === 'orchestrate' ? label.stage : 'other';
    byStage.set(st, [...(byStage.get(st) ?? []), id]);
  }
  return ORCHESTRATE_STAGES.flatMap((st) => {
    const steps = byStage.get(st);
    if (!steps) return [];
    const done = steps.every((id) => TERMINAL_STEP_STATES.includes(snap.states.get(id) ?? 'waiting'));
    const started = steps.some((id) => snap.states.get(id) !== 'waiting');
    return [{ stage: st, steps, state: done ? ('done' as const) : started ? ('running' as const) : ('pending' as const) }];
  });
}
