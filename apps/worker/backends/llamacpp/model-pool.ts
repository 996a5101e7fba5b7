// Loaded models: loaded lazily, kept by LRU up to a count, each with one context of N sequences and an embedding context.
import { stat } from 'node:fs/promises';
import type { ChatWrapper, Llama, LlamaContext, LlamaContextSequence, LlamaEmbeddingContext, LlamaModel } from 'node-llama-cpp';
import { ErrorCode, HydraError } from '../../../../libs/core/index.js';
import type { Logger } from '../../../../libs/logger/index.js';
import type { CatalogEntry } from './catalog.js';
import { captureLoad, LoadFailure, type NodeLlamaCpp } from './runtime.js';

export interface PoolOptions {
  nlc: NodeLlamaCpp;
  llama: Llama;
  threads: number;
  gpu: false | 'auto';
  /** Sequences per model context = requests one model decodes at once (batched by node-llama-cpp). */
  parallel: number;
  /** Models kept loaded; the least recently used idle one is unloaded to make room. */
  maxLoaded: number;
  logger: Logger;
}

/**
 * Concurrency, per loaded model: `parallel` requests at once, one per sequence of a single context (a per-model
 * mutex when parallel = 1, the default: on CPU, parallel decoding splits the same cores). The context is sized by
 * the request's num_ctx; a request for another size waits until the model is idle and the context is rebuilt, as
 * Ollama reloads a runner. Embeddings use their own context, one request at a time.
 */
export class LoadedModel {
  lastUsed = Date.now();
  /** Requests holding this model (generation and embedding). */
  active = 0;
  disposed = false;
  /** An unload was asked for while requests held the model: the last one to finish unloads it. */
  unloadWhenIdle = false;
  private gen?: { context: LlamaContext; size: number; free: LlamaContextSequence[]; busy: number };
  private embedding?: { context: LlamaEmbeddingContext; size: number };
  private wrapper?: ChatWrapper;
  private readonly slots: Gate;
  private readonly embedSlot = new Gate(1);
  private readonly ctxLock = new Mutex();
  private readonly idle = new Waiters();

  constructor(
    readonly name: string,
    readonly path: string,
    readonly model: LlamaModel,
    private readonly opts: PoolOptions,
  ) {
    this.slots = new Gate(opts.parallel);
  }

  /** The chat wrapper resolved from the model's own template (Jinja in `tokenizer.chat_template`). */
  get chatWrapper(): ChatWrapper {
    this.wrapper ??= this.opts.nlc.resolveChatWrapper(this.model);
    return this.wrapper;
  }

  /** Run `fn` on a sequence of a context of `size` tokens. Waiting for a sequence ends when `signal` aborts. */
  async withSequence<T>(size: number, signal: AbortSignal, fn: (seq: LlamaContextSequence) => Promise<T>): Promise<T> {
    await this.slots.enter(signal);
    let seq: LlamaContextSequence | undefined;
    try {
      seq = await this.takeSequence(size, signal);
      return await fn(seq);
    } finally {
      if (seq) this.returnSequence(seq);
      this.slots.leave();
    }
  }

  /** Run `fn` on the model's embedding context, sized `size`. */
  async withEmbeddingContext<T>(size: number, signal: AbortSignal, fn: (ctx: LlamaEmbeddingContext) => Promise<T>): Promise<T> {
    await this.embedSlot.enter(signal);
    try {
      if (this.embedding?.size !== size) {
        const old = this.embedding;
        this.embedding = undefined;
        await old?.context.dispose();
        const context = await this.model.createEmbeddingContext({ contextSize: size, threads: this.opts.threads });
        this.embedding = { context, size };
      }
      return await fn(this.embedding.context);
    } finally {
      this.embedSlot.leave();
    }
  }

  /** Model plus generation context, as node-llama-cpp accounts them (the embedding context is not reported). */
  memory(): { ram: number; vram: number } {
    const m = this.model.memoryUsage;
    const c = this.gen?.context.memoryUsage ?? { ram: 0, vram: 0 };
    return { ram: m.ram + c.ram, vram: m.vram + c.vram };
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    await this.embedding?.context.dispose();
    await this.gen?.context.dispose();
    await this.model.dispose();
  }

