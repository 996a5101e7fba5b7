// Inference request and result shapes shared by the API, the queue, the scheduler and every backend.
import { z } from 'zod';
import type { RoutingDecision } from './routing.js';

export const JOB_TYPES = ['generate', 'chat', 'embed'] as const;
export type JobType = (typeof JOB_TYPES)[number];

export const ChatMessageSchema = z.object({
  role: z.enum(['system', 'user', 'assistant', 'tool']),
  content: z.string(),
  images: z.array(z.string()).optional(),
});
export type ChatMessage = z.infer<typeof ChatMessageSchema>;

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
    options: InferenceOptionsSchema.optional(),
    format: FormatSchema.optional(),
    keep_alive: z.union([z.string(), z.number()]).optional(),
  }),
  z.object({
    type: z.literal('chat'),
    model: z.string().min(1),
    messages: z.array(ChatMessageSchema).min(1),
    options: InferenceOptionsSchema.optional(),
    format: FormatSchema.optional(),
    keep_alive: z.union([z.string(), z.number()]).optional(),
  }),
  z.object({
    type: z.literal('embed'),
    model: z.string().min(1),
    input: z.union([z.string(), z.array(z.string()).min(1)]),
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
  /** chat: the assistant message. */
  message?: { role: 'assistant'; content: string };
  /** embed: one vector per input. */
  embeddings?: number[][];
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
