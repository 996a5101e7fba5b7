// Inference through an Ollama server over HTTP: probe (version, tags, ps, show), streamed generate/chat over NDJSON (text, thinking, tool calls), embed, pull/delete/unload; AbortSignal end to end.
import { setMaxListeners } from 'node:events';
import { z } from 'zod';
import {
  ErrorCode,
  HydraError,
  MODEL_CAPABILITIES,
  type BackendProbe,
  type ChatCall,
  type EmbedCall,
  type GenerateCall,
  type InferenceOutput,
  type ModelArch,
  type ModelAvailable,
  type ModelCapability,
  type ModelDetails,
  type ModelLoaded,
  type ToolCall,
} from '../../../libs/core/index.js';
import type { Logger } from '../../../libs/logger/index.js';
import type { AdminHooks, CallHooks, InferenceBackend } from './backend.js';
import { createHttpClient } from './http-client.js';
import { cancelledError, errorFromStreamMessage, errorFromTransport, failedProbe } from './http-errors.js';
import { hookCaller, ndjson } from './http-stream.js';
import { toolArguments } from './tool-calls.js';

export interface OllamaBackendOptions {
  /** e.g. http://127.0.0.1:11434 */
  url: string;
  logger: Logger;
  /**
   * Limit for the answer's headers to arrive (which includes Ollama loading the model) and for each pause between
   * streamed chunks. Default 300 000 ms. Probes use their own 2 s limit.
   */
  requestTimeoutMs?: number;
  /** Keep-alive connections to the server (one per concurrent request). Default 32. */
  connections?: number;
}

const PROBE_TIMEOUT_MS = 2_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 300_000;

const DetailsSchema = z
  .object({
    format: z.string().optional(),
    family: z.string().optional(),
    families: z.array(z.string()).nullish(),
    parameter_size: z.string().optional(),
    quantization_level: z.string().optional(),
  })
  .loose();

const TagsSchema = z.object({
  models: z
    .array(
      z
        .object({
          name: z.string(),
          size: z.number(),
          digest: z.string().optional(),
          modified_at: z.string().optional(),
          details: DetailsSchema.nullish(),
        })
        .loose(),
    )
    .nullish(),
});
type TagsModel = NonNullable<z.infer<typeof TagsSchema>['models']>[number];

const PsSchema = z.object({
  models: z
    .array(
      z
        .object({
          name: z.string(),
          size: z.number(),
          size_vram: z.number().optional(),
          expires_at: z.string().optional(),
          digest: z.string().optional(),
          context_length: z.number().optional(),
        })
        .loose(),
    )
    .nullish(),
});
const VersionSchema = z.object({ version: z.string() }).loose();
const ShowSchema = z.object({ model_info: z.record(z.string(), z.unknown()).nullish(), capabilities: z.array(z.string()).nullish() }).loose();

/** A tool call as Ollama sends it; arguments are an object (a server that sends a JSON string is parsed). */
const OllamaToolCallSchema = z
  .object({
    id: z.string().optional(),
    function: z
      .object({
        index: z.number().int().optional(),
        name: z.string().min(1),
        arguments: z.union([z.record(z.string(), z.unknown()), z.string()]).nullish(),
      })
      .loose(),
  })
  .loose();

/** One NDJSON line of /api/generate or /api/chat. Durations are nanoseconds. */
const ChunkSchema = z
  .object({
    model: z.string().optional(),
    response: z.string().optional(),
    /** generate: a piece of the reasoning (thinking models with `think`). */
    thinking: z.string().nullish(),
    message: z
      .object({ content: z.string().nullish(), thinking: z.string().nullish(), tool_calls: z.array(OllamaToolCallSchema).nullish() })
      .loose()
      .optional(),
    done: z.boolean().optional(),
    done_reason: z.string().optional(),
    error: z.string().optional(),
    total_duration: z.number().optional(),
    load_duration: z.number().optional(),
    prompt_eval_count: z.number().optional(),
    prompt_eval_duration: z.number().optional(),
    eval_count: z.number().optional(),
    eval_duration: z.number().optional(),
  })
  .loose();
