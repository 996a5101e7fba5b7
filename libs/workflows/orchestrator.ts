// The Hydra pipeline as a dynamic workflow: analyze (light model) → decompose (heavy model, JSON) → every subtask on
// several models honouring depends_on → synthesize (LLM merge or consensus). Prompts, parsers and stage logic; pure.
import { z } from 'zod';
import { DEFAULT_PRIORITY, InferenceOptionsSchema, ModelNameSchema, PrioritySchema, type FieldProblem, type InferenceOptions } from '../core/index.js';
import { consensus, type ConsensusResult } from './consensus.js';
import { findCycle } from './dag.js';
import type { KindHandler, Summary } from './kinds.js';
import { stepSummary } from './kinds.js';
import type { Parsed } from './spec.js';
import { zodProblems } from '../core/index.js';
import { TERMINAL_STEP_STATES, type StepCall, type StepDef, type StepRecord, type WorkflowSnapshot } from './types.js';

export const COMPLEXITIES = ['SIMPLE', 'MODERATE', 'COMPLEX'] as const;
export type Complexity = (typeof COMPLEXITIES)[number];
/** When the light model's answer names no level: decompose (the thorough path) rather than answer in one call. */
export const DEFAULT_COMPLEXITY: Complexity = 'MODERATE';
export const SUBTASK_TYPES = ['code', 'reasoning', 'general'] as const;
export type SubtaskType = (typeof SUBTASK_TYPES)[number];
/** Models per subtask: MODERATE runs each subtask on this many models of its pool, COMPLEX on the whole pool. */
export const MODERATE_MODELS_PER_SUBTASK = 2;
/** Each earlier answer quoted into a later prompt is cut to this many characters. */
const QUOTE_CHARS = 4000;

const modelName = ModelNameSchema;

export const OrchestrateRequestSchema = z.strictObject({
  prompt: z.string({ error: 'is required (the task to solve)' }).min(1, 'must not be empty'),
  light_model: modelName.optional(),
  heavy_model: modelName.optional(),
  /** Models every subtask runs on, whatever its type (overrides the configured pools). */
  models: z.array(modelName, { error: 'must be an array of model names' }).min(1, 'must hold at least one model').max(8, 'may hold at most 8 models').optional(),
  synthesis: z.enum(['llm', 'consensus'], { error: 'must be "llm" (a model merges the answers) or "consensus" (a vote between them)' }).default('llm'),
  /** Options for the subtask runs (analysis, decomposition and the merge always use temperature 0). */
  options: InferenceOptionsSchema.optional(),
  /** Vote weight per model in consensus (default 1). */
  weights: z.record(z.string(), z.number().min(0, 'weights must not be negative').max(100)).optional(),
  max_subtasks: z.number().int().min(1).max(8).default(5),
  priority: PrioritySchema.default(DEFAULT_PRIORITY),
  cache: z.boolean().optional(),
  wait: z.boolean().optional(),
  timeout_ms: z.number().int().positive().max(86_400_000).optional(),
});
export type OrchestrateRequest = z.infer<typeof OrchestrateRequestSchema>;

export interface OrchestratorDefaults {
  light_model?: string | undefined;
  heavy_model?: string | undefined;
  pools: Record<SubtaskType, string[]>;
}

/** Resolved at submit and stored with the workflow, so workers need no orchestrator configuration. */
export interface OrchestrateSettings {
  prompt: string;
  light_model: string;
  heavy_model: string;
  pools: Record<SubtaskType, string[]>;
  synthesis: 'llm' | 'consensus';
  options?: InferenceOptions;
  weights: Record<string, number>;
  max_subtasks: number;
}

/** Validate the body and fill models from configuration; a missing model names both the field and the variable. */
export function parseOrchestrateRequest(body: unknown, defaults: OrchestratorDefaults): Parsed<{ request: OrchestrateRequest; settings: OrchestrateSettings }> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { ok: false, problems: [{ field: '(body)', problem: 'must be a JSON object' }] };
  const r = OrchestrateRequestSchema.safeParse(body);
  if (!r.success) return { ok: false, problems: zodProblems(r.error) };
  const q = r.data;
  const problems: FieldProblem[] = [];
  const light = q.light_model ?? defaults.light_model ?? q.heavy_model ?? defaults.heavy_model;
  const heavy = q.heavy_model ?? defaults.heavy_model ?? light;
  if (!light || !heavy) problems.push({ field: 'light_model', problem: 'is required: no light model configured (pass light_model, or set ORCH_LIGHT_MODEL)' });
  const pools = {} as Record<SubtaskType, string[]>;
  for (const t of SUBTASK_TYPES) {
    const pool = q.models ?? (defaults.pools[t].length > 0 ? defaults.pools[t] : heavy ? [heavy] : []);
    pools[t] = [...new Set(pool)];
  }
  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    value: {
      request: q,
      settings: {
        prompt: q.prompt,
        light_model: light!,
        heavy_model: heavy!,
        pools,
        synthesis: q.synthesis,
        ...(q.options ? { options: q.options } : {}),
        weights: q.weights ?? {},
        max_subtasks: q.max_subtasks,
      },
    },
  };
}