  private async takeSequence(size: number, signal: AbortSignal): Promise<LlamaContextSequence> {
    for (;;) {
      const unlock = await this.ctxLock.lock();
      let wait: Promise<void> | undefined;
      try {
        const gen = this.gen;
        if (gen && gen.size === size) {
          const seq = gen.free.pop();
          // The gate admits at most `parallel` callers, one per sequence.
          if (!seq) throw new HydraError(ErrorCode.Internal, 'no free llama.cpp sequence behind the gate', { retryable: true });
          gen.busy++;
          return seq;
        }
        if (!gen || gen.busy === 0) {
          this.gen = undefined;
          await gen?.context.dispose();
          const context = await this.model.createContext({ contextSize: size, sequences: this.opts.parallel, threads: this.opts.threads });
          this.gen = { context, size, free: Array.from({ length: this.opts.parallel }, () => context.getSequence()), busy: 0 };
          continue;
        }
        wait = this.idle.wait(signal); // registered before unlocking, so the wake-up cannot be missed
      } finally {
        unlock();
      }
      await wait;
    }
  }

  private returnSequence(seq: LlamaContextSequence): void {
    const gen = this.gen;
    if (!gen || seq.context !== gen.context) return;
    gen.free.push(seq);
    gen.busy--;
    if (gen.busy === 0) this.idle.notifyAll();
  }
}

export class ModelPool {
  /** Keyed by file path: two names for one blob (Ollama tags) share one load. */
  private readonly loaded = new Map<string, LoadedModel>();
  private readonly loading = new Map<string, Promise<LoadedModel>>();
  private closed = false;

  constructor(private readonly opts: PoolOptions) {}

  /** The loaded model for `entry`, loading it if needed; the caller must `release` it. `loadMs`: time spent waiting for a load. */
  async acquire(entry: CatalogEntry, signal: AbortSignal): Promise<{ lm: LoadedModel; loadMs: number }> {
    const started = performance.now();
    let waited = false;
    for (;;) {
      if (this.closed) throw new HydraError(ErrorCode.BackendUnavailable, 'the llamacpp backend is closed', { retryable: true });
      const lm = this.loaded.get(entry.path);
      if (lm && !lm.disposed) {
        lm.active++;
        lm.lastUsed = Date.now();
        return { lm, loadMs: waited ? performance.now() - started : 0 };
      }
      let pending = this.loading.get(entry.path);
      if (!pending) {
        pending = this.load(entry).finally(() => this.loading.delete(entry.path));
        this.loading.set(entry.path, pending);
      }
      waited = true;
      // The load goes on for others if this caller gives up.
      await abortable(pending, signal);
    }
  }

  /** Done with the model. `unload`: Ollama's keep_alive 0, unload it once nobody uses it. */
  async release(lm: LoadedModel, opts: { unload?: boolean } = {}): Promise<void> {
    lm.active--;
    lm.lastUsed = Date.now();
    if ((opts.unload || lm.unloadWhenIdle) && lm.active === 0 && this.loaded.get(lm.path) === lm) await this.unload(lm, opts.unload ? 'keep_alive 0' : 'unload asked');
    await this.evictIdle(this.opts.maxLoaded);
  }

  /**
   * Unload the model loaded from `path` now, or, while requests hold it, when the last one finishes (they are not
   * cut short). Returns whether it was loaded.
   */
  async unloadPath(path: string): Promise<boolean> {
    const lm = this.loaded.get(path);
    if (!lm) return false;
    if (lm.active > 0) lm.unloadWhenIdle = true;
    else await this.unload(lm, 'unload asked');
    return true;
  }

