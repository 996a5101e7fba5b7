// In-process llama.cpp (node-llama-cpp, optional): GGUF files from a models folder or an Ollama store, streamed and cancellable; tool calls through node-llama-cpp's function calling, returned to the client, never run here.
import { createHash } from 'node:crypto';
import os from 'node:os';
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { ChatHistoryItem, ChatModelFunctionCall, ChatModelFunctions, LlamaChatResponseChunk, LlamaContextSequence, LlamaGrammar, Token } from 'node-llama-cpp';
import {
  ErrorCode,
  HydraError,
  toHydraError,
  type BackendProbe,
  type ChatCall,
  type EmbedCall,
  type GenerateCall,
  type InferenceOutput,
  type ModelAvailable,
  type ToolCall,
} from '../../../libs/core/index.js';
import type { Logger } from '../../../libs/logger/index.js';
import type { AdminHooks, CallHooks, InferenceBackend } from './backend.js';
import { findModel, scanCatalog, type CatalogEntry } from './llamacpp/catalog.js';
import { GgufInfoCache } from './llamacpp/gguf-info.js';
import { ModelPool, type LoadedModel } from './llamacpp/model-pool.js';
import { doneReason, planGeneration, unloadsAfter, type GenerationPlan } from './llamacpp/options.js';
import { defaultThreads, loadNodeLlamaCpp, onLlamaLog, sharedLlama, type ImportNodeLlamaCpp } from './llamacpp/runtime.js';

export interface LlamaCppBackendOptions {
  /** Every `*.gguf` here is a model named after its file (`name.gguf` → `name`, also `name:latest`). */
  modelsDir?: string;
  /** An Ollama model store (holds manifests/ and blobs/). Default: ~/.ollama/models, only when it exists; false: none. */
  ollamaModelsDir?: string | false;
  /** Decode threads. Default: max(1, min(4, cores - 1)); see `defaultThreads`. */
  threads?: number;
  /** Context window in tokens when a job sets no num_ctx. Default 4096 (capped by the model's training context). */
  contextSize?: number;
  /** false (default): CPU only. 'auto': offload to a GPU when node-llama-cpp has a binary for it. */
  gpu?: false | 'auto';
  logger: Logger;
  /** Explicit name → file pairs; they win over same-named files found elsewhere. */
  extraModels?: { name: string; path: string }[];
  /** Requests one model decodes at once (sequences of its context). Default 1. */
  parallel?: number;
  /** Models kept loaded (LRU by count). Default 2. */
  maxLoadedModels?: number;
  /** How node-llama-cpp is imported; tests pass a failing importer to see the not-installed error. */
  importNodeLlamaCpp?: ImportNodeLlamaCpp;
}

const DEFAULT_CONTEXT = 4096;

