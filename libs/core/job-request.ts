// The body of POST /v1/jobs, validated field by field so a 400 can name each bad field and why.
import { z } from 'zod';
import { CallbackUrlSchema } from './callback-url.js';
import { ChatMessageSchema, FormatSchema, InferenceOptionsSchema, JOB_TYPES, ThinkSchema, ToolSchema } from './inference.js';
import { DEFAULT_PRIORITY, ModelNameSchema, PrioritySchema, RoutingFieldsSchema } from './routing.js';

const common = {
  model: ModelNameSchema,
  options: InferenceOptionsSchema.optional(),
  keep_alive: z.union([z.string(), z.number()]).optional(),
  priority: PrioritySchema.default(DEFAULT_PRIORITY),
  ...RoutingFieldsSchema.shape,
  timeout_ms: z.number().int().positive('must be a positive number of milliseconds').max(86_400_000).optional(),
  wait: z.boolean().optional(),
  /** The job outlives its client: disconnecting from a `wait` or stream request does not cancel it. */
  detach: z.boolean().optional(),
  /**
   * L1 cache: unset caches deterministic requests only (temperature 0 or a seed); false bypasses; true forces.
   * "semantic": as unset, and on an exact miss a stored deterministic answer to a prompt close enough (by the
   * embeddings of MEMORY_EMBED_MODEL) for the same model and options answers it (apps/api/semantic-cache.ts).
   */
  cache: z.union([z.boolean(), z.literal('semantic')], { error: 'must be true, false or "semantic"' }).optional(),
  /** Recall: the k earlier completed jobs nearest to this prompt, put in front of it as context (apps/api/recall.ts). */
  memory: z
    .strictObject({
      recall: z.number({ error: 'must be a whole number from 1 to 20 (earlier items to recall)' }).int('must be a whole number from 1 to 20').min(1, 'must be at least 1').max(20, 'must be at most 20'),
      namespace: z.string().min(1, 'must not be empty').max(200).optional(),
    })
    .optional(),
  /** cache: "semantic": the cosine similarity a stored prompt needs at least (default SEMANTIC_CACHE_THRESHOLD). */
  semantic_threshold: z.number({ error: 'must be a number from 0.5 to 1' }).min(0.5, 'must be at least 0.5').max(1, 'must be at most 1').optional(),
  /** Webhook: the job's view is POSTed here when it ends (docs/api.md "Webhooks"); its address is checked at submit. */
  callback_url: CallbackUrlSchema.optional(),
};

export const JobRequestSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('generate'),
    prompt: z.string({ error: 'is required for type "generate"' }),
    system: z.string().optional(),
    suffix: z.string().optional(),
    template: z.string().optional(),
    raw: z.boolean().optional(),
    images: z.array(z.string(), { error: 'must be an array of base64 images' }).optional(),
    context: z.array(z.number().int()).optional(),
    think: ThinkSchema.optional(),
    format: FormatSchema.optional(),
    ...common,
  }),
  z.strictObject({
    type: z.literal('chat'),
    messages: z.array(ChatMessageSchema, { error: 'is required for type "chat" (an array of {role, content})' }).min(1, 'must hold at least one message'),
    tools: z.array(ToolSchema, { error: 'must be an array of {type: "function", function: {name, description, parameters}}' }).optional(),
    think: ThinkSchema.optional(),
    format: FormatSchema.optional(),
    ...common,
  }),
  z.strictObject({
    type: z.literal('embed'),
    input: z.union([z.string(), z.array(z.string()).min(1)], { error: 'is required for type "embed" (a string or an array of strings)' }),
    truncate: z.boolean().optional(),
    dimensions: z.number().int().positive().optional(),
    ...common,
  }),
]);
export type JobRequest = z.infer<typeof JobRequestSchema>;

export interface FieldProblem {
  field: string;
  problem: string;
}