type Chunk = z.infer<typeof ChunkSchema>;

const EmbedSchema = z
  .object({
    model: z.string().optional(),
    embeddings: z.array(z.array(z.number())),
    total_duration: z.number().optional(),
    load_duration: z.number().optional(),
    prompt_eval_count: z.number().optional(),
  })
  .loose();

/** One line of /api/pull's NDJSON progress. */
const PullLineSchema = z
  .object({ status: z.string().optional(), digest: z.string().optional(), total: z.number().optional(), completed: z.number().optional(), error: z.string().optional() })
  .loose();
const UnloadSchema = z.object({ done_reason: z.string().optional() }).loose();

/** Nanoseconds to milliseconds, to the microsecond. */
const nsToMs = (ns: number | undefined): number => (ns === undefined ? 0 : Math.round(ns / 1e3) / 1e3);

/** An Ollama tool call in Hydra's form (arguments sent as a JSON string by some compatible servers are parsed). */
function toToolCall(c: z.infer<typeof OllamaToolCallSchema>): ToolCall {
  return {
    ...(c.id ? { id: c.id } : {}),
    type: 'function',
    function: { ...(c.function.index === undefined ? {} : { index: c.function.index }), name: c.function.name, arguments: toolArguments(c.function.arguments) },
  };
}

/** The capabilities Hydra knows, from /api/show's list (unknown words from newer servers are dropped). */
const knownCapabilities = (caps: readonly string[]): ModelCapability[] => MODEL_CAPABILITIES.filter((c) => caps.includes(c));

/** Architecture numbers from /api/show `model_info` (keys `<general.architecture>.block_count`, ...); undefined when incomplete. */
export function archFromModelInfo(info: Record<string, unknown> | null | undefined): ModelArch | undefined {
  const arch = info?.['general.architecture'];
  if (!info || typeof arch !== 'string') return undefined;
  // Some architectures give per-layer arrays (e.g. head counts); the largest layer decides memory.
  const num = (key: string): number | undefined => {
    const v = info[`${arch}.${key}`];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    if (Array.isArray(v)) {
      const nums = v.filter((x): x is number => typeof x === 'number');
      return nums.length > 0 ? Math.max(...nums) : undefined;
    }
    return undefined;
  };
  const block = num('block_count');
  const heads = num('attention.head_count');
  const width = num('embedding_length');
  if (block === undefined || heads === undefined || width === undefined) return undefined;
  // GGUF: head_count_kv is optional and defaults to head_count (no grouped-query attention).
  const out: ModelArch = { block_count: block, head_count: heads, head_count_kv: num('attention.head_count_kv') ?? heads, embedding_length: width };
  const ctx = num('context_length');
  if (ctx !== undefined) out.context_length = ctx;
  // Per-head widths (models whose heads are not embedding_length / head_count, e.g. gemma, qwen3), and the vocabulary
  // (`<arch>.vocab_size`, else the token list when /api/show was verbose): the KV cache and graph estimates use them.
  const keyLength = num('attention.key_length');
  const valueLength = num('attention.value_length');
  if (keyLength !== undefined) out.key_length = keyLength;
  if (valueLength !== undefined) out.value_length = valueLength;
  const tokens = info['tokenizer.ggml.tokens'];
  const vocab = num('vocab_size') ?? (Array.isArray(tokens) && tokens.length > 0 ? tokens.length : undefined);
  if (vocab !== undefined) out.vocab_size = vocab;
  return out;
}

interface ShowFacts {
  arch?: ModelArch;
  embedding: boolean;
  /** Undefined when the server's /api/show has no `capabilities` (Ollama before 0.6): unknown, never blocks. */
  capabilities?: ModelCapability[];
}

function detailsOf(d: z.infer<typeof DetailsSchema> | null | undefined): ModelDetails | undefined {
  if (!d) return undefined;
  const out: ModelDetails = {};
  if (d.format) out.format = d.format;
  if (d.family) out.family = d.family;
  if (d.families) out.families = d.families;
  if (d.parameter_size) out.parameter_size = d.parameter_size;
  if (d.quantization_level) out.quantization_level = d.quantization_level;
  return out;
}