/** Throws HydraError backend_unavailable when node-llama-cpp is missing or has no binary for this machine. */
export async function createLlamaCppBackend(opts: LlamaCppBackendOptions): Promise<InferenceBackend> {
  const nlc = await loadNodeLlamaCpp(opts.importNodeLlamaCpp);
  const threads = opts.threads ?? defaultThreads();
  const gpu = opts.gpu ?? false;
  const log = opts.logger;
  const llama = await sharedLlama(nlc, { gpu, threads });
  const offLog = onLlamaLog((line) => {
    if (line.level === 'error' || line.level === 'fatal') log.warn({ llama_cpp: line.message }, 'llama.cpp error');
    else log.debug({ llama_cpp: line.message, level: line.level }, 'llama.cpp log');
  });
  const pool = new ModelPool({
    nlc,
    llama,
    threads,
    gpu,
    parallel: Math.max(1, opts.parallel ?? 1),
    maxLoaded: Math.max(1, opts.maxLoadedModels ?? 2),
    logger: log,
  });
  // Fit estimates from llama.cpp's own accounting: the weights as they load on this machine plus a context of the
  // size jobs get by default (KV cache, compute buffers), for the configured parallel sequences.
  const ggufInfo = new GgufInfoCache(nlc, async (info) => {
    const insights = await nlc.GgufInsights.from(info, llama);
    const contextSize = Math.min(opts.contextSize ?? DEFAULT_CONTEXT, insights.trainContextSize ?? DEFAULT_CONTEXT);
    const model = await insights.estimateModelResourceRequirementsV2({ gpuLayers: 0 });
    const context = await insights.estimateContextResourceRequirementsV2({ contextSize, modelGpuLayers: 0, sequences: Math.max(1, opts.parallel ?? 1) });
    return model.cpuRam + model.gpuVram + context.cpuRam + context.gpuVram;
  });
  const sources = {
    ...(opts.modelsDir !== undefined ? { modelsDir: opts.modelsDir } : {}),
    ...(opts.ollamaModelsDir !== undefined ? { ollamaModelsDir: opts.ollamaModelsDir } : {}),
    ...(opts.extraModels ? { extraModels: opts.extraModels } : {}),
  };
  const version = `node-llama-cpp ${await nlc.getModuleVersion()} (llama.cpp ${llama.llamaCppRelease.release}, ${llama.gpu || 'cpu'})`;
  const reported = new Set<string>();
  /** Probe runs every heartbeat: say each distinct problem once. */
  const reportOnce = (key: string, fields: Record<string, unknown>, msg: string) => {
    if (reported.has(key)) return;
    reported.add(key);
    log.warn(fields, msg);
  };
  let closed = false;
  log.info({ threads, gpu: llama.gpu, version, modelsDir: opts.modelsDir }, 'llamacpp backend ready');

  /** Resolve, load (or reuse) and hold a model for one call. */
  async function withModel<T>(
    call: { model: string; keep_alive?: string | number | undefined },
    hooks: CallHooks,
    run: (lm: LoadedModel, entry: CatalogEntry, loadMs: number) => Promise<T>,
  ): Promise<T> {
    if (closed) throw new HydraError(ErrorCode.BackendUnavailable, 'the llamacpp backend is closed', { retryable: true });
    try {
      hooks.signal.throwIfAborted();
      const catalog = await scanCatalog(sources);
      const entry = findModel(catalog, call.model);
      if (!entry) {
        const names = catalog.entries.map((e) => e.name);
        throw new HydraError(
          ErrorCode.ModelNotFound,
          `model ${call.model} is not on this node (${names.length ? `it has ${names.join(', ')}` : 'it has no models'}): put ${call.model}.gguf in the models folder or pull it into the Ollama store`,
          { details: { model: call.model, available: names } },
        );
      }
      const { lm, loadMs } = await pool.acquire(entry, hooks.signal);
      try {
        return await run(lm, entry, loadMs);
      } finally {
        await pool.release(lm, { unload: unloadsAfter(call.keep_alive) });
      }
    } catch (e) {
      throw asHydraError(e, hooks.signal);
    }
  }

  /** The model's own defaults: an Ollama store's params layer (JSON options), else none. */
  async function modelDefaults(entry: CatalogEntry): Promise<Record<string, unknown>> {
    if (!entry.paramsPath) return {};
    try {
      const parsed: unknown = JSON.parse(await readFile(entry.paramsPath, 'utf8'));
      return parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
    } catch (e) {
      reportOnce(`params:${entry.paramsPath}`, { model: entry.name, path: entry.paramsPath, err: String(e) }, 'unreadable Ollama params layer ignored');
      return {};
    }
  }

  function contextSizeFor(lm: LoadedModel, plan: GenerationPlan): number {
    return plan.contextSize ?? Math.min(opts.contextSize ?? DEFAULT_CONTEXT, lm.model.trainContextSize || DEFAULT_CONTEXT);
  }

  async function grammarFor(format: GenerateCall['format']): Promise<LlamaGrammar | undefined> {
    if (format === undefined) return undefined;
    try {
      if (format === 'json') return await llama.getGrammarFor('json');
      return await llama.createGrammarForJsonSchema(format as Parameters<typeof llama.createGrammarForJsonSchema>[0]);
    } catch (e) {
      throw new HydraError(ErrorCode.BadRequest, `format: this JSON schema cannot be turned into a llama.cpp grammar (${e instanceof Error ? e.message : String(e)}); simplify it`, {
        cause: e,
      });
    }
  }

  /** Counts, times and streams one decoding; `prompt_tokens` is the context length when the first token arrives. */
  function meter(seq: LlamaContextSequence, hooks: CallHooks) {
    const startedAt = performance.now();
    let firstAt: number | undefined;
    let promptTokens: number | undefined;
    let completionTokens = 0;
    let hookFailed = false;
    return {
      onToken: (tokens: Token[]) => {
        if (firstAt === undefined) {
          firstAt = performance.now();
          promptTokens = seq.contextTokens.length;
        }
        completionTokens += tokens.length;
      },
      onTextChunk: (text: string) => {
        if (!hooks.onToken || hookFailed) return;
        try {
          hooks.onToken(text);
        } catch (e) {
          hookFailed = true;
          log.warn({ err: String(e) }, 'onToken hook threw; not streaming the rest of this reply');
        }
      },
      finish: (loadMs: number, callStarted: number) => {
        const end = performance.now();
        const first = firstAt ?? end;
        return {
          prompt_tokens: promptTokens ?? seq.contextTokens.length,
          completion_tokens: completionTokens,
          total_duration_ms: end - callStarted,
          load_duration_ms: loadMs,
          prompt_eval_duration_ms: first - startedAt,
          eval_duration_ms: end - first,
        };
      },
    };
  }

  function sampling(plan: GenerationPlan) {
    return {
      temperature: plan.temperature,
      topK: plan.topK,
      topP: plan.topP,
      minP: plan.minP,
      ...(plan.seed !== undefined ? { seed: plan.seed } : {}),
      repeatPenalty: plan.repeatPenalty,
      ...(plan.stop.length ? { customStopTriggers: plan.stop } : {}),
    };
  }

  return {
    kind: 'llamacpp',
    url: `llamacpp://${opts.modelsDir !== undefined ? resolve(opts.modelsDir) : ''}`,

    async probe(): Promise<BackendProbe> {
      try {
        if (closed) return { healthy: false, error: 'the llamacpp backend is closed', models_available: [], models_loaded: [] };
        const catalog = await scanCatalog(sources);
        for (const p of catalog.problems) reportOnce(`source:${p}`, { problem: p }, 'model source problem');
        const available: ModelAvailable[] = [];
        for (const entry of catalog.entries) {
          const info = await ggufInfo.get(entry.path);
          if ('error' in info) {
            reportOnce(`file:${entry.path}:${info.error}`, { model: entry.name, path: entry.path, reason: info.error }, 'model file left out');
            continue;
          }
          available.push({ name: entry.name, ...info, ...(await fileIdentity(entry.path)) });
        }
        const loaded = pool.list().map((lm) => {
          const mem = lm.memory();
          return { name: lm.name, size_bytes: mem.ram + mem.vram, vram_bytes: mem.vram };
        });
        const vram = await llama.getVramState();
        const noSource = catalog.sources.configured > 0 && catalog.sources.readable === 0 && !opts.extraModels?.length;
        return {
          healthy: !noSource,
          ...(noSource ? { error: `no model source could be read: ${catalog.problems.join('; ')}` } : {}),
          version,
          models_available: available,
          models_loaded: loaded,
          memory: { vram_total: vram.total, vram_free: vram.free, ram_total: os.totalmem(), ram_free: os.freemem() },
          // Contexts are created with node-llama-cpp's default KV cache type, f16, whatever KV_CACHE_TYPE says.
          kv_cache_type: 'f16',
        };
      } catch (e) {
        return { healthy: false, error: e instanceof Error ? e.message : String(e), models_available: [], models_loaded: [] };
      }
    },

    generate(call: GenerateCall, hooks: CallHooks): Promise<InferenceOutput> {
      const callStarted = performance.now();
      // The capability check refuses these at submit (this backend reports neither vision nor insert); a job queued
      // before that check, or pinned here by hand, still gets the same clear answer.
      if (call.images?.length) return Promise.reject(noImages());
      if (call.suffix) {
        return Promise.reject(new HydraError(ErrorCode.BadRequest, 'suffix: llama.cpp nodes do not do fill-in-the-middle; send the job to an Ollama node whose model has the insert capability'));
      }
      return withModel(call, hooks, async (lm, entry, loadMs) => {
        const plan = planGeneration(call.options, await modelDefaults(entry));
        const size = contextSizeFor(lm, plan);
        // Raw completion (Ollama's raw mode); a system text is put before the prompt.
        const prompt = call.system ? `${call.system}\n\n${call.prompt}` : call.prompt;
        const promptLength = lm.model.tokenize(prompt).length + 1;
        if (promptLength >= size) {
          throw new HydraError(ErrorCode.BadRequest, `the prompt is ${promptLength} tokens but the context holds ${size}: shorten it or raise num_ctx`);
        }
        const grammar = await grammarFor(call.format);
        return lm.withSequence(size, hooks.signal, async (seq) => {
          const completion = new nlc.LlamaCompletion({ contextSequence: seq, autoDisposeSequence: false });
          const m = meter(seq, hooks);
          try {
            const res = await completion.generateCompletionWithMeta(prompt, {
              ...sampling(plan),
              ...(grammar ? { grammar } : {}),
              // Without num_predict: until end of text or the window is full, never an endless context shift.
              ...(plan.maxTokens !== undefined ? { maxTokens: plan.maxTokens } : { disableContextShift: true }),
              signal: hooks.signal,
              stopOnAbortSignal: false,
              onToken: m.onToken,
              onTextChunk: m.onTextChunk,
            });
            return { model: call.model, response: res.response, done_reason: doneReason(res.metadata.stopReason), ...m.finish(loadMs, callStarted) };
          } finally {
            completion.dispose({ disposeSequence: false });
          }
        });
      });
    },

    chat(call: ChatCall, hooks: CallHooks): Promise<InferenceOutput> {
      const callStarted = performance.now();
      if (call.messages.some((m) => m.images?.length)) return Promise.reject(noImages());
      const functions = toFunctions(call.tools);
      if (functions && call.format !== undefined) {
        return Promise.reject(new HydraError(ErrorCode.BadRequest, 'format: llama.cpp nodes cannot constrain the output to a format and offer tools in one request; send one or the other'));
      }
      return withModel(call, hooks, async (lm, entry, loadMs) => {
        const plan = planGeneration(call.options, await modelDefaults(entry));
        const size = contextSizeFor(lm, plan);
        const history = toChatHistory(call.messages);
        const grammar = await grammarFor(call.format);
        // Thought segments exist only for wrappers that know them (Qwen3, DeepSeek-R1, ...); others never emit any.
        // think: false asks for none (a zero thought budget); true or a level leaves the model's default.
        const thinks = lm.chatWrapper.settings.segments?.thought !== undefined;
        let thinking = '';
        const onResponseChunk = (c: LlamaChatResponseChunk) => {
          if (c.type !== 'segment' || c.segmentType !== 'thought' || !c.text) return;
          thinking += c.text;
          try {
            hooks.onThinking?.(c.text);
          } catch (e) {
            log.warn({ err: String(e) }, 'onThinking hook threw; reasoning not streamed further');
          }
        };
        return lm.withSequence(size, hooks.signal, async (seq) => {
          const chat = new nlc.LlamaChat({ contextSequence: seq, chatWrapper: lm.chatWrapper, autoDisposeSequence: false });
          const m = meter(seq, hooks);
          try {
            const common = {
              ...sampling(plan),
              // A chat reply never runs past one window of tokens (LlamaChat would otherwise shift the history out).
              maxTokens: plan.maxTokens ?? size,
              signal: hooks.signal,
              stopOnAbortSignal: false,
              onToken: m.onToken,
              onTextChunk: m.onTextChunk,
              ...(thinks ? { onResponseChunk, ...(call.think === false ? { budgets: { thoughtTokens: 0 } } : {}) } : {}),
            };
            // With functions, LlamaChat stops when the model has written its calls and returns them unexecuted
            // (stopReason "functionCalls"): the client runs its tools and sends the results back as tool messages.
            const res = functions
              ? await chat.generateResponse(history, { ...common, functions }).catch((e: unknown) => {
                  throw toolsError(e, size);
                })
              : await chat.generateResponse(history, { ...common, ...(grammar ? { grammar } : {}) });
            const toolCalls: ToolCall[] = (res.functionCalls ?? []).map((fc, index) => ({
              type: 'function',
              function: { index, name: fc.functionName, arguments: isRecord(fc.params) ? fc.params : fc.params === undefined ? {} : { value: fc.params } },
            }));
            return {
              model: call.model,
              message: {
                role: 'assistant' as const,
                content: res.response,
                ...(thinking ? { thinking } : {}),
                ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
              },
              done_reason: doneReason(res.metadata.stopReason),
              ...m.finish(loadMs, callStarted),
            };
          } finally {
            chat.dispose({ disposeSequence: false });
          }
        });
      });
    },

    embed(call: EmbedCall, hooks: CallHooks): Promise<InferenceOutput> {
      const callStarted = performance.now();
      return withModel(call, hooks, async (lm, entry, loadMs) => {
        const plan = planGeneration(call.options, await modelDefaults(entry));
        const size = contextSizeFor(lm, plan);
        const inputs = typeof call.input === 'string' ? [call.input] : call.input;
        return lm.withEmbeddingContext(size, hooks.signal, async (ctx) => {
          const started = performance.now();
          const embeddings: number[][] = [];
          let promptTokens = 0;
          for (const [i, text] of inputs.entries()) {
            hooks.signal.throwIfAborted(); // llama.cpp embeds one input at a time; stop between inputs
            const length = ctx.calculateInputLength(text);
            let input: string | Token[] = text;
            if (length > size) {
              // Ollama's truncate (default true): embed the input's first tokens that fit; false: refuse.
              if (call.truncate === false) {
                throw new HydraError(ErrorCode.BadRequest, `input ${i} is ${length} tokens but the context holds ${size}: shorten it, raise num_ctx, or allow truncate`);
              }
              const tokens = lm.model.tokenize(text);
              input = tokens.slice(0, Math.max(1, size - Math.max(0, length - tokens.length)));
            }
            promptTokens += Math.min(length, size);
            embeddings.push(unitLength((await ctx.getEmbeddingFor(input)).vector));
          }
          const end = performance.now();
          return {
            model: call.model,
            embeddings,
            prompt_tokens: promptTokens,
            completion_tokens: 0,
            total_duration_ms: end - callStarted,
            load_duration_ms: loadMs,
            prompt_eval_duration_ms: end - started,
            eval_duration_ms: 0,
          };
        });
      });
    },

    /** Unload now (or when the requests holding it finish); a model that is not loaded is already unloaded. */
    async unload(model: string, hooks: AdminHooks): Promise<void> {
      hooks.signal.throwIfAborted();
      const catalog = await scanCatalog(sources);
      const entry = findModel(catalog, model);
      if (!entry) throw new HydraError(ErrorCode.ModelNotFound, `model ${model} is not on this node: nothing to unload`, { details: { model } });
      await pool.unloadPath(entry.path);
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await pool.close();
      offLog();
      log.info({}, 'llamacpp backend closed');
    },
  };
}

