// Inference through any OpenAI-compatible server (llama-server, vLLM, LM Studio, Ollama's /v1): SSE streaming, Ollama-style options, tools, images and reasoning mapped, AbortSignal end to end.
import { z } from 'zod';
import {
  ErrorCode,
  HydraError,
  type BackendProbe,
  type ChatCall,
  type EmbedCall,
  type GenerateCall,
  type ChatMessage,
  type InferenceOptions,
  type InferenceOutput,
  type ModelAvailable,
  type ModelCapability,
  type ModelLoaded,
  type Think,
} from '../../../libs/core/index.js';
import type { Logger } from '../../../libs/logger/index.js';
import type { CallHooks, InferenceBackend } from './backend.js';
import { createHttpClient } from './http-client.js';
import { cancelledError, errorFromStreamMessage, errorFromTransport, failedProbe } from './http-errors.js';
import { hookCaller, sseData } from './http-stream.js';
import { ToolCallAccumulator } from './tool-calls.js';

export interface OpenAIBackendOptions {
  /** The API root, e.g. http://127.0.0.1:8080/v1 */
  baseUrl: string;
  /** Sent as `Authorization: Bearer` when set; never logged nor put in messages. */
  apiKey?: string;
  logger: Logger;
  /** Limit for the answer's headers to arrive and for each pause between streamed chunks. Default 300 000 ms. */
  requestTimeoutMs?: number;
  /**
   * Weights size in bytes by model id (OPENAI_MODEL_SIZES). It wins over what the server says (llama-server's
   * /models `meta.size`); a model neither lists is reported with `size_unknown` (docs/scheduling.md, "Memory admission").
   */
  modelSizes?: Record<string, number>;
  /** Keep-alive connections to the server. Default 32. */
  connections?: number;
  /**
   * What each model can do, by model id. OpenAI-compatible servers do not say, so by default nothing is reported
   * (unknown: the submit-time capability check lets every request through and the server answers for itself).
   */
  modelCapabilities?: Record<string, ModelCapability[]>;
}

const PROBE_TIMEOUT_MS = 2_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 300_000;

/**
 * /models. llama-server adds `meta` (weights `size` in bytes, training context `n_ctx_train`, `n_vocab`, `n_embd`);
 * vLLM adds `max_model_len` (the context it serves). Both optional: other servers send neither.
 */
const ModelsSchema = z
  .object({
    data: z.array(
      z
        .object({
          id: z.string(),
          meta: z.object({ size: z.number().nullish(), n_ctx_train: z.number().nullish() }).loose().nullish(),
          /** llama-server in router mode (several models): whether this one is loaded now. */
          status: z.object({ value: z.string().nullish() }).loose().nullish(),
          max_model_len: z.number().nullish(),
        })
        .loose(),
    ),
  })
  .loose();

/** llama-server's /props (at the server root): `total_slots`, the requests it runs at once. Other servers answer 404. */
const PropsSchema = z.object({ total_slots: z.number().int().nullish() }).loose();
/** A server without /props is asked again only after this long (it may have been restarted as llama-server). */
const PROPS_RETRY_MS = 600_000;

/** One SSE event of /chat/completions or /completions. `timings` is llama-server's (milliseconds). */
const ChunkSchema = z
  .object({
    model: z.string().optional(),
    choices: z
      .array(
        z
          .object({
            delta: z
              .object({
                content: z.string().nullish(),
                /** Reasoning text: `reasoning_content` (llama-server, vLLM, DeepSeek) or `reasoning` (Ollama's /v1, newer vLLM). */
                reasoning_content: z.string().nullish(),
                reasoning: z.string().nullish(),
                tool_calls: z
                  .array(
                    z
                      .object({
                        index: z.number().int().nullish(),
                        id: z.string().nullish(),
                        function: z.object({ name: z.string().nullish(), arguments: z.string().nullish() }).loose().nullish(),
                      })
                      .loose(),
                  )
                  .nullish(),
              })
              .loose()
              .nullish(),
            text: z.string().nullish(),
            finish_reason: z.string().nullish(),
          })
          .loose(),
      )
      .nullish(),
    usage: z.object({ prompt_tokens: z.number().optional(), completion_tokens: z.number().optional() }).loose().nullish(),
    timings: z.object({ prompt_ms: z.number().optional(), predicted_ms: z.number().optional() }).loose().nullish(),
    error: z.unknown().optional(),
  })
  .loose();
type Chunk = z.infer<typeof ChunkSchema>;

const EmbeddingsSchema = z
  .object({
    model: z.string().optional(),
    data: z.array(z.object({ index: z.number().optional(), embedding: z.array(z.number()) }).loose()),
    usage: z.object({ prompt_tokens: z.number().optional() }).loose().nullish(),
  })
  .loose();

