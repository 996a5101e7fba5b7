// Inference through an Ollama server over HTTP: probe (version, tags, ps, show), streamed generate/chat over NDJSON, embed; AbortSignal end to end.
import { z } from 'zod';
import {
  ErrorCode,
  HydraError,
  type BackendProbe,
  type ChatCall,
  type EmbedCall,
  type GenerateCall,
  type InferenceOutput,
  type ModelArch,
  type ModelAvailable,
} from '../../../libs/core/index.js';
import type { Logger } from '../../../libs/logger/index.js';
import type { CallHooks, InferenceBackend } from './backend.js';
import { createHttpClient } from './http-client.js';
import { cancelledError, errorFromStreamMessage, errorFromTransport, failedProbe } from './http-errors.js';
import { ndjson } from './http-stream.js';

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

const TagsSchema = z.object({
  models: z
    .array(
      z
        .object({
          name: z.string(),
          size: z.number(),
          digest: z.string().optional(),
          details: z.object({ family: z.string().optional(), parameter_size: z.string().optional(), quantization_level: z.string().optional() }).loose().nullish(),
        })
        .loose(),
    )
    .nullish(),
});
type TagsModel = NonNullable<z.infer<typeof TagsSchema>['models']>[number];

const PsSchema = z.object({
  models: z.array(z.object({ name: z.string(), size: z.number(), size_vram: z.number().optional(), expires_at: z.string().optional() }).loose()).nullish(),
});
const VersionSchema = z.object({ version: z.string() }).loose();
const ShowSchema = z.object({ model_info: z.record(z.string(), z.unknown()).nullish(), capabilities: z.array(z.string()).nullish() }).loose();

/** One NDJSON line of /api/generate or /api/chat. Durations are nanoseconds. */
const ChunkSchema = z
  .object({
    model: z.string().optional(),
    response: z.string().optional(),
    message: z.object({ content: z.string().nullish() }).loose().optional(),
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

/** Nanoseconds to milliseconds, to the microsecond. */
const nsToMs = (ns: number | undefined): number => (ns === undefined ? 0 : Math.round(ns / 1e3) / 1e3);

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
  return out;
}

interface ShowFacts {
  arch?: ModelArch;
  embedding: boolean;
}

export function createOllamaBackend(opts: OllamaBackendOptions): InferenceBackend {
  const http = createHttpClient({ kind: 'ollama', baseUrl: opts.url, ...(opts.connections === undefined ? {} : { connections: opts.connections }) });
  const log = opts.logger.child({ backend: 'ollama', url: http.url });
  const timeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  /** /api/show facts by `name@digest`: a model's architecture only changes with its digest. */
  const showCache = new Map<string, ShowFacts>();

  async function describe(m: TagsModel, signal: AbortSignal): Promise<ModelAvailable> {
    const out: ModelAvailable = { name: m.name, size_bytes: m.size };
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
        facts = { ...(arch ? { arch } : {}), embedding: caps.includes('embedding') && !caps.includes('completion') };
        showCache.set(key, facts);
      } catch (e) {
        // Without /api/show the model is still usable; the scheduler falls back to its size alone.
        log.debug({ model: m.name, err: (e as Error).message }, 'model details unavailable');
        return out;
      }
    }
    if (facts.arch) out.arch = facts.arch;
    if (facts.embedding && facts.arch) out.embedding_length = facts.arch.embedding_length;
    return out;
  }

  async function probe(signal?: AbortSignal): Promise<BackendProbe> {
    const timeout = AbortSignal.timeout(PROBE_TIMEOUT_MS);
    const s = signal ? AbortSignal.any([signal, timeout]) : timeout;
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
      const models_loaded = (ps.models ?? []).map((m) => ({
        name: m.name,
        size_bytes: m.size,
        vram_bytes: m.size_vram ?? 0,
        ...(m.expires_at ? { expires_at: m.expires_at } : {}),
      }));
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
    let final: Chunk | undefined;
    /** Set when the caller's onToken threw: that error is rethrown as it is, not blamed on the server. */
    let hookError: { e: unknown } | undefined;
    try {
      for await (const line of ndjson(res.body)) {
        const parsed = ChunkSchema.safeParse(line);
        if (!parsed.success) throw new HydraError(ErrorCode.BackendError, `${http.label} streamed an unexpected object: ${JSON.stringify(line).slice(0, 200)}`, { retryable: true });
        const chunk = parsed.data;
        if (chunk.error !== undefined) throw errorFromStreamMessage(http.label, chunk.error);
        const piece = kind === 'generate' ? chunk.response : chunk.message?.content;
        if (piece) {
          text += piece;
          try {
            hooks.onToken?.(piece);
          } catch (e) {
            hookError = { e };
            throw e;
          }
        }
        if (chunk.done === true) final = chunk;
      }
    } catch (e) {
      res.body.destroy();
      if (hookError) throw hookError.e;
      throw errorFromTransport(http.label, e, hooks.signal);
    }
    if (hooks.signal.aborted) throw cancelledError(http.label, hooks.signal.reason);
    if (!final) {
      throw new HydraError(ErrorCode.BackendError, `${http.label} ended the ${kind} stream without a final "done" message (the server may have crashed mid-answer)`, { retryable: true });
    }
    return {
      model: final.model ?? model,
      ...(kind === 'generate' ? { response: text } : { message: { role: 'assistant' as const, content: text } }),
      ...(final.done_reason ? { done_reason: final.done_reason } : {}),
      prompt_tokens: final.prompt_eval_count ?? 0,
      completion_tokens: final.eval_count ?? 0,
      total_duration_ms: nsToMs(final.total_duration),
      load_duration_ms: nsToMs(final.load_duration),
      prompt_eval_duration_ms: nsToMs(final.prompt_eval_duration),
      eval_duration_ms: nsToMs(final.eval_duration),
    };
  }

  const passThrough = (call: { options?: unknown; keep_alive?: unknown; format?: unknown }): Record<string, unknown> => ({
    ...(call.options === undefined ? {} : { options: call.options }),
    ...(call.format === undefined ? {} : { format: call.format }),
    ...(call.keep_alive === undefined ? {} : { keep_alive: call.keep_alive }),
  });

  return {
    kind: 'ollama',
    url: http.url,
    probe,
    generate(call: GenerateCall, hooks: CallHooks) {
      return stream('generate', { model: call.model, prompt: call.prompt, ...(call.system === undefined ? {} : { system: call.system }), ...passThrough(call) }, call.model, hooks);
    },
    chat(call: ChatCall, hooks: CallHooks) {
      return stream('chat', { model: call.model, messages: call.messages, ...passThrough(call) }, call.model, hooks);
    },
    async embed(call: EmbedCall, hooks: CallHooks): Promise<InferenceOutput> {
      if (hooks.signal.aborted) throw cancelledError(http.label, hooks.signal.reason);
      const out = await http.json({ method: 'POST', path: '/api/embed', body: { model: call.model, input: call.input, ...passThrough(call) }, signal: hooks.signal, timeoutMs, schema: EmbedSchema });
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
    close: () => http.close(),
  };
}