/** Parse a request body; on failure, one problem per bad field (the type is checked first, so its message is clear). */
export function parseJobRequest(body: unknown): { ok: true; value: JobRequest } | { ok: false; problems: FieldProblem[] } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, problems: [{ field: '(body)', problem: 'must be a JSON object' }] };
  }
  const type = (body as { type?: unknown }).type;
  if (!JOB_TYPES.includes(type as never)) {
    return { ok: false, problems: [{ field: 'type', problem: `must be one of ${JOB_TYPES.join(', ')} (got ${JSON.stringify(type ?? null)})` }] };
  }
  const r = JobRequestSchema.safeParse(body);
  if (r.success) return { ok: true, value: r.data };
  return { ok: false, problems: zodProblems(r.error) };
}

export function zodProblems(error: z.ZodError): FieldProblem[] {
  const out: FieldProblem[] = [];
  for (const i of error.issues) {
    if (i.code === 'unrecognized_keys') {
      for (const k of i.keys) out.push({ field: [...i.path, k].join('.'), problem: 'is not a known field' });
    } else {
      out.push({ field: i.path.join('.') || '(body)', problem: i.message });
    }
  }
  return out;
}

/** Deepest nesting the prompt-length check looks into (a workflow's steps sit a few levels down). */
const PROMPT_SCAN_DEPTH = 32;

/**
 * Prompt text over `max` characters (UTF-16 units): one problem per oversized request, naming its field.
 * In any object of the body (a job, or the steps of a workflow) it counts `prompt` + `system`, the `content` of
 * every entry of `messages`, and every string of `input`. Iterative, so a deeply nested body cannot overflow the stack.
 */
export function promptLengthProblems(body: unknown, max: number): FieldProblem[] {
  const out: FieldProblem[] = [];
  const stack: { v: unknown; path: string[] }[] = [{ v: body, path: [] }];
  const at = (path: string[], field: string) => [...path, field].join('.');
  const over = (n: number, what: string) => `holds ${n} characters of ${what}; the limit is ${max} (MAX_PROMPT_CHARS)`;
  while (stack.length > 0) {
    const { v, path } = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (!Array.isArray(v)) {
      const o = v as Record<string, unknown>;
      if (typeof o.prompt === 'string') {
        const n = o.prompt.length + (typeof o.system === 'string' ? o.system.length : 0);
        if (n > max) out.push({ field: at(path, 'prompt'), problem: over(n, typeof o.system === 'string' ? 'prompt and system text' : 'prompt text') });
      }
      if (Array.isArray(o.messages)) {
        let n = 0;
        for (const m of o.messages) if (typeof m === 'object' && m !== null && typeof (m as { content?: unknown }).content === 'string') n += (m as { content: string }).content.length;
        if (n > max) out.push({ field: at(path, 'messages'), problem: over(n, 'message content') });
      }
      const input = o.input;
      const n = typeof input === 'string' ? input.length : Array.isArray(input) ? input.reduce((s: number, x) => s + (typeof x === 'string' ? x.length : 0), 0) : 0;
      if (n > max) out.push({ field: at(path, 'input'), problem: over(n, 'input text') });
    }
    if (path.length >= PROMPT_SCAN_DEPTH) continue;
    for (const [k, child] of Object.entries(v)) if (typeof child === 'object' && child !== null) stack.push({ v: child, path: [...path, k] });
  }
  return out;
}

/** Deepest nesting a request body may have. Real bodies nest a few levels (a JSON schema in `format` maybe 10-20). */
export const MAX_BODY_DEPTH = 64;

/**
 * The first place where `body` nests deeper than `max` levels, or null. Deeper bodies are refused up front: code
 * that walks JSON recursively (serializing a job payload, hashing a cache key) would overflow the stack on them.
 * Iterative, so the check itself cannot overflow.
 */
export function nestingProblem(body: unknown, max = MAX_BODY_DEPTH): FieldProblem | null {
  const stack: { v: unknown; path: string[] }[] = [{ v: body, path: [] }];
  while (stack.length > 0) {
    const { v, path } = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (path.length >= max) {
      const shown = path.length > 8 ? [...path.slice(0, 4), '…', ...path.slice(-2)] : path;
      return { field: shown.join('.') || '(body)', problem: `nests deeper than ${max} levels; flatten the request` };
    }
    for (const [k, child] of Object.entries(v)) if (typeof child === 'object' && child !== null) stack.push({ v: child, path: [...path, k] });
  }
  return null;
}