/**
 * Ollama-style options in OpenAI terms: temperature, top_p, seed, stop, frequency/presence penalties as they are;
 * num_predict >= 0 becomes max_tokens (negative means "no limit" and is left out). Other options have no standard
 * OpenAI field and are not sent (strict servers reject unknown fields).
 */
export function openaiSamplingFields(options: InferenceOptions | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!options) return out;
  if (options.temperature !== undefined) out.temperature = options.temperature;
  if (options.top_p !== undefined) out.top_p = options.top_p;
  if (options.seed !== undefined) out.seed = options.seed;
  if (options.stop !== undefined && options.stop.length > 0) out.stop = options.stop;
  if (options.num_predict !== undefined && options.num_predict >= 0) out.max_tokens = options.num_predict;
  for (const k of ['frequency_penalty', 'presence_penalty'] as const) if (typeof options[k] === 'number') out[k] = options[k];
  return out;
}

/** Ollama's `format` as `response_format`: "json" → json_object, a JSON schema → json_schema. */
function openaiResponseFormat(format: GenerateCall['format']): Record<string, unknown> {
  if (format === undefined) return {};
  if (format === 'json') return { response_format: { type: 'json_object' } };
  return { response_format: { type: 'json_schema', json_schema: { name: 'output', schema: format } } };
}

const round3 = (ms: number): number => Math.round(ms * 1000) / 1000;

/**
 * `think` as OpenAI's `reasoning_effort`: a level is sent as it is. true/false have no portable OpenAI field
 * (servers that think do so by default, or take vendor-specific switches), so they are not sent.
 */
export function openaiReasoningFields(think: Think | undefined): Record<string, unknown> {
  return typeof think === 'string' ? { reasoning_effort: think } : {};
}

/** The MIME type of a base64 image from its first bytes (PNG, JPEG, GIF, WebP); PNG when unknown. */
export function imageMimeType(b64: string): string {
  if (b64.startsWith('/9j/')) return 'image/jpeg';
  if (b64.startsWith('R0lGOD')) return 'image/gif';
  if (b64.startsWith('UklGR')) return 'image/webp';
  return 'image/png';
}

/**
 * Chat messages in OpenAI's form. Images become `image_url` content parts with data URLs; an assistant's tool calls
 * get OpenAI's JSON-string arguments and ids (Ollama-style histories have none: `call_<message>_<n>` is made up, and
 * the tool results that follow take those ids, matched by tool_name, else in order). A tool result keeps its
 * `tool_call_id`. An assistant's `thinking` is not sent: OpenAI's API has no field for it.
 */
export function openaiMessages(messages: readonly ChatMessage[]): Record<string, unknown>[] {
  let pending: { id: string; name: string }[] = [];
  return messages.map((m, i) => {
    if (m.role === 'tool') {
      const match = pending.findIndex((p) => p.name === m.tool_name);
      const taken = m.tool_call_id ? undefined : pending.splice(match >= 0 ? match : 0, 1)[0];
      const id = m.tool_call_id ?? taken?.id;
      return { role: 'tool', content: m.content, ...(id ? { tool_call_id: id } : {}) };
    }
    if (m.role === 'assistant' && m.tool_calls?.length) {
      const calls = m.tool_calls.map((c, n) => ({
        id: c.id ?? `call_${i}_${n}`,
        type: 'function',
        function: { name: c.function.name, arguments: JSON.stringify(c.function.arguments) },
      }));
      pending = calls.map((c) => ({ id: c.id, name: c.function.name }));
      // OpenAI: content may be null when the turn is only tool calls.
      return { role: 'assistant', content: m.content === '' ? null : m.content, tool_calls: calls };
    }
    if (m.images?.length) {
      const parts = [
        ...(m.content ? [{ type: 'text', text: m.content }] : []),
        ...m.images.map((img) => ({ type: 'image_url', image_url: { url: `data:${imageMimeType(img)};base64,${img}` } })),
      ];
      return { role: m.role, content: parts };
    }
    return { role: m.role, content: m.content };
  });
}

/** OpenAI's finish_reason in Ollama's words: tool_calls is a normal stop (the message carries the calls), as in Ollama. */
const doneReasonOf = (finish: string): string => (finish === 'tool_calls' || finish === 'function_call' ? 'stop' : finish);

