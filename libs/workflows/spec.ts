// Request bodies of POST /v1/workflows and /v1/distribute, their validation (ids, dependencies, cycles, templates) and the step plans they become.
import { z } from 'zod';
import { CallbackUrlSchema, ChatMessageSchema, DEFAULT_PRIORITY, FormatSchema, InferenceOptionsSchema, ModelNameSchema, PrioritySchema, RoutingFieldsSchema, routingFieldsOf, zodProblems, type FieldProblem } from '../core/index.js';
import { ancestors, findCycle } from './dag.js';
import { templateRefs } from './template.js';
import { MAX_STEPS, type StepCall, type StepDef } from './types.js';

const STEP_ID_RE = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

const priority = PrioritySchema.default(DEFAULT_PRIORITY);
const model = ModelNameSchema;
const waitMs = z.number().int().positive('must be a positive number of milliseconds').max(86_400_000);
const routing = RoutingFieldsSchema.shape;

export const WorkflowStepSchema = z.strictObject({
  id: z.string({ error: 'is required (letters, digits, _ and -, starting with a letter)' }).regex(STEP_ID_RE, 'must be 1-64 letters, digits, _ or -, starting with a letter'),
  type: z.enum(['generate', 'chat'], { error: 'must be "generate" or "chat"' }).default('generate'),
  model,
  prompt: z.string().optional(),
  system: z.string().optional(),
  messages: z.array(ChatMessageSchema).min(1, 'must hold at least one message').optional(),
  depends_on: z.array(z.string(), { error: 'must be an array of step ids' }).max(MAX_STEPS).default([]),
  optional: z.boolean().default(false),
  options: InferenceOptionsSchema.optional(),
  format: FormatSchema.optional(),
  cache: z.boolean().optional(),
  timeout_ms: waitMs.optional(),
  ...routing,
});
export type WorkflowStep = z.infer<typeof WorkflowStepSchema>;

export const WorkflowRequestSchema = z.strictObject({
  name: z.string().max(200).optional(),
  input: z
    .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'input names are letters, digits and _'), z.union([z.string(), z.number(), z.boolean()]), {
      error: 'must be an object of names to strings, numbers or booleans',
    })
    .default({}),
  steps: z.array(WorkflowStepSchema, { error: 'is required (an array of steps)' }).min(1, 'must hold at least one step').max(MAX_STEPS, `may hold at most ${MAX_STEPS} steps`),
  priority,
  cache: z.boolean().optional(),
  wait: z.boolean().optional(),
  timeout_ms: waitMs.optional(),
  /** Webhook: the workflow's view is POSTed here when it ends (docs/api.md "Webhooks"). */
  callback_url: CallbackUrlSchema.optional(),
});
export type WorkflowRequest = z.infer<typeof WorkflowRequestSchema>;

export type Parsed<T> = { ok: true; value: T } | { ok: false; problems: FieldProblem[] };

function parseObject<S extends z.ZodTypeAny>(schema: S, body: unknown): Parsed<z.infer<S>> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { ok: false, problems: [{ field: '(body)', problem: 'must be a JSON object' }] };
  const r = schema.safeParse(body);
  return r.success ? { ok: true, value: r.data } : { ok: false, problems: zodProblems(r.error) };
}

/**
 * Validate a workflow body: shape (zod), then what zod cannot see: duplicate ids, unknown or self
 * dependencies, cycles, and template references to unknown inputs or to steps that do not run before.
 */
export function parseWorkflowRequest(body: unknown): Parsed<WorkflowRequest> {
  const p = parseObject(WorkflowRequestSchema, body);
  if (!p.ok) return p;
  const w = p.value;
  const problems: FieldProblem[] = [];
  const ids = new Map<string, number>();
  w.steps.forEach((s, i) => {
    if (ids.has(s.id)) problems.push({ field: `steps.${i}.id`, problem: `duplicate step id "${s.id}" (also steps.${ids.get(s.id)})` });
    else ids.set(s.id, i);
    if (s.type === 'generate' && s.prompt === undefined) problems.push({ field: `steps.${i}.prompt`, problem: `is required for a generate step ("${s.id}")` });
    if (s.type === 'generate' && s.messages !== undefined) problems.push({ field: `steps.${i}.messages`, problem: `is for chat steps; step "${s.id}" is generate (use prompt)` });
    if (s.type === 'chat' && s.messages === undefined) problems.push({ field: `steps.${i}.messages`, problem: `is required for a chat step ("${s.id}")` });
    if (s.type === 'chat' && (s.prompt !== undefined || s.system !== undefined)) {
      problems.push({ field: `steps.${i}.${s.prompt !== undefined ? 'prompt' : 'system'}`, problem: `is for generate steps; step "${s.id}" is chat (use messages)` });
    }
  });
  w.steps.forEach((s, i) => {
    const seen = new Set<string>();
    for (const d of s.depends_on) {
      if (d === s.id) problems.push({ field: `steps.${i}.depends_on`, problem: `step "${s.id}" depends on itself` });
      else if (!ids.has(d)) problems.push({ field: `steps.${i}.depends_on`, problem: `unknown step "${d}" (step "${s.id}"; steps are: ${[...ids.keys()].join(', ')})` });
      if (seen.has(d)) problems.push({ field: `steps.${i}.depends_on`, problem: `lists "${d}" twice` });
      seen.add(d);
    }
  });
  if (problems.length > 0) return { ok: false, problems };
  const cycle = findCycle(w.steps);
  if (cycle) return { ok: false, problems: [{ field: 'steps', problem: `dependency cycle: ${cycle.join(' → ')}` }] };
  w.steps.forEach((s, i) => {
    const before = ancestors(w.steps, s.id);
    for (const [field, text] of templatedTexts(s)) {
      const { refs, unknown } = templateRefs(text);
      for (const u of unknown) problems.push({ field: `steps.${i}.${field}`, problem: `unknown template variable ${u} (use {{input.<name>}} or {{steps.<id>.output}})` });
      for (const r of refs) {
        if (r.kind === 'input' && !(r.name in w.input)) {
          const names = Object.keys(w.input);
          problems.push({ field: `steps.${i}.${field}`, problem: `unknown template variable ${r.text}: input has ${names.length ? names.join(', ') : 'no values'}` });
        }
        if (r.kind === 'step' && !ids.has(r.step)) problems.push({ field: `steps.${i}.${field}`, problem: `${r.text} names an unknown step "${r.step}"` });
        else if (r.kind === 'step' && !before.has(r.step)) {
          problems.push({ field: `steps.${i}.${field}`, problem: `${r.text}: step "${s.id}" does not depend on "${r.step}" (add it to depends_on)` });
        }
      }
    }
  });
  return problems.length > 0 ? { ok: false, problems } : p;
}