/** Every model the pipeline may use (checked against the cluster at submit). */
export const orchestratorModels = (s: OrchestrateSettings): string[] => [...new Set([s.light_model, s.heavy_model, ...SUBTASK_TYPES.flatMap((t) => s.pools[t])])];

// ---- prompts ---------------------------------------------------------------------------------------------------

/** The task comes first, so the light model (and the simulated node, which echoes the first words) reads it first. */
export const analyzePrompt = (task: string): string =>
  `${task}\n\n---\nRate the complexity of the task above for a language model: SIMPLE (one direct answer), MODERATE (a few steps) ` +
  `or COMPLEX (several parts that need planning). Answer with one word.`;

export const decomposePrompt = (task: string, max: number): string =>
  `Split the task below into 2 to ${max} subtasks that together solve it. For each subtask give its text, its type ` +
  `("code", "reasoning" or "general") and depends_on: the numbers (counting from 1) of the earlier subtasks whose ` +
  `results it needs. Answer in JSON only.\n\nTask: ${task}`;

const quote = (s: string): string => (s.length > QUOTE_CHARS ? `${s.slice(0, QUOTE_CHARS)} […]` : s);

/** Ends with the subtask itself: the text a model continues from. */
export function subtaskPrompt(task: string, subtask: SubtaskInfo, context: { subtask: SubtaskInfo; answer: string }[]): string {
  const earlier = context.length
    ? `Results of earlier parts:\n${context.map((c) => `- ${c.subtask.id} (${c.subtask.subtask}): ${quote(c.answer)}`).join('\n')}\n`
    : '';
  return `You are solving one part of a larger task.\nOverall task: ${task}\n${earlier}Your part (${subtask.type}): ${subtask.subtask}`;
}

export function synthesizePrompt(task: string, parts: { subtask: SubtaskInfo; answers: { model: string; text: string }[] }[]): string {
  const body = parts
    .map((p) => `Part ${p.subtask.id} (${p.subtask.type}): ${p.subtask.subtask}\n${p.answers.map((a) => `- answer from ${a.model}: ${quote(a.text)}`).join('\n') || '- (no answer)'}`)
    .join('\n\n');
  return `Task: ${task}\n\nSeveral models answered the parts of this task. Merge their answers into one complete and correct answer to the task; where they disagree, prefer what is correct.\n\n${body}\n\nFinal answer:`;
}

// ---- parsing ---------------------------------------------------------------------------------------------------

/** The first level word in the answer (any case); null when there is none. */
export function parseComplexity(text: string | undefined): Complexity | null {
  const m = /\b(SIMPLE|MODERATE|COMPLEX)\b/i.exec(text ?? '');
  return m ? (m[1]!.toUpperCase() as Complexity) : null;
}

/** JSON schema sent as the decomposition step's `format` (Ollama constrains the output to it). */
export function decompositionSchema(max: number): Record<string, unknown> {
  return {
    type: 'object',
    properties: {
      subtasks: {
        type: 'array',
        minItems: Math.min(2, max),
        maxItems: max,
        items: {
          type: 'object',
          properties: {
            subtask: { type: 'string', minLength: 1 },
            type: { type: 'string', enum: [...SUBTASK_TYPES] },
            depends_on: { type: 'array', items: { type: 'integer', minimum: 1 } },
          },
          required: ['subtask', 'type', 'depends_on'],
        },
      },
    },
    required: ['subtasks'],
  };
}

const DecompositionSchema = z.object({
  subtasks: z
    .array(z.object({ subtask: z.string().trim().min(1), type: z.enum(SUBTASK_TYPES), depends_on: z.array(z.number().int()).default([]) }))
    .min(1),
});

export interface SubtaskInfo {
  id: string;
  subtask: string;
  type: SubtaskType;
  depends_on: string[];
}

export interface Decomposition {
  source: 'model' | 'fallback';
  /** Why the model's answer was not used (fallback), or what was dropped from it. */
  problem?: string;
  subtasks: SubtaskInfo[];
}

/**
 * Validate the decomposition (JSON, zod, dependency numbers in range, no cycle; a subtask naming itself is
 * dropped, extra subtasks beyond `max` are cut). Anything else falls back to one general subtask: the task itself.
 */