const noImages = (): HydraError =>
  new HydraError(ErrorCode.BadRequest, 'images: llama.cpp nodes take no images (node-llama-cpp has no image input); send this job to an Ollama node with a vision model');

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Ollama/OpenAI tools → node-llama-cpp functions (name → description and JSON-schema params); undefined for none. */
function toFunctions(tools: ChatCall['tools']): ChatModelFunctions | undefined {
  if (!tools?.length) return undefined;
  return Object.fromEntries(
    tools.map((t) => [
      t.function.name,
      {
        ...(t.function.description ? { description: t.function.description } : {}),
        // node-llama-cpp takes a subset of JSON schema (its GBNF converter); what it cannot take fails as bad_request.
        ...(t.function.parameters ? { params: t.function.parameters as NonNullable<ChatModelFunctions[string]['params']> } : {}),
      },
    ]),
  );
}

/** A failure of a chat with functions: the usual ones, or the tool definitions not fitting the context / the grammar. */
function toolsError(e: unknown, size: number): unknown {
  const msg = e instanceof Error ? e.message : String(e);
  if (/did not return a history that fits the context size/.test(msg)) {
    return new HydraError(ErrorCode.BadRequest, `the messages and the tool definitions do not fit the context of ${size} tokens: raise num_ctx, or send fewer or shorter tools`, { cause: e });
  }
  if (/grammar|json schema|gbnf/i.test(msg)) {
    return new HydraError(ErrorCode.BadRequest, `tools: a tool's parameters schema cannot be used by llama.cpp (${msg}); simplify it`, { cause: e });
  }
  return e;
}