function templatedTexts(s: WorkflowStep): [string, string][] {
  const out: [string, string][] = [];
  if (s.prompt !== undefined) out.push(['prompt', s.prompt]);
  if (s.system !== undefined) out.push(['system', s.system]);
  s.messages?.forEach((m, j) => out.push([`messages.${j}.content`, m.content]));
  return out;
}

/** The stored definition of a validated step. */
export function stepDefOf(s: WorkflowStep): StepDef {
  const common = { model: s.model, ...(s.options ? { options: s.options } : {}), ...(s.format !== undefined ? { format: s.format } : {}) };
  const call: StepCall =
    s.type === 'chat'
      ? { type: 'chat', ...common, messages: s.messages ?? [] }
      : { type: 'generate', ...common, prompt: s.prompt ?? '', ...(s.system !== undefined ? { system: s.system } : {}) };
  return {
    id: s.id,
    call,
    depends_on: s.depends_on,
    optional: s.optional,
    routing: routingFieldsOf(s),
    ...(s.cache !== undefined ? { cache: s.cache } : {}),
    ...(s.timeout_ms ? { timeout_ms: s.timeout_ms } : {}),
  };
}

export const DistributeRequestSchema = z.strictObject({
  prompts: z.array(z.string(), { error: 'is required (an array of prompt strings)' }).min(1, 'must hold at least one prompt').max(100, 'may hold at most 100 prompts'),
  models: z.array(model, { error: 'is required (an array of model names)' }).min(1, 'must hold at least one model').max(20, 'may hold at most 20 models'),
  pairing: z.enum(['zip', 'cross'], { error: 'must be "zip" (prompt i with model i) or "cross" (every prompt with every model)' }).default('cross'),
  type: z.enum(['generate', 'chat'], { error: 'must be "generate" or "chat"' }).default('generate'),
  system: z.string().optional(),
  options: InferenceOptionsSchema.optional(),
  format: FormatSchema.optional(),
  priority,
  cache: z.boolean().optional(),
  wait: z.boolean().optional(),
  timeout_ms: waitMs.optional(),
  ...routing,
});
export type DistributeRequest = z.infer<typeof DistributeRequestSchema>;

export function parseDistributeRequest(body: unknown): Parsed<DistributeRequest> {
  const p = parseObject(DistributeRequestSchema, body);
  if (!p.ok) return p;
  const d = p.value;
  if (d.pairing === 'zip' && d.prompts.length !== d.models.length) {
    return { ok: false, problems: [{ field: 'models', problem: `pairing "zip" needs as many models as prompts (${d.prompts.length} prompts, ${d.models.length} models); use pairing "cross" for every combination` }] };
  }
  const pairs = d.pairing === 'zip' ? d.prompts.length : d.prompts.length * d.models.length;
  if (pairs > MAX_STEPS) return { ok: false, problems: [{ field: 'prompts', problem: `${pairs} prompt × model pairs; at most ${MAX_STEPS} per request` }] };
  return p;
}

/** One optional step per (prompt, model) pair: a failing pair is reported, the others still answer. */
export function distributeSteps(d: DistributeRequest): StepDef[] {
  const pairs: [number, number][] = d.pairing === 'zip' ? d.prompts.map((_, i) => [i, i]) : d.prompts.flatMap((_, i) => d.models.map((__, j): [number, number] => [i, j]));
  return pairs.map(([i, j]) => {
    const prompt = d.prompts[i]!;
    const m = d.models[j]!;
    const common = { model: m, ...(d.options ? { options: d.options } : {}), ...(d.format !== undefined ? { format: d.format } : {}) };
    const call: StepCall =
      d.type === 'chat'
        ? { type: 'chat', ...common, messages: [...(d.system ? [{ role: 'system' as const, content: d.system }] : []), { role: 'user' as const, content: prompt }] }
        : { type: 'generate', ...common, prompt, ...(d.system ? { system: d.system } : {}) };
    return {
      id: `p${i}-m${j}`,
      call,
      depends_on: [],
      optional: true,
      routing: routingFieldsOf(d),
      label: { kind: 'distribute', prompt_index: i, model_index: j },
    };
  });
}
