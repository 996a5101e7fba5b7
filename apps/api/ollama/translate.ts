// Between Ollama's wire format and Hydra's: parsed bodies → JobRequest, InferResult → Ollama's answer objects
// (durations in nanoseconds, as Ollama sends them).
import type { InferResult, JobRequest } from '../../../libs/core/index.js';
import type { Hints } from '../hints.js';
import type { ChatBody, EmbedBody, GenerateBody } from './schemas.js';

export type TextKind = 'generate' | 'chat';

/** Ollama reports durations in nanoseconds; Hydra's results carry milliseconds. */
const ns = (ms: number | undefined): number => Math.round((ms ?? 0) * 1e6);
const now = (): string => new Date().toISOString();

/** `keep_alive: 0` in any of Ollama's spellings (0, "0", "0s", "0m"): unload right away. */
export const isZeroKeepAlive = (k: string | number | undefined): boolean => k === 0 || (typeof k === 'string' && /^0+(\.0+)?(ns|us|µs|ms|s|m|h)?$/.test(k.trim()));

/** Ollama's "no request, just load or unload": generate without prompt, system, template, suffix or images; chat without messages. */
export const isEmptyRequest = (b: GenerateBody | ChatBody): boolean =>
  'messages' in b ? b.messages.length === 0 : !b.prompt && !b.system && !b.template && !b.suffix && !b.images?.length;

/** The routing part of a job request from the X-Hydra-* hints; answers stay tied to their client (no detach). */
const routing = (h: Hints) => ({ priority: h.priority, node_id: h.node_id, min_vram_gb: h.min_vram_gb, prefer_local: h.prefer_local, session_id: h.session_id, detach: false });

export function generateRequest(b: GenerateBody, h: Hints): JobRequest {
  return {
    type: 'generate',
    model: b.model,
    prompt: b.prompt,
    system: b.system,
    suffix: b.suffix,
    template: b.template,
    raw: b.raw,
    images: b.images,
    context: b.context,
    think: b.think,
    format: b.format === '' ? undefined : b.format,
    options: b.options,
    keep_alive: b.keep_alive,
    ...routing(h),
  };
}

export function chatRequest(b: ChatBody, h: Hints): JobRequest {
  return {
    type: 'chat',
    model: b.model,
    messages: b.messages,
    tools: b.tools,
    think: b.think,
    format: b.format === '' ? undefined : b.format,
    options: b.options,
    keep_alive: b.keep_alive,
    ...routing(h),
  };
}

export function embedRequest(b: Pick<EmbedBody, 'model' | 'input' | 'truncate' | 'dimensions' | 'options' | 'keep_alive'>, h: Hints): JobRequest {
  return { type: 'embed', model: b.model, input: b.input, truncate: b.truncate, dimensions: b.dimensions, options: b.options, keep_alive: b.keep_alive, ...routing(h) };
}

/** A generate call that only loads the model (Ollama's empty request): no prompt, nothing decoded, never cached. */
export function loadRequest(model: string, keepAlive: string | number | undefined, h: Hints): JobRequest {
  return { type: 'generate', model, prompt: '', options: { num_predict: 0 }, keep_alive: keepAlive, cache: false, ...routing(h) };
}

/** One streamed piece: answer text, or thinking (generate: `thinking`; chat: `message.thinking`). */
export function pieceChunk(kind: TextKind, model: string, event: 'token' | 'thinking', text: string): Record<string, unknown> {
  if (kind === 'generate') return { model, created_at: now(), response: event === 'token' ? text : '', ...(event === 'thinking' ? { thinking: text } : {}), done: false };
  const message = { role: 'assistant', content: event === 'token' ? text : '', ...(event === 'thinking' ? { thinking: text } : {}) };
  return { model, created_at: now(), message, done: false };
}

/**
 * The last object of an answer (`done: true` with Ollama's metrics), or the whole answer when not streaming
 * (`full`: text and thinking included). Tool calls always travel in it, their arguments as objects.
 */
export function finalChunk(kind: TextKind, model: string, r: InferResult, full: boolean): Record<string, unknown> {
  const metrics = {
    done: true,
    done_reason: r.done_reason ?? 'stop',
    total_duration: ns(r.total_duration_ms),
    load_duration: ns(r.load_duration_ms),
    prompt_eval_count: r.prompt_tokens,
    prompt_eval_duration: ns(r.prompt_eval_duration_ms),
    eval_count: r.completion_tokens,
    eval_duration: ns(r.eval_duration_ms),
  };
  if (kind === 'generate') {
    // Ollama's deprecated token context: passed on when the backend returned one.
    const context = (r as InferResult & { context?: number[] }).context;
    const thinking = full && r.thinking ? { thinking: r.thinking } : {};
    return { model, created_at: now(), response: full ? (r.response ?? '') : '', ...thinking, ...metrics, ...(context ? { context } : {}) };
  }
  const m = r.message;
  const message = {
    role: 'assistant',
    content: full ? (m?.content ?? r.response ?? '') : '',
    ...(full && m?.thinking ? { thinking: m.thinking } : {}),
    ...(m?.tool_calls?.length ? { tool_calls: m.tool_calls.map((c) => ({ function: { ...(c.function.index === undefined ? {} : { index: c.function.index }), name: c.function.name, arguments: c.function.arguments } })) } : {}),
  };
  return { model, created_at: now(), message, ...metrics };
}

/** Ollama's answer to an empty request: the model was loaded or unloaded, nothing generated. */
export function loadAnswer(kind: TextKind, model: string, reason: 'load' | 'unload'): Record<string, unknown> {
  const empty = kind === 'generate' ? { response: '' } : { message: { role: 'assistant', content: '' } };
  return { model, created_at: now(), ...empty, done: true, done_reason: reason };
}

export function embedAnswer(model: string, r: InferResult): Record<string, unknown> {
  return { model, embeddings: r.embeddings ?? [], total_duration: ns(r.total_duration_ms), load_duration: ns(r.load_duration_ms), prompt_eval_count: r.prompt_tokens };
}