/**
 * Ollama chat messages → node-llama-cpp history. An assistant's tool calls become function calls of its model turn,
 * and the tool results that follow fill in their results (matched by tool_name, else in order), so the model sees
 * the exchange in its own template's function syntax. A tool result with no call before it is shown as a user
 * turn. An assistant's `thinking` is not replayed. A trailing model turn is continued (prefill, or the answer after
 * tool results).
 */
function toChatHistory(messages: ChatCall['messages']): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [];
  let open: ChatModelFunctionCall[] = [];
  for (const m of messages) {
    if (m.role === 'tool') {
      const i = open.findIndex((c) => c.name === m.tool_name);
      const call = open.splice(i >= 0 ? i : 0, 1)[0];
      if (call) call.result = m.content;
      else history.push({ type: 'user', text: m.content });
      continue;
    }
    for (const c of open) c.result ??= '';
    open = [];
    if (m.role === 'system') history.push({ type: 'system', text: m.content });
    else if (m.role === 'user') history.push({ type: 'user', text: m.content });
    else {
      open = (m.tool_calls ?? []).map((c) => ({ type: 'functionCall', name: c.function.name, params: c.function.arguments, result: undefined }));
      history.push({ type: 'model', response: [...(m.content ? [m.content] : []), ...open] });
    }
  }
  if (history.at(-1)?.type !== 'model') history.push({ type: 'model', response: [] });
  return history;
}