  list(): LoadedModel[] {
    return [...this.loaded.values()];
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.loading.values()]);
    await Promise.allSettled([...this.loaded.values()].map((lm) => this.unload(lm, 'backend closed')));
  }

  private async load(entry: CatalogEntry): Promise<LoadedModel> {
    const { llama, gpu, logger } = this.opts;
    try {
      await stat(entry.path);
    } catch {
      throw new HydraError(ErrorCode.ModelNotFound, `model ${entry.name}: its file ${entry.path} is gone; restore it or choose another model`);
    }
    await this.evictIdle(this.opts.maxLoaded - 1); // make room before allocating
    const started = performance.now();
    let model: LlamaModel;
    try {
      model = await captureLoad(() => llama.loadModel({ modelPath: entry.path, ...(gpu === false ? { gpuLayers: 0 } : {}) }));
    } catch (e) {
      throw this.loadError(entry, e);
    }
    const lm = new LoadedModel(entry.name, entry.path, model, this.opts);
    if (this.closed) {
      await lm.dispose();
      throw new HydraError(ErrorCode.BackendUnavailable, 'the llamacpp backend closed during a model load', { retryable: true });
    }
    this.loaded.set(entry.path, lm);
    logger.info({ model: entry.name, path: entry.path, ms: Math.round(performance.now() - started), bytes: model.size }, 'model loaded');
    await this.evictIdle(this.opts.maxLoaded);
    return lm;
  }

  private loadError(entry: CatalogEntry, e: unknown): HydraError {
    const original = e instanceof LoadFailure ? e.original : e;
    if (original instanceof this.opts.nlc.InsufficientMemoryError) {
      return new HydraError(
        ErrorCode.OutOfMemory,
        `not enough memory to load model ${entry.name} (${original.message}): free memory, lower num_ctx, or use a smaller quantization`,
        { retryable: true, cause: original },
      );
    }
    const reason = e instanceof LoadFailure ? e.reason : e instanceof Error ? e.message : String(e);
    this.opts.logger.warn({ model: entry.name, path: entry.path, reason }, 'model load failed');
    return new HydraError(
      ErrorCode.BadModelFile,
      `llama.cpp cannot load model ${entry.name} from ${entry.path}: ${reason}. The file is damaged or not a model this llama.cpp supports; re-download or replace it`,
      { retryable: false, cause: original, details: { path: entry.path, reason } },
    );
  }

  /** Unload idle models, least recently used first, until at most `limit` remain (busy ones are kept). */
  private async evictIdle(limit: number): Promise<void> {
    while (this.loaded.size > limit) {
      const idle = [...this.loaded.values()].filter((m) => m.active === 0).sort((a, b) => a.lastUsed - b.lastUsed)[0];
      if (!idle) return;
      await this.unload(idle, 'least recently used');
    }
  }

  private async unload(lm: LoadedModel, why: string): Promise<void> {
    if (this.loaded.get(lm.path) === lm) this.loaded.delete(lm.path);
    await lm.dispose();
    this.opts.logger.info({ model: lm.name, why }, 'model unloaded');
  }
}

/** FIFO counting semaphore whose waiting ends when a signal aborts. */
class Gate {
  private readonly queue: Array<() => void> = [];
  constructor(private free: number) {}

  async enter(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    if (this.free > 0 && this.queue.length === 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const admit = () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        const i = this.queue.indexOf(admit);
        if (i >= 0) this.queue.splice(i, 1);
        reject(signal.reason);
      };
      this.queue.push(admit);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  leave(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.free++;
  }
}

/** Short critical sections (context rebuilds); not abortable. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  async lock(): Promise<() => void> {
    let release: () => void = () => {};
    const next = new Promise<void>((r) => (release = r));
    const prev = this.tail;
    this.tail = prev.then(() => next);
    await prev;
    return release;
  }
}

/** Wake-all notification whose waiting ends when a signal aborts. */
class Waiters {
  private readonly waiting = new Set<() => void>();
  wait(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const wake = () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        this.waiting.delete(wake);
        reject(signal.reason);
      };
      if (signal.aborted) return reject(signal.reason);
      this.waiting.add(wake);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
  notifyAll(): void {
    const all = [...this.waiting];
    this.waiting.clear();
    for (const w of all) w();
  }
}

function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
