// The Hydra pipeline's request, prompts and parsers: analyze (light model) → decompose (heavy model, JSON) → every
// subtask on several models honouring depends_on → synthesize (LLM merge or consensus). Pure; the stage logic that
// runs it as a workflow is kinds/orchestrate.ts.
import { z } from 'zod';
import { DEFAULT_PRIORITY, InferenceOptionsSchema, ModelNameSchema, PrioritySchema, zodProblems, type FieldProblem, type InferenceOptions } from '../core/index.js';
import { findCycle } from './dag.js';
import type { Parsed } from './spec.js';
import { SUBTASK_TYPES, type StepCall, type StepDef, type StepLabel, type SubtaskInfo, type SubtaskType } from './types.js';

const COMPLEXITIES = ['SIMPLE', 'MODERATE', 'COMPLEX'] as const;
export type Complexity = (typeof COMPLEXITIES)[number];
/** When the light model's answer names no level: decompose (the thorough path) rather than answer in one call. */
export const DEFAULT_COMPLEXITY: Complexity = 'MODERATE';
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
  /** Recall: the k earlier completed jobs nearest to the prompt go in front of it as context (apps/api/recall.ts). */
  memory: z
    .strictObject({
      recall: z.number({ error: 'must be a whole number from 1 to 20 (earlier items to recall)' }).int('must be a whole number from 1 to 20').min(1, 'must be at least 1').max(20, 'must be at most 20'),
      namespace: z.string().min(1, 'must not be empty').max(200).optional(),
    })
    .optional(),
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
  /** The types whose pools were configured (the catalog or ORCH_MODELS_<TYPE>), named in the decomposition prompt. */
  specialists?: Partial<Record<SubtaskType, string[]>>;
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
        ...(q.models ? {} : { specialists: Object.fromEntries(SUBTASK_TYPES.filter((t) => defaults.pools[t].length > 0).map((t) => [t, pools[t]])) }),
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

/**
 * `specialists`: the types that have models of their own (the catalog or ORCH_MODELS_<TYPE>), so the decomposition
 * knows which types route a subtask to a model suited to it.
 */
export const decomposePrompt = (task: string, max: number, specialists: Partial<Record<SubtaskType, string[]>> = {}): string => {
  const named = SUBTASK_TYPES.filter((t) => specialists[t]?.length).map((t) => `${t}: ${specialists[t]!.join(', ')}`);
  return (
    `Split the task below into 2 to ${max} subtasks that together solve it. For each subtask give its text, its type ` +
    `("code", "math", "reasoning" or "general") and depends_on: the numbers (counting from 1) of the earlier subtasks whose ` +
    `results it needs.${named.length ? ` Each type runs on models suited to it (${named.join('; ')}).` : ''} Answer in JSON only.\n\nTask: ${task}`
  );
};

/** Pools per subtask type from the catalog: explicit ORCH_MODELS_<TYPE> first, else the catalog's models with it. */
export function catalogPools(catalog: readonly { model: string; capabilities: readonly string[] }[], explicit: Partial<Record<SubtaskType, string[]>>): Record<SubtaskType, string[]> {
  const out = {} as Record<SubtaskType, string[]>;
  for (const t of SUBTASK_TYPES) out[t] = explicit[t]?.length ? [...explicit[t]!] : catalog.filter((m) => m.capabilities.includes(t)).map((m) => m.model);
  return out;
}

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

// ---- steps ------------------------------------------------------------------------------------------------------

/** Analysis, decomposition and the merge are asked for one right answer, not a creative one. */
export const DETERMINISTIC = { temperature: 0 } as const;

/** A step of the pipeline: routed like any job, labelled with its stage. */
export function orchestrateStep(id: string, call: StepCall, deps: string[], optional: boolean, label: Extract<StepLabel, { kind: 'orchestrate' }>): StepDef {
  return { id, call, depends_on: deps, optional, routing: {}, label };
}

/** The first step; the rest is added as stages complete. Analysis is optional: if it fails, the default level applies. */
export function orchestrateSteps(s: OrchestrateSettings): StepDef[] {
  const call: StepCall = { type: 'generate', model: s.light_model, prompt: analyzePrompt(s.prompt), options: { ...DETERMINISTIC, num_predict: 32 } };
  return [orchestrateStep('analyze', call, [], true, { kind: 'orchestrate', stage: 'analyze' })];
}