/** Unit length, as Ollama's /api/embed returns (cosine similarity becomes a dot product). */
function unitLength(v: readonly number[]): number[] {
  const norm = Math.hypot(...v);
  return norm > 0 ? v.map((x) => x / norm) : [...v];
}

/** Whatever a call threw → HydraError; an aborted call is always `cancelled`, whatever node-llama-cpp threw. */
function asHydraError(e: unknown, signal: AbortSignal): HydraError {
  if (signal.aborted) {
    return e instanceof HydraError && e.code === ErrorCode.Cancelled
      ? e
      : new HydraError(ErrorCode.Cancelled, 'the request was cancelled; llama.cpp stopped decoding', { cause: e });
  }
  if (e instanceof HydraError) return e;
  const name = e instanceof Error ? e.name : '';
  if (name === 'InsufficientMemoryError') {
    return new HydraError(ErrorCode.OutOfMemory, `not enough memory for this request (${(e as Error).message}): lower num_ctx or free memory`, {
      retryable: true,
      cause: e,
    });
  }
  if (name === 'DisposedError') {
    return new HydraError(ErrorCode.BackendUnavailable, 'the model was unloaded during the request (backend closing); retry', { retryable: true, cause: e });
  }
  return toHydraError(e);
}

/**
 * What Ollama's /api/tags shows for a file: its mtime, and a digest. A blob of an Ollama store is named by its
 * content hash, so that is used; for a file in MODELS_DIR hashing gigabytes on every probe is not an option, so the
 * digest is a sha256 over its path, size and mtime: an identity that changes when the file does, not a content hash.
 */
async function fileIdentity(path: string): Promise<{ modified_at?: string; digest?: string }> {
  try {
    const st = await stat(path);
    const blob = /sha256-([0-9a-f]{64})$/.exec(path);
    const digest = blob ? blob[1]! : createHash('sha256').update(`${path}|${st.size}|${st.mtimeMs}`).digest('hex');
    return { modified_at: st.mtime.toISOString(), digest };
  } catch {
    return {};
  }
}
