// The request bodies of Ollama's API (docs/api.md), validated field by field; unknown fields are ignored as Ollama does.
import { z } from 'zod';
import { ErrorCode, FormatSchema, HydraError, InferenceOptionsSchema, ModelNameSchema, ThinkSchema, ToolCallSchema, ToolSchema, zodProblems } from '../../../libs/core/index.js';

/** Base64-encoded images (vision models). */
const ImageListSchema = z.array(z.string(), { error: 'must be an array of base64-encoded images' });

const KeepAlive = z.union([z.string(), z.number()], { error: 'must be a duration ("5m", "1h", "-1") or a number of seconds' }).optional();
/** Ollama treats `"format": ""` as no format (some clients always send the field). */
const Format = z.union([z.literal(''), FormatSchema], { error: 'must be "json" or a JSON schema object' }).optional();
const Stream = z.boolean({ error: 'must be true or false' }).optional();

const MessageSchema = z.object({
  role: z.enum(['system', 'user', 'assistant', 'tool'], { error: 'must be one of system, user, assistant, tool' }),
  // Ollama accepts a message without content (an assistant turn that only calls tools).
  content: z.string({ error: 'must be a string' }).default(''),
  images: ImageListSchema.optional(),
  thinking: z.string().optional(),
  tool_calls: z.array(ToolCallSchema).optional(),
  tool_name: z.string().optional(),
});

export const GenerateBodySchema = z.object({
  model: ModelNameSchema,
  prompt: z.string({ error: 'must be a string' }).default(''),
  suffix: z.string().optional(),
  system: z.string().optional(),
  template: z.string().optional(),
  raw: z.boolean().optional(),
  images: ImageListSchema.optional(),
  context: z.array(z.number().int(), { error: 'must be an array of token ids' }).optional(),
  think: ThinkSchema.optional(),
  format: Format,
  options: InferenceOptionsSchema.optional(),
  keep_alive: KeepAlive,
  stream: Stream,
});
export type GenerateBody = z.infer<typeof GenerateBodySchema>;

export const ChatBodySchema = z.object({
  model: ModelNameSchema,
  messages: z.array(MessageSchema, { error: 'must be an array of {role, content}' }).default([]),
  tools: z.array(ToolSchema, { error: 'must be an array of {type: "function", function: {name, description, parameters}}' }).optional(),
  think: ThinkSchema.optional(),
  format: Format,
  options: InferenceOptionsSchema.optional(),
  keep_alive: KeepAlive,
  stream: Stream,
});
export type ChatBody = z.infer<typeof ChatBodySchema>;

export const EmbedBodySchema = z.object({
  model: ModelNameSchema,
  input: z.union([z.string(), z.array(z.string()).min(1, 'must hold at least one input')], { error: 'is required (a string or an array of strings)' }),
  truncate: z.boolean().optional(),
  dimensions: z.number().int().positive('must be a positive integer').optional(),
  options: InferenceOptionsSchema.optional(),
  keep_alive: KeepAlive,
});
export type EmbedBody = z.infer<typeof EmbedBodySchema>;

/** The legacy /api/embeddings: one `prompt`, one vector back. */
export const EmbeddingsBodySchema = z.object({
  model: ModelNameSchema,
  prompt: z.string({ error: 'is required (the text to embed)' }),
  options: InferenceOptionsSchema.optional(),
  keep_alive: KeepAlive,
});

/** Ollama names the model `model`, older clients (ollama-js pull and delete) `name`: either is accepted. */
const ModelOrName = { model: z.string().optional(), name: z.string().optional() };
const withModel = <T extends { model?: string | undefined; name?: string | undefined }>(b: T) => ({ ...b, model: b.model || b.name || '' });
const modelGiven = (b: { model: string }) => b.model !== '';
const modelMissing = { message: 'is required (a model name, e.g. "qwen3:14b")', path: ['model'] };

export const ShowBodySchema = z.object({ ...ModelOrName, verbose: z.boolean().optional() }).transform(withModel).refine(modelGiven, modelMissing);

/** `nodes` (Hydra's extension): where to carry out a pull or delete; the default is in admin-runs.ts. */
const Nodes = z.array(z.string().min(1).max(64), { error: 'must be an array of node ids' }).min(1, 'must name at least one node').optional();
export const PullBodySchema = z.object({ ...ModelOrName, insecure: z.boolean().optional(), stream: Stream, nodes: Nodes }).transform(withModel).refine(modelGiven, modelMissing);
export const DeleteBodySchema = z.object({ ...ModelOrName, nodes: Nodes }).transform(withModel).refine(modelGiven, modelMissing);

/** Parse `body` against `schema`, or throw a 400 that names each bad field (Ollama's shape through sendError). */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HydraError(ErrorCode.BadRequest, 'invalid request body: must be a JSON object');
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  throw new HydraError(ErrorCode.BadRequest, `invalid request body: ${zodProblems(r.error).map((p) => `${p.field} ${p.problem}`).join('; ')}`);
}