export function createOllamaBackend(opts: OllamaBackendOptions): InferenceBackend {
  const http = createHttpClient({ kind: 'ollama', baseUrl: opts.url, ...(opts.connections === undefined ? {} : { connections: opts.connections }) });
  const log = opts.logger.child({ backend: 'ollama', url: http.url });
  const timeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  /** /api/show facts by `name@digest`: a model's architecture and capabilities only change with its digest, so a heartbeat calls show only for new models. */
  const showCache = new Map<string, ShowFacts>();

  async function describe(m: TagsModel, signal: AbortSignal): Promise<ModelAvailable> {
    const out: ModelAvailable = { name: m.name, size_bytes: m.size };
    if (m.digest) out.digest = m.digest;
    if (m.modified_at) out.modified_at = m.modified_at;
    const details = detailsOf(m.details);
    if (details) out.details = details;
    if (m.details?.family) out.family = m.details.family;
    if (m.details?.parameter_size) out.parameter_size = m.details.parameter_size;
    if (m.details?.quantization_level) out.quantization = m.details.quantization_level;
    const key = `${m.name}@${m.digest ?? ''}`;
    let facts = showCache.get(key);
    if (!facts) {
      try {
        const show = await http.json({ method: 'POST', path: '/api/show', body: { model: m.name }, signal, timeoutMs: PROBE_TIMEOUT_MS, schema: ShowSchema });
        const arch = archFromModelInfo(show.model_info);
        const caps = show.capabilities ?? [];
        facts = {
          ...(arch ? { arch } : {}),
          embedding: caps.includes('embedding') && !caps.includes('completion'),
          ...(show.capabilities ? { capabilities: knownCapabilities(show.capabilities) } : {}),
        };
        showCache.set(key, facts);
      } catch (e) {
        // Without /api/show the model is still usable; the scheduler falls back to its size alone.
        log.debug({ model: m.name, err: (e as Error).message }, 'model details unavailable');
        return out;
      }
    }
    if (facts.arch) out.arch = facts.arch;
    if (facts.capabilities) out.capabilities = facts.capabilities;
    if (facts.embedding && facts.arch) out.embedding_length = facts.arch.embedding_length;
    return out;
  }

  async function probe(signal?: AbortSignal): Promise<BackendProbe> {
    const timeout = AbortSignal.timeout(PROBE_TIMEOUT_MS);
    const s = signal ? AbortSignal.any([signal, timeout]) : timeout;
    // Every request of the probe listens on this one short-lived signal, one /api/show per model not seen before at
    // once: a node with more than 10 models is not a listener leak (Node warned "MaxListenersExceededWarning").
    setMaxListeners(0, s);
    try {
      const [version, tags, ps] = await Promise.all([
        http.json({ method: 'GET', path: '/api/version', signal: s, timeoutMs: PROBE_TIMEOUT_MS, schema: VersionSchema }),
        http.json({ method: 'GET', path: '/api/tags', signal: s, timeoutMs: PROBE_TIMEOUT_MS, schema: TagsSchema }),
        http.json({ method: 'GET', path: '/api/ps', signal: s, timeoutMs: PROBE_TIMEOUT_MS, schema: PsSchema }),
      ]);
      const tagged = tags.models ?? [];
      const models_available = await Promise.all(tagged.map((m) => describe(m, s)));
      const present = new Set(tagged.map((m) => `${m.name}@${m.digest ?? ''}`));
      for (const key of showCache.keys()) if (!present.has(key)) showCache.delete(key);
      const models_loaded = (ps.models ?? []).map(
        (m): ModelLoaded => ({
          name: m.name,
          size_bytes: m.size,
          vram_bytes: m.size_vram ?? 0,
          ...(m.expires_at ? { expires_at: m.expires_at } : {}),
          ...(m.digest ? { digest: m.digest } : {}),
          ...(m.context_length ? { context_length: m.context_length } : {}),
        }),
      );
      return { healthy: true, version: version.version, models_available, models_loaded };
    } catch (e) {
      return failedProbe(http.label, e, timeout, PROBE_TIMEOUT_MS, signal, log);
    }
  }

  /** POSTs a streaming generate/chat request and reads its NDJSON until the final `done: true` line. */
  async function stream(kind: 'generate' | 'chat', body: Record<string, unknown>, model: string, hooks: CallHooks): Promise<InferenceOutput> {
    if (hooks.signal.aborted) throw cancelledError(http.label, hooks.signal.reason);
    const path = kind === 'generate' ? '/api/generate' : '/api/chat';
    const res = await http.send({ method: 'POST', path, body: { ...body, stream: true }, signal: hooks.signal, timeoutMs });
    let text = '';
    let thinking = '';
    const toolCalls: ToolCall[] = [];
    let final: Chunk | undefined;
    const { call, rethrowHookError } = hookCaller();
    try {
      for await (const line of ndjson(res.body)) {
        const parsed = ChunkSchema.safeParse(line);
        if (!parsed.success) throw new HydraError(ErrorCode.BackendError, `${http.label} streamed an unexpected object: ${JSON.stringify(line).slice(0, 200)}`, { retryable: true });
        const chunk = parsed.data;
        if (chunk.error !== undefined) throw errorFromStreamMessage(http.label, chunk.error);
        // Reasoning arrives before the answer; each piece goes to its own hook, in order.
        const thought = kind === 'generate' ? chunk.thinking : chunk.message?.thinking;
        if (thought) {
          thinking += thought;
          call(hooks.onThinking, thought);
        }
        const piece = kind === 'generate' ? chunk.response : chunk.message?.content;
        if (piece) {
          text += piece;
          call(hooks.onToken, piece);
        }
        // Ollama sends each tool call whole, in the chunk where the model finished it.
        for (const c of chunk.message?.tool_calls ?? []) toolCalls.push(toToolCall(c));
        if (chunk.done === true) final = chunk;
      }
    } catch (e) {
      res.body.destroy();
      rethrowHookError();
      throw errorFromTransport(http.label, e, hooks.signal);
    }
    if (hooks.signal.aborted) throw cancelledError(http.label, hooks.signal.reason);
    if (!final) {
      throw new HydraError(ErrorCode.BackendError, `${http.label} ended the ${kind} stream without a final "done" message (the server may have crashed mid-answer)`, { retryable: true });
    }
    const message = {
      role: 'assistant' as const,
      content: text,
      ...(thinking ? { thinking } : {}),
      ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
    };
    return {
      model: final.model ?? model,
      ...(kind === 'generate' ? { response: text, ...(thinking ? { thinking } : {}) } : { message }),
      ...(final.done_reason ? { done_reason: final.done_reason } : {}),
      prompt_tokens: final.prompt_eval_count ?? 0,
      completion_tokens: final.eval_count ?? 0,
      total_duration_ms: nsToMs(final.total_duration),
      load_duration_ms: nsToMs(final.load_duration),
      prompt_eval_duration_ms: nsToMs(final.prompt_eval_duration),
      eval_duration_ms: nsToMs(final.eval_duration),
    };
  }

  /** POST /api/pull, streaming: each progress line to `onProgress`; the stream must end in `{"status": "success"}`. */
  async function pull(model: string, o: { insecure?: boolean }, hooks: AdminHooks): Promise<void> {
    if (hooks.signal.aborted) throw cancelledError(http.label, hooks.signal.reason);
    const res = await http.send({ method: 'POST', path: '/api/pull', body: { model, stream: true, ...(o.insecure ? { insecure: true } : {}) }, signal: hooks.signal, timeoutMs });
    let success = false;
    try {
      for await (const line of ndjson(res.body)) {
        const p = PullLineSchema.parse(line);
        if (p.error !== undefined) throw new HydraError(ErrorCode.BackendError, `${http.label} could not pull ${model}: ${p.error}`, { details: { backend_message: p.error } });
        if (p.status === undefined) continue;
        if (p.status === 'success') success = true;
        hooks.onProgress?.({
          status: p.status,
          ...(p.digest ? { digest: p.digest } : {}),
          ...(p.total === undefined ? {} : { total: p.total }),
          ...(p.completed === undefined ? {} : { completed: p.completed }),
        });
      }
    } catch (e) {
      res.body.destroy();
      throw errorFromTransport(http.label, e, hooks.signal);
    }
    if (hooks.signal.aborted) throw cancelledError(http.label, hooks.signal.reason);
    if (!success) throw new HydraError(ErrorCode.BackendError, `${http.label} ended the pull of ${model} without "success" (the server may have stopped mid-download); pull again`, { retryable: true });
  }

  const passThrough = (call: { options?: unknown; keep_alive?: unknown; format?: unknown }): Record<string, unknown> => ({
    ...(call.options === undefined ? {} : { options: call.options }),
    ...(call.format === undefined ? {} : { format: call.format }),
    ...(call.keep_alive === undefined ? {} : { keep_alive: call.keep_alive }),
  });

  /** Fields Ollama takes as they are; left out when unset so the server's own defaults apply. */
  const fields = (o: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

  return {
    kind: 'ollama',
    url: http.url,
    probe,
    generate(call: GenerateCall, hooks: CallHooks) {
      const { model, prompt, system, suffix, template, raw, images, context, think } = call;
      return stream('generate', { ...fields({ model, prompt, system, suffix, template, raw, images, context, think }), ...passThrough(call) }, model, hooks);
    },
    chat(call: ChatCall, hooks: CallHooks) {
      // Messages are already in Ollama's shape (images, thinking, tool_calls with object arguments, tool_name);
      // tool_call_id is OpenAI's and is ignored by Ollama.
      const { model, messages, tools, think } = call;
      return stream('chat', { ...fields({ model, messages, tools, think }), ...passThrough(call) }, model, hooks);
    },
    async embed(call: EmbedCall, hooks: CallHooks): Promise<InferenceOutput> {
      if (hooks.signal.aborted) throw cancelledError(http.label, hooks.signal.reason);
      const out = await http.json({
        method: 'POST',
        path: '/api/embed',
        body: { ...fields({ model: call.model, input: call.input, truncate: call.truncate, dimensions: call.dimensions }), ...passThrough(call) },
        signal: hooks.signal,
        timeoutMs,
        schema: EmbedSchema,
      });
      return {
        model: out.model ?? call.model,
        embeddings: out.embeddings,
        prompt_tokens: out.prompt_eval_count ?? 0,
        completion_tokens: 0,
        total_duration_ms: nsToMs(out.total_duration),
        load_duration_ms: nsToMs(out.load_duration),
        prompt_eval_duration_ms: Math.max(0, nsToMs(out.total_duration) - nsToMs(out.load_duration)),
        eval_duration_ms: 0,
      };
    },
    pull,
    async delete(model: string, hooks: AdminHooks): Promise<void> {
      if (hooks.signal.aborted) throw cancelledError(http.label, hooks.signal.reason);
      try {
        const res = await http.send({ method: 'DELETE', path: '/api/delete', body: { model }, signal: hooks.signal, timeoutMs: PROBE_TIMEOUT_MS * 5 });
        await res.body.dump();
      } catch (e) {
        if (e instanceof HydraError && e.code === ErrorCode.ModelNotFound) {
          throw new HydraError(ErrorCode.ModelNotFound, `model ${model} is not on ${http.label}: nothing to delete`, { details: e.details });
        }
        throw e;
      }
    },
    async unload(model: string, hooks: AdminHooks): Promise<void> {
      if (hooks.signal.aborted) throw cancelledError(http.label, hooks.signal.reason);
      // Ollama's way to unload: an empty generate with keep_alive 0 (answers done_reason "unload").
      await http.json({ method: 'POST', path: '/api/generate', body: { model, keep_alive: 0, stream: false }, signal: hooks.signal, timeoutMs, schema: UnloadSchema });
    },
    close: () => http.close(),
  };
}