export function parseDecomposition(text: string | undefined, task: string, max: number): Decomposition {
  const fallback = (problem: string): Decomposition => ({ source: 'fallback', problem, subtasks: [{ id: 't1', subtask: task, type: 'general', depends_on: [] }] });
  if (text === undefined) return fallback('the decomposition step failed');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return fallback(`not valid JSON (${(e as Error).message})`);
  }
  const r = DecompositionSchema.safeParse(json);
  if (!r.success) return fallback(`not a valid decomposition: ${zodProblems(r.error).map((p) => `${p.field} ${p.problem}`).join('; ')}`);
  const notes: string[] = [];
  let raw = r.data.subtasks;
  if (raw.length > max) {
    notes.push(`cut ${raw.length - max} subtasks beyond max_subtasks ${max}`);
    raw = raw.slice(0, max);
  }
  const subtasks: SubtaskInfo[] = [];
  for (const [i, s] of raw.entries()) {
    const deps = new Set<string>();
    for (const n of s.depends_on) {
      if (n === i + 1) {
        notes.push(`t${i + 1} depended on itself (dropped)`);
        continue;
      }
      if (n < 1 || n > raw.length) return fallback(`subtask ${i + 1} depends on ${n}, which does not exist`);
      deps.add(`t${n}`);
    }
    subtasks.push({ id: `t${i + 1}`, subtask: s.subtask, type: s.type, depends_on: [...deps] });
  }
  const cycle = findCycle(subtasks);
  if (cycle) return fallback(`dependency cycle ${cycle.join(' → ')}`);
  return { source: 'model', ...(notes.length ? { problem: notes.join('; ') } : {}), subtasks };
}

// ---- the workflow ----------------------------------------------------------------------------------------------

const settingsOf = (snap: { settings: Record<string, unknown> }): OrchestrateSettings => snap.settings as unknown as OrchestrateSettings;
const deterministic = { temperature: 0 };

function stage(id: string, call: StepCall, deps: string[], optional: boolean, meta: Record<string, unknown>): StepDef {
  return { id, call, depends_on: deps, optional, routing: {}, meta };
}

/** The first step; the rest is added as stages complete. Analysis is optional: if it fails, the default level applies. */
export function orchestrateSteps(s: OrchestrateSettings): StepDef[] {
  return [
    stage('analyze', { type: 'generate', model: s.light_model, prompt: analyzePrompt(s.prompt), options: { ...deterministic, num_predict: 32 } }, [], true, { stage: 'analyze' }),
  ];
}

export function complexityOf(snap: WorkflowSnapshot): { level: Complexity; source: 'model' | 'default' } {
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
  const pool = s.pools[type];
  return level === 'COMPLEX' ? pool : pool.slice(0, MODERATE_MODELS_PER_SUBTASK);
}

/** Runs of each subtask with their answers, in pool order. */
function runsBySubtask(records: Map<string, StepRecord>, defs: Iterable<StepDef>): Map<string, { def: StepDef; rec: StepRecord | undefined }[]> {
  const out = new Map<string, { def: StepDef; rec: StepRecord | undefined }[]>();
  for (const def of defs) {
    const sub = def.meta?.subtask as SubtaskInfo | undefined;
    if (def.meta?.stage !== 'execute' || !sub) continue;
    out.set(sub.id, [...(out.get(sub.id) ?? []), { def, rec: records.get(def.id) }]);
  }
  return out;
}

function voteOn(sub: SubtaskInfo, runs: { def: StepDef; rec: StepRecord | undefined }[], weights: Record<string, number>): ConsensusResult {
  const answers = runs.filter((r) => r.rec?.state === 'completed').map((r) => ({ model: r.def.call.model, text: r.rec!.output ?? '', weight: weights[r.def.call.model] ?? 1 }));
  return consensus(answers, { code: sub.type === 'code' });
}