export function createOpenAIBackend(opts: OpenAIBackendOptions): InferenceBackend {
  const http = createHttpClient({
    kind: 'openai',
    baseUrl: opts.baseUrl,
    ...(opts.apiKey ? { headers: { authorization: `Bearer ${opts.apiKey}` } } : {}),
    ...(opts.connections === undefined ? {} : { connections: opts.connections }),
  });
  const log = opts.logger.child({ backend: 'openai', url: http.url });
  const timeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  // llama-server serves /props beside /v1, at the server root.
  const root = createHttpClient({
    kind: 'openai',
    baseUrl: opts.baseUrl.replace(/\/v1\/*$/, ''),
    ...(opts.apiKey ? { headers: { authorization: `Bearer ${opts.apiKey}` } } : {}),
    connections: 1,
  });
  let propsAfter = 0;

  /** llama-server's slots (the server's own parallel), or undefined; a server without /props is not asked again for a while. */
  async function readProps(signal: AbortSignal): Promise<z.infer<typeof PropsSchema> | undefined> {
    if (Date.now() < propsAfter) return undefined;
    try {
      return await root.json({ method: 'GET', path: '/props', signal, timeoutMs: PROBE_TIMEOUT_MS, schema: PropsSchema });
    } catch (e) {
      propsAfter = Date.now() + PROPS_RETRY_MS;
      log.debug({ err: (e as Error).message }, 'no llama-server /props; slots from NUM_PARALLEL');
      return undefined;
    }
  }

  async function probe(signal?: AbortSignal): Promise<BackendProbe> {
    const timeout = AbortSignal.timeout(PROBE_TIMEOUT_MS);
    const s = signal ? AbortSignal.any([signal, timeout]) : timeout;
    try {
      const [models, props] = await Promise.all([http.json({ method: 'GET', path: '/models', signal: s, timeoutMs: PROBE_TIMEOUT_MS, schema: ModelsSchema }), readProps(s)]);
      const slots = props?.total_slots;
      // A llama-server holds its model in memory from the start (in router mode: those whose status says loaded).
      // Reported as loaded (its weights taken to be in VRAM on a GPU node), so memory the server already holds is not
      // also counted as used by something else (nvidia-smi), and the model counts as warm.
      const loaded = models.data.flatMap((m): ModelLoaded[] => {
        const size = m.meta?.size;
        return size && (!m.status || m.status.value === 'loaded') ? [{ name: m.id, size_bytes: size, vram_bytes: size }] : [];
      });
      return {
        healthy: true,
        models_available: models.data.map((m): ModelAvailable => {
          const caps = opts.modelCapabilities?.[m.id];
          const size = opts.modelSizes?.[m.id] ?? m.meta?.size ?? undefined;
          const ctx = m.meta?.n_ctx_train ?? m.max_model_len ?? undefined;
          return {
            name: m.id,
            size_bytes: size ?? 0,
            ...(size === undefined ? { size_unknown: true } : {}),
            ...(caps ? { capabilities: caps } : {}),
            ...(ctx ? { context_length: ctx } : {}),
          };
        }),
        models_loaded: loaded,
        ...(slots && slots > 0 ? { parallel: slots } : {}),
      };
    } catch (e) {
      return failedProbe(http.label, e, timeout, PROBE_TIMEOUT_MS, signal, log);
    }
  }

  /** POSTs a streaming completion and reads its SSE events until `data: [DONE]`. */
  async function stream(kind: 'text' | 'chat', body: Record<string, unknown>, model: string, hooks: CallHooks): Promise<InferenceOutput> {
    if (hooks.signal.aborted) throw cancelledError(http.label, hooks.signal.reason);
    const started = performance.now();
    const path = kind === 'chat' ? '/chat/completions' : '/completions';
    const res = await http.send({ method: 'POST', path, body: { ...body, stream: true, stream_options: { include_usage: true } }, signal: hooks.signal, timeoutMs });
    let text = '';
    let thinking = '';
    const tools = new ToolCallAccumulator();
    let pieces = 0;
    let firstTokenAt: number | undefined;
    let finish: string | undefined;
    let sawDone = false;
    let last: Chunk | undefined;
    let usage: Chunk['usage'];
    let timings: Chunk['timings'];
    const { call, rethrowHookError } = hookCaller();
    try {
      for await (const data of sseData(res.body)) {
        if (data.trim() === '[DONE]') {
          sawDone = true;
          continue;
        }
        let parsed;
        try {
          parsed = ChunkSchema.safeParse(JSON.parse(data));
        } catch {
          throw new SyntaxError(`an event is not JSON: ${data.slice(0, 200)}`);
        }
        if (!parsed.success) throw new HydraError(ErrorCode.BackendError, `${http.label} streamed an unexpected event: ${data.slice(0, 200)}`, { retryable: true });
        const chunk = parsed.data;
        if (chunk.error !== undefined && chunk.error !== null) throw errorFromStreamMessage(http.label, describeError(chunk.error));
        last = chunk;
        if (chunk.usage) usage = chunk.usage;
        if (chunk.timings) timings = chunk.timings;
        const choice = chunk.choices?.[0];
        if (choice?.finish_reason) finish = choice.finish_reason;
        const delta = kind === 'chat' ? choice?.delta : undefined;
        const thought = delta?.reasoning_content ?? delta?.reasoning;
        if (thought) {
          firstTokenAt ??= performance.now();
          thinking += thought;
          call(hooks.onThinking, thought);
        }
        for (const d of delta?.tool_calls ?? []) {
          firstTokenAt ??= performance.now();
          tools.add(d);
        }
        const piece = kind === 'chat' ? delta?.content : choice?.text;
        if (piece) {
          firstTokenAt ??= performance.now();
          text += piece;
          pieces++;
          call(hooks.onToken, piece);
        }
      }
    } catch (e) {
      res.body.destroy();
      rethrowHookError();
      throw errorFromTransport(http.label, e, hooks.signal);
    }
    if (hooks.signal.aborted) throw cancelledError(http.label, hooks.signal.reason);
    if (!sawDone && finish === undefined) {
      throw new HydraError(ErrorCode.BackendError, `${http.label} ended the stream without a finish_reason or [DONE] (the server may have crashed mid-answer)`, { retryable: true });
    }
    const ended = performance.now();
    const firstAt = firstTokenAt ?? ended;
    const toolCalls = tools.calls();
    const message = { role: 'assistant' as const, content: text, ...(thinking ? { thinking } : {}), ...(toolCalls.length ? { tool_calls: toolCalls } : {}) };
    return {
      model: last?.model ?? model,
      ...(kind === 'text' ? { response: text } : { message }),
      ...(finish ? { done_reason: doneReasonOf(finish) } : {}),
      prompt_tokens: usage?.prompt_tokens ?? 0,
      completion_tokens: usage?.completion_tokens ?? pieces,
      total_duration_ms: round3(ended - started),
      load_duration_ms: 0,
      prompt_eval_duration_ms: round3(timings?.prompt_ms ?? firstAt - started),
      eval_duration_ms: round3(timings?.predicted_ms ?? ended - firstAt),
    };
  }

  return {
    kind: 'openai',
    url: http.url,
    probe,
    /**
     * Sent to /completions; a `system` text is prepended to the prompt, separated by a blank line; `suffix` is the
     * legacy completions field. /completions takes no images (send them in a chat); template, raw, context and think
     * have no equivalent there and are not sent.
     */
    async generate(call: GenerateCall, hooks: CallHooks) {
      if (call.images?.length) {
        throw new HydraError(ErrorCode.BadRequest, `images: ${http.label} takes images only in a chat (/chat/completions), not in a generate; send the images as a chat message`);
      }
      const prompt = call.system ? `${call.system}\n\n${call.prompt}` : call.prompt;
      const body = { model: call.model, prompt, ...(call.suffix ? { suffix: call.suffix } : {}), ...openaiSamplingFields(call.options), ...openaiResponseFormat(call.format) };
      return stream('text', body, call.model, hooks);
    },
    chat(call: ChatCall, hooks: CallHooks) {
      const body = {
        model: call.model,
        messages: openaiMessages(call.messages),
        ...(call.tools?.length ? { tools: call.tools } : {}),
        ...openaiReasoningFields(call.think),
        ...openaiSamplingFields(call.options),
        ...openaiResponseFormat(call.format),
      };
      return stream('chat', body, call.model, hooks);
    },
    /** `dimensions` is OpenAI's own field; `truncate` has none (servers truncate or refuse as they do) and is not sent. */
    async embed(call: EmbedCall, hooks: CallHooks): Promise<InferenceOutput> {
      if (hooks.signal.aborted) throw cancelledError(http.label, hooks.signal.reason);
      const started = performance.now();
      const out = await http.json({ method: 'POST', path: '/embeddings', body: { model: call.model, input: call.input, encoding_format: 'float', ...(call.dimensions ? { dimensions: call.dimensions } : {}) }, signal: hooks.signal, timeoutMs, schema: EmbeddingsSchema });
      const embeddings = [...out.data].sort((a, b) => (a.index ?? 0) - (b.index ?? 0)).map((d) => d.embedding);
      const total = round3(performance.now() - started);
      return {
        model: out.model ?? call.model,
        embeddings,
        prompt_tokens: out.usage?.prompt_tokens ?? 0,
        completion_tokens: 0,
        total_duration_ms: total,
        load_duration_ms: 0,
        prompt_eval_duration_ms: total,
        eval_duration_ms: 0,
      };
    },
    close: async () => {
      await Promise.all([http.close(), root.close()]);
    },
  };
}

function describeError(e: unknown): string {
  if (typeof e === 'string') return e;
  if (e && typeof e === 'object' && typeof (e as { message?: unknown }).message === 'string') return (e as { message: string }).message;
  return JSON.stringify(e);
}
