// The body of POST /v1/jobs, validated field by field so a 400 can name each bad field and why.
import { z } from 'zod';
import { ChatMessageSchema, FormatSchema, InferenceOptionsSchema, JOB_TYPES } from './inference.js';

const common = {
  model: z.string({ error: 'is required (a model name, e.g. "qwen3:14b")' }).min(1, 'must not be empty').max(200),
  options: InferenceOptionsSchema.optional(),
  keep_alive: z.union([z.string(), z.number()]).optional(),
  priority: z.number({ error: 'must be an integer from 1 to 10' }).int('must be an integer from 1 to 10').min(1, 'must be at least 1 (1 lowest, 10 highest)').max(10, 'must be at most 10 (10 highest)').default(5),
  node_id: z.string().min(1).max(64).optional(),
  min_vram_gb: z.number({ error: 'must be a number of GB' }).min(0, 'must not be negative').max(100_000).optional(),
  prefer_local: z.boolean().optional(),
  timeout_ms: z.number().int().positive('must be a positive number of milliseconds').max(86_400_000).optional(),
  wait: z.boolean().optional(),
};

export const JobRequestSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('generate'), prompt: z.string({ error: 'is required for type "generate"' }), system: z.string().optional(), format: FormatSchema.optional(), ...common }),
  z.strictObject({ type: z.literal('chat'), messages: z.array(ChatMessageSchema, { error: 'is required for type "chat" (an array of {role, content})' }).min(1, 'must hold at least one message'), format: FormatSchema.optional(), ...common }),
  z.strictObject({ type: z.literal('embed'), input: z.union([z.string(), z.array(z.string()).min(1)], { error: 'is required for type "embed" (a string or an array of strings)' }), ...common }),
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
