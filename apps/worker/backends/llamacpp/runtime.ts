// node-llama-cpp on demand (it is an optional dependency), one shared Llama per process, and llama.cpp's log lines around loads.
import os from 'node:os';
import type { Llama } from 'node-llama-cpp';
import { ErrorCode, HydraError } from '../../../../libs/core/index.js';

export type NodeLlamaCpp = typeof import('node-llama-cpp');
export type ImportNodeLlamaCpp = () => Promise<NodeLlamaCpp>;

const importNodeLlamaCpp: ImportNodeLlamaCpp = () => import('node-llama-cpp');

/**
 * Decode threads when none are configured: one core is left to Node (event loop, Redis, token streaming) and at
 * most 4 are used. llama.cpp's threads spin-wait on each other every token, so one more thread than free cores
 * stalls every step on a descheduled thread: on 2 cores, 4 threads decoded 300-500× slower than 1. Past ~4
 * threads CPU decoding is bound by memory bandwidth and gains little.
 */
export function defaultThreads(cpus: number = os.availableParallelism()): number {
  return Math.max(1, Math.min(4, cpus - 1));
}

/** Import node-llama-cpp, turning "not installed" into an error that says what to do. */
export async function loadNodeLlamaCpp(importer: ImportNodeLlamaCpp = importNodeLlamaCpp): Promise<NodeLlamaCpp> {
  try {
    return await importer();
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    const missing = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
    const why = e instanceof Error ? e.message : String(e);
    throw new HydraError(
      ErrorCode.BackendUnavailable,
      missing
        ? 'BACKEND=llamacpp needs node-llama-cpp, which is not installed: run `npm install node-llama-cpp`, or choose another BACKEND (ollama, openai)'
        : `node-llama-cpp is installed but failed to load (${why}): reinstall it with \`npm install node-llama-cpp\`, or choose another BACKEND (ollama, openai)`,
      { retryable: false, cause: e },
    );
  }
}

export interface LlamaLogLine {
  level: string;
  message: string;
}

const listeners = new Set<(line: LlamaLogLine) => void>();
let shared: Promise<Llama> | undefined;

/** Receive llama.cpp's warnings and errors (all backends in the process share them). Returns the unsubscribe. */
export function onLlamaLog(listener: (line: LlamaLogLine) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/**
 * The process's one Llama (getLlama costs ~0.5-1 s and holds the backend): CPU unless `gpu: 'auto'`, never
 * compiles llama.cpp at runtime. Options of the first caller win, except that `maxThreads` only ever grows.
 */
export async function sharedLlama(nlc: NodeLlamaCpp, opts: { gpu: false | 'auto'; threads: number }): Promise<Llama> {
  if (!shared) {
    const created = nlc.getLlama({
      gpu: opts.gpu,
      build: 'never',
      maxThreads: opts.threads,
      logLevel: nlc.LlamaLogLevel.warn,
      logger: (level, message) => {
        const line = { level: String(level), message: message.trim() };
        for (const l of listeners) l(line);
      },
    });
    shared = created;
    created.catch(() => {
      if (shared === created) shared = undefined;
    });
  }
  let llama: Llama;
  try {
    llama = await shared;
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new HydraError(
      ErrorCode.BackendUnavailable,
      `node-llama-cpp found no usable llama.cpp binary for this machine (${why}): reinstall node-llama-cpp so its prebuilt binaries are present, or choose another BACKEND (ollama, openai)`,
      { retryable: false, cause: e },
    );
  }
  if (llama.disposed) {
    shared = undefined;
    return sharedLlama(nlc, opts);
  }
  if (llama.maxThreads !== 0 && llama.maxThreads < opts.threads) llama.maxThreads = opts.threads;
  return llama;
}

/** A load that failed, with the llama.cpp log lines that explain it. */
export class LoadFailure extends Error {
  constructor(
    readonly original: unknown,
    readonly lines: LlamaLogLine[],
  ) {
    super(original instanceof Error ? original.message : String(original));
    this.name = 'LoadFailure';
  }

  /** llama.cpp's own reason, e.g. "check_tensor_dims: tensor 'blk.0.attn_q.weight' has wrong shape; ...". */
  get reason(): string {
    const reasons = this.lines
      .filter((l) => l.level === 'error' || l.level === 'fatal')
      .map((l) => l.message.replace(/^.*error loading model: /, '').replace(/\s+/g, ' ').trim())
      .filter((m) => m && !/^llama_model_load_from_file_impl: failed to load model$/.test(m));
    const unique = [...new Set(reasons)];
    return unique.length ? unique.join('; ') : this.message;
  }
}

let loadChain: Promise<unknown> = Promise.resolve();
/** llama.cpp delivers its log lines asynchronously, after the load promise has already rejected. */
const LOG_SETTLE_MS = 1500;
const FINAL_LOAD_LINE = /failed to load model\s*$/;

/**
 * Run `load` with llama.cpp's log captured. Loads run one at a time per process, so the lines belong to this
 * load. On failure, waits (bounded) for llama.cpp's closing "failed to load model" line, then throws LoadFailure.
 */
export function captureLoad<T>(load: () => Promise<T>): Promise<T> {
  const run = async (): Promise<T> => {
    const lines: LlamaLogLine[] = [];
    let sawFinal: () => void = () => {};
    const final = new Promise<void>((resolve) => (sawFinal = resolve));
    const off = onLlamaLog((line) => {
      lines.push(line);
      if (FINAL_LOAD_LINE.test(line.message)) sawFinal();
    });
    try {
      return await load();
    } catch (e) {
      // Only a failure inside llama.cpp ("Failed to load model") has log lines still on their way.
      if (e instanceof Error && /failed to load model/i.test(e.message)) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([final, new Promise<void>((resolve) => (timer = setTimeout(resolve, LOG_SETTLE_MS)))]);
        clearTimeout(timer);
      }
      throw new LoadFailure(e, lines);
    } finally {
      off();
    }
  };
  const result = loadChain.then(run, run);
  loadChain = result.catch(() => undefined);
  return result;
}