export const orchestrateKind: KindHandler = {
  needs: (def) => def.depends_on,

  render(def, ctx) {
    const s = settingsOf(ctx);
    const meta = def.meta ?? {};
    if (meta.stage === 'execute') {
      const sub = meta.subtask as SubtaskInfo;
      const deps = (meta.context as SubtaskInfo[] | undefined) ?? [];
      const runs = runsBySubtask(ctx.records, Object.values((meta.run_defs as Record<string, StepDef> | undefined) ?? {}));
      const context = deps.map((d) => ({ subtask: d, answer: voteOn(d, runs.get(d.id) ?? [], s.weights).winner?.text ?? '(no answer)' }));
      return { ...(def.call as StepCall & { type: 'generate' }), prompt: subtaskPrompt(s.prompt, sub, context) };
    }
    if (meta.stage === 'synthesize') {
      const subs = meta.subtasks as SubtaskInfo[];
      const runs = runsBySubtask(ctx.records, Object.values(meta.run_defs as Record<string, StepDef>));
      const parts = subs.map((sub) => ({
        subtask: sub,
        answers: (runs.get(sub.id) ?? []).filter((r) => r.rec?.state === 'completed').map((r) => ({ model: r.def.call.model, text: r.rec!.output ?? '' })),
      }));
      return { ...(def.call as StepCall & { type: 'generate' }), prompt: synthesizePrompt(s.prompt, parts) };
    }
    return def.call;
  },

  expand(snap, def, record) {
    const s = settingsOf(snap);
    if (def.id === 'analyze') {
      const level = (record.state === 'completed' ? parseComplexity(record.output) : null) ?? DEFAULT_COMPLEXITY;
      const answerModel = s.pools.general[0] ?? s.heavy_model;
      if (level === 'SIMPLE') {
        return [stage('answer', { type: 'generate', model: answerModel, prompt: s.prompt, ...(s.options ? { options: s.options } : {}) }, ['analyze'], false, { stage: 'answer' })];
      }
      const call: StepCall = {
        type: 'generate',
        model: s.heavy_model,
        prompt: decomposePrompt(s.prompt, s.max_subtasks),
        format: decompositionSchema(s.max_subtasks),
        options: { ...deterministic, num_predict: 1024 },
      };
      // Optional: when the decomposition fails outright, the task runs as one subtask.
      return [stage('decompose', call, ['analyze'], true, { stage: 'decompose' })];
    }
    if (def.id === 'decompose') {
      const level = complexityOf(snap).level;
      const d = parseDecomposition(record.state === 'completed' ? record.output : undefined, s.prompt, s.max_subtasks);
      const runIds = new Map<string, string[]>();
      const runDefs: Record<string, StepDef> = {};
      const out: StepDef[] = [];
      for (const sub of d.subtasks) {
        const models = modelsFor(s, sub.type, level);
        runIds.set(sub.id, models.map((_, i) => runId(sub.id, i)));
        const deps = ['decompose', ...sub.depends_on.flatMap((x) => runIds.get(x) ?? [])];
        const context = d.subtasks.filter((x) => sub.depends_on.includes(x.id));
        models.forEach((model, i) => {
          const call: StepCall = { type: 'generate', model, prompt: '', ...(s.options ? { options: s.options } : {}) };
          // run_defs: the dependency runs' definitions, so render can group their answers by subtask and model.
          const depDefs = Object.fromEntries(deps.filter((x) => runDefs[x]).map((x) => [x, runDefs[x]!]));
          const step = stage(runId(sub.id, i), call, deps, true, { stage: 'execute', subtask: sub, context, run_defs: depDefs });
          out.push(step);
          runDefs[step.id] = { ...step, meta: { stage: 'execute', subtask: sub } };
        });
      }
      const runs = out.length;
      if (s.synthesis === 'llm' && runs > 1) {
        out.push(
          stage('synthesize', { type: 'generate', model: s.heavy_model, prompt: '', options: { ...deterministic } }, Object.keys(runDefs), false, {
            stage: 'synthesize',
            subtasks: d.subtasks,
            run_defs: runDefs,
          }),
        );
      }
      return out;
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
    const runs = runsBySubtask(snap.records, snap.order.flatMap((id) => snap.defs.get(id) ?? []));
    const subtasks = d.subtasks.map((sub) => {
      const rs = runs.get(sub.id) ?? [];
      const vote = voteOn(sub, rs, s.weights);
      return {
        ...sub,
        runs: rs.map((r) => ({ step: r.def.id, ...stepSummary(r.def, snap) })),
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
    const answer = subtasks.length === 1 ? subtasks[0]!.answer! : subtasks.map((x) => `## ${x.id}: ${x.subtask}\n\n${x.answer}`).join('\n\n');
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
    const st = String(snap.defs.get(id)?.meta?.stage ?? 'other');
    byStage.set(st, [...(byStage.get(st) ?? []), id]);
  }
  const order = ['analyze', 'answer', 'decompose', 'execute', 'synthesize'];
  return order
    .filter((st) => byStage.has(st))
    .map((st) => {
      const steps = byStage.get(st)!;
      const done = steps.every((id) => TERMINAL_STEP_STATES.includes(snap.states.get(id) ?? 'waiting'));
      const started = steps.some((id) => snap.states.get(id) !== 'waiting');
      return { stage: st, steps, state: done ? ('done' as const) : started ? ('running' as const) : ('pending' as const) };
    });
}
