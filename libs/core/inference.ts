// Inference request and result shapes shared by the API, the queue, the scheduler and every backend.
import { z } from 'zod';
import type { RoutingDecision } from './routing.js';

export const JOB_TYPES = ['generate', 'chat', 'embed'] as const;
export type JobType = (typeof JOB_TYPES)[number];

/** A function the model may call (Ollama's and OpenAI's `tools` entries). */
export const ToolSchema = z.object({
  type: z.literal('function', { error: 'must be "function"' }).default('function'),
  function: z.object({
    name: z.string().min(1).max(200),
    description: z.string().optional(),
    /** JSON schema of the arguments. */
    parameters: z.record(z.string(), z.unknown()).optional(),
  }),
});
export type Tool = z.infer<typeof ToolSchema>;

/** A call the model made. Arguments are an object here (Ollama's form); OpenAI's surface sends them as a JSON string. */
export const ToolCallSchema = z.object({
  id: z.string().optional(),
  type: z.literal('function').optional(),
  function: z.object({
    index: z.number().int().optional(),
    name: z.string().min(1),
    arguments: z.record(z.string(), z.unknown()),
  }),
});
export type ToolCall = z.infer<typeof ToolCallSchema>;

export const ChatMessageSchema = z.object({
  role: z.enum(['system', 'user', 'assistant', 'tool']),
  content: z.string(),
  /** Base64 images (vision models). */
  images: z.array(z.string()).optional(),
  /** An assistant turn's reasoning, when the model thinks. */
  thinking: z.string().optional(),
  /** An assistant turn's tool calls. */
  tool_calls: z.array(ToolCallSchema).optional(),
  /** A tool result: the tool's name (Ollama) and the call it answers (OpenAI). */
  tool_name: z.string().optional(),
  tool_call_id: z.string().optional(),
});
export type ChatMessage = z.infer<typeof ChatMessageSchema>;

/** Thinking (reasoning models): on/off, or a level as gpt-oss takes it. */
export const ThinkSchema = z.union([z.boolean(), z.enum(['low', 'medium', 'high'])]);
export type Think = z.infer<typeof ThinkSchema>;

/** Ollama-style options. Unknown keys pass through to backends that understand them. */
export const InferenceOptionsSchema = z
  .object({
    temperature: z.number().min(0).max(100).optional(),
    seed: z.number().int().optional(),
    top_k: z.number().int().min(0).optional(),
    top_p: z.number().min(0).max(1).optional(),
    min_p: z.number().min(0).max(1).optional(),
    num_predict: z.number().int().min(-2).optional(),
    num_ctx: z.number().int().positive().optional(),
    stop: z.array(z.string()).optional(),
    repeat_penalty: z.number().optional(),
  })
  .passthrough();
export type InferenceOptions = z.infer<typeof InferenceOptionsSchema>;

/** JSON schema or "json", as Ollama's `format`. */
export const FormatSchema = z.union([z.literal('json'), z.record(z.string(), z.unknown())]);

/** What a backend is asked to do. The queue payload wraps this with routing fields. */
export const InferenceCallSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('generate'),
    model: z.string().min(1),
    prompt: z.string(),
    system: z.string().optional(),
    /** Text after the insertion point (fill-in-the-middle). */
    suffix: z.string().optional(),
    /** Prompt template overriding the model's own, and raw (no template at all), as Ollama takes them. */
    template: z.string().optional(),
    raw: z.boolean().optional(),
    images: z.array(z.string()).optional(),
    /** Ollama's token context from an earlier generate (deprecated there, still sent by some clients). */
    context: z.array(z.number().int()).optional(),
    think: ThinkSchema.optional(),
    options: InferenceOptionsSchema.optional(),
    format: FormatSchema.optional(),
    keep_alive: z.union([z.string(), z.number()]).optional(),
  }),
  z.object({
    type: z.literal('chat'),
    model: z.string().min(1),
    messages: z.array(ChatMessageSchema).min(1),
    tools: z.array(ToolSchema).optional(),
    think: ThinkSchema.optional(),
    options: InferenceOptionsSchema.optional(),
    format: FormatSchema.optional(),
    keep_alive: z.union([z.string(), z.number()]).optional(),
  }),
  z.object({
    type: z.literal('embed'),
    model: z.string().min(1),
    input: z.union([z.string(), z.array(z.string()).min(1)]),
    /** Cut inputs longer than the context instead of failing (Ollama's default: true). */
    truncate: z.boolean().optional(),
    /** Output width for models that support shorter embeddings. */
    dimensions: z.number().int().positive().optional(),
    options: InferenceOptionsSchema.optional(),
    keep_alive: z.union([z.string(), z.number()]).optional(),
  }),
]);
export type InferenceCall = z.infer<typeof InferenceCallSchema>;
export type GenerateCall = Extract<InferenceCall, { type: 'generate' }>;
export type ChatCall = Extract<InferenceCall, { type: 'chat' }>;
export type EmbedCall = Extract<InferenceCall, { type: 'embed' }>;

/** What a backend returns. Durations are milliseconds (Ollama's nanoseconds are converted). */
export interface InferenceOutput {
  model: string;
  /** generate: the text. */
  response?: string;
  /** generate: the reasoning, when the model thinks. */
  thinking?: string;
  /** chat: the assistant message. */
  message?: { role: 'assistant'; content: string; thinking?: string; tool_calls?: ToolCall[] };
  /** embed: one vector per input. */
  embeddings?: number[][];
  /** stop or length (as the backend says); a chat whose message has tool_calls is still `stop` here, as in Ollama. */
  done_reason?: string;
  prompt_tokens: number;
  completion_tokens: number;
  total_duration_ms: number;
  load_duration_ms: number;
  prompt_eval_duration_ms: number;
  eval_duration_ms: number;
}

/** A finished inference job: the model's answer plus where and how it ran. */
export interface InferResult extends InferenceOutput {
  node_id: string;
  node_url: string;
  simulated: boolean;
  routing_decision: RoutingDecision;
}

/**
 * Model management on one node (Ollama's /api/pull, /api/delete, and keep_alive 0 to unload), run by that node's
 * worker as an admin job in its node queue, so it goes through the same queue, cancellation and logs as inference.
 */
export const AdminCallSchema = z.object({
  op: z.enum(['pull', 'delete', 'unload']),
  model: z.string().min(1).max(200),
  /** pull: allow an insecure registry (Ollama's `insecure`). */
  insecure: z.boolean().optional(),
});
export type AdminCall = z.infer<typeof AdminCallSchema>;

/** Progress of a pull, as Ollama streams it: a status line, and for layers a digest with total/completed bytes. */
export interface PullProgress {
  status: string;
  digest?: string;
  total?: number;
  completed?: number;
}
