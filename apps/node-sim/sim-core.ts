// The simulated node's shared state and request lifecycle: counters, injected faults, abort accounting and the timed token loop (batching slowdown, CPU offload, time scale).
import type { ServerResponse } from 'node:http';
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { Logger } from '../../libs/logger/index.js';
import { SimHttpError, sendError, type Flavor } from './sim-http.js';
import { SimCatalog } from './sim-catalog.js';
import type { ResolvedSimOptions, SimState } from './sim-options.js';
import { SimMemory, type Lease } from './sim-memory.js';
import { BYTES_PER_GB, embeddingLengthOf, type SimModelSpec } from './sim-models.js';
import { countPromptTokens, embeddingFor } from './sim-text.js';

export const FaultsSchema = z
  .object({
    fail_next: z.number().int().min(0).optional(),
    fail_status: z.number().int().min(400).max(599).optional(),
    fail_message: z.string().min(1).optional(),
    hang_next: z.number().int().min(0).optional(),
    drop_next: z.number().int().min(0).optional(),
    drop_after_tokens: z.number().int().min(0).optional(),
  })
  .strict();
export type Faults = z.infer<typeof FaultsSchema>;

const DEFAULT_FAIL_MESSAGE = 'simulated failure';
const DEFAULT_DROP_AFTER_TOKENS = 1;
/** Prompt evaluation runs this many times faster than decoding, per token. */
const PROMPT_SPEEDUP = 10;
/** Prompt evaluation re-reads the node's load (how many requests share the GPU) at least this often, wall-clock ms. */
const PROMPT_CHUNK_MS = 20;
/** Tokens sent back to back without a timer (a high speed or time scale) yield to the event loop this often. */
const YIELD_EVERY = 64;

/** Thrown inside a request after the node cut the connection on purpose. */
class DroppedError extends Error {
  constructor() {
    super('connection dropped by an injected fault');
    this.name = 'DroppedError';
  }
}

/** One inference request in flight. `signal` aborts when the client goes away (or the node drops it). */
export interface InferenceCtx {
  res: ServerResponse;
  signal: AbortSignal;
  startedNs: bigint;
  /** The node's time scale: wall-clock durations × this = the real-time-equivalent durations answers report. */
  timeScale: number;
  /** Set by a drop fault: cut the connection once this many tokens were sent. */
  dropAfter: number | undefined;
  dropped: boolean;
}

/** Real-time-equivalent nanoseconds (wall clock × time scale). */
export interface DecodeTimes {
  promptEvalNs: number;
  evalNs: number;
}

export class SimCore {
  readonly opts: ResolvedSimOptions;
  readonly log: Logger;
  readonly memory: SimMemory;
  readonly catalog: SimCatalog;
  /** Kept by the pull and delete routes; `pulls_active` is not a counter and survives a reset. */
  readonly pulls = { pulls_active: 0, pulls_completed: 0, pulls_aborted: 0, pulls_failed: 0, deletes: 0 };
  private readonly counters = { served: 0, aborted: 0, failed: 0, dropped: 0 };
  private activeRequests = 0;
  /** Requests in prompt evaluation or decoding now: they share the GPU (all models together). */
  private decoding = 0;
  private requests: Record<string, number> = {};
  private faults = { fail_next: 0, fail_status: 500, fail_message: DEFAULT_FAIL_MESSAGE, hang_next: 0, drop_next: 0, drop_after_tokens: DEFAULT_DROP_AFTER_TOKENS };
  private nextId = 1;

  constructor(opts: ResolvedSimOptions, log: Logger, lifetime: AbortSignal) {
    this.opts = opts;
    this.log = log;
    this.catalog = new SimCatalog(opts.models, opts.pullable, opts.diskGb);
    this.memory = new SimMemory({
      totalBytes: Math.round(opts.vramGb * BYTES_PER_GB),
      ramBytes: Math.round(opts.ramGb * BYTES_PER_GB),
      parallel: opts.parallel,
      numCtx: opts.numCtx,
      kvCacheType: opts.kvCacheType,
      maxQueue: opts.maxQueue,
      loadMs: (m) => (opts.fast ? 0 : (opts.loadFixedMs + opts.loadMsPerGb * m.sizeGb) / opts.timeScale),
      timeScale: opts.timeScale,
      lifetime,
    });
  }

  /** The installed model by name (`x` matches `x:latest`), or Ollama's 404. */
  model(name: string): SimModelSpec {
    return this.catalog.get(name);
  }

  /** Single-stream decode speed of `m` fully in VRAM, tokens per second: bigger models are slower. */
  tokensPerSecond(m: SimModelSpec): number {
    return (this.opts.tokensPerSecond * 8) / Math.max(m.sizeGb, 1);
  }

  /** Real-time-equivalent nanoseconds of a wall-clock span. */
  reportNs(wallNs: number): number {
    return Math.round(wallNs * this.opts.timeScale);
  }

  countRequest(key: string): void {
    this.requests[key] = (this.requests[key] ?? 0) + 1;
  }

  newId(): number {
    return this.nextId++;
  }

  /** Sets the given fault counters (others keep their value). */
  setFaults(f: Faults): void {
    if (f.fail_next !== undefined) this.faults.fail_next = f.fail_next;
    if (f.fail_status !== undefined) this.faults.fail_status = f.fail_status;
    if (f.fail_message !== undefined) this.faults.fail_message = f.fail_message;
    if (f.hang_next !== undefined) this.faults.hang_next = f.hang_next;
    if (f.drop_next !== undefined) this.faults.drop_next = f.drop_next;
    if (f.drop_after_tokens !== undefined) this.faults.drop_after_tokens = f.drop_after_tokens;
    this.log.info({ faults: this.faults }, 'faults set');
  }

  /** Clears faults and counters and unloads idle models; requests in flight finish normally. */
  reset(): void {
    this.faults = { fail_next: 0, fail_status: 500, fail_message: DEFAULT_FAIL_MESSAGE, hang_next: 0, drop_next: 0, drop_after_tokens: DEFAULT_DROP_AFTER_TOKENS };
    this.counters.served = 0;
    this.counters.aborted = 0;
    this.counters.failed = 0;
    this.counters.dropped = 0;
    this.pulls.pulls_completed = 0;
    this.pulls.pulls_aborted = 0;
    this.pulls.pulls_failed = 0;
    this.pulls.deletes = 0;
    this.requests = {};
    this.memory.resetCounters();
    this.memory.unloadIdle();
    this.log.info('state reset');
  }

  state(): SimState {
    const loaded = this.memory.loaded();
    return {
      simulated: true,
      vram_total_bytes: this.memory.totalBytes,
      vram_used_bytes: this.memory.usedBytes(),
      ram_total_bytes: this.memory.ramBytes,
      ram_used_bytes: this.memory.usedRamBytes(),
      loaded,
      active_requests: this.activeRequests,
      queued_for_load: this.memory.queuedForLoad(),
      decoding: this.decoding,
      ...this.counters,
      ...this.memory.counters,
      faults_pending: { fail_next: this.faults.fail_next, hang_next: this.faults.hang_next, drop_next: this.faults.drop_next },
      ...this.pulls,
      disk_used_bytes: this.catalog.usedDiskBytes(),
      disk_total_bytes: this.catalog.diskBytes ?? null,
      requests: { ...this.requests },
    };
  }

  /** Starts tracking an inference request: the client going away before the answer is complete counts as aborted. */
  open(res: ServerResponse): InferenceCtx {
    const ac = new AbortController();
    const rc: InferenceCtx = { res, signal: ac.signal, startedNs: process.hrtime.bigint(), timeScale: this.opts.timeScale, dropAfter: undefined, dropped: false };
    const gone = (): void => {
      if (res.writableFinished || ac.signal.aborted) return;
      if (!rc.dropped) this.counters.aborted++;
      ac.abort(new Error('the client closed the connection'));
    };
    res.on('close', gone);
    // The client may have left while its body was being read, before this listener existed.
    if (!res.socket || res.socket.destroyed) gone();
    return rc;
  }

  /**
   * Runs one inference request: applies the next pending fault (fail, then hang, then drop), runs `work`, answers
   * errors in the route's shape and keeps the counters.
   */
  async run(rc: InferenceCtx, flavor: Flavor, work: () => Promise<void>): Promise<void> {
    this.activeRequests++;
    try {
      if (this.faults.fail_next > 0) {
        this.faults.fail_next--;
        throw new SimHttpError(this.faults.fail_status, this.faults.fail_message);
      }
      if (this.faults.hang_next > 0) {
        this.faults.hang_next--;
        this.log.info('hanging a request on an injected fault');
        await new Promise<void>((resolve) => (rc.signal.aborted ? resolve() : rc.signal.addEventListener('abort', () => resolve(), { once: true })));
        return;
      }
      if (this.faults.drop_next > 0) {
        this.faults.drop_next--;
        rc.dropAfter = this.faults.drop_after_tokens;
      }
      await work();
      if (!rc.signal.aborted) this.counters.served++;
    } catch (e) {
      if (e instanceof DroppedError) {
        this.counters.dropped++;
        return;
      }
      if (rc.signal.aborted || rc.res.destroyed) return;
      this.counters.failed++;
      if (e instanceof SimHttpError) {
        this.log.info({ status: e.status, err: e.message }, 'request failed');
        sendError(rc.res, flavor, e.status, e.message);
        return;
      }
      this.log.error({ err: e }, 'simulated node internal error');
      sendError(rc.res, flavor, 500, `simulated node internal error: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      this.activeRequests--;
    }
  }

  /**
   * Cuts the connection if a drop fault asked for it: once `sent` tokens are out, and in any case before the final
   * message (`end`), so a pending drop always takes effect.
   */
  dropIfDue(rc: InferenceCtx, sent: number, end = false): void {
    if (rc.dropAfter === undefined || (!end && sent < rc.dropAfter)) return;
    rc.dropped = true;
    this.log.info({ sent }, 'dropping a connection on an injected fault');
    const socket = rc.res.socket;
    // destroySoon flushes what was written, then closes: the client sees exactly `sent` tokens and no final message.
    if (socket) socket.destroySoon();
    else rc.res.destroy();
    throw new DroppedError();
  }

  /**
   * Embeds every input (vectors cut to `dimensions` when smaller than the model's width, then renormalised) after a
   * simulated prompt evaluation; a pending drop fault cuts the connection instead of answering.
   */
  async embed(rc: InferenceCtx, m: SimModelSpec, inputs: string[], dimensions: number | undefined, keepAliveMs: number | null, numCtx: number | undefined): Promise<{ embeddings: number[][]; loadNs: number; promptTokens: number }> {
    const lease = await this.memory.acquire(m, numCtx, rc.signal);
    try {
      const promptTokens = countPromptTokens(inputs);
      await this.decode(rc, lease, [], promptTokens, () => undefined);
      const width = Math.min(dimensions ?? Infinity, embeddingLengthOf(m));
      const embeddings = inputs.map((text) => renormalise(embeddingFor(text, embeddingLengthOf(m)).slice(0, width)));
      return { embeddings, loadNs: this.reportNs(lease.loadNs), promptTokens };
    } finally {
      lease.release(keepAliveMs);
    }
  }

  /**
   * The timed token loop: prompt evaluation (a tenth of a token interval per prompt token), then one piece per token
   * interval (each piece is one token). The interval is the model's single-stream one, lengthened for the part that
   * runs on the CPU, × n^(1 − batchExponent) for the n requests evaluating or decoding on the node at that moment
   * (re-read every token), ÷ the time scale. Stops when the client goes away; `fast` removes every delay.
   */
  async decode<P>(rc: InferenceCtx, lease: Lease, pieces: readonly P[], promptTokens: number, onPiece: (piece: P) => Promise<void> | void): Promise<DecodeTimes> {
    const fast = this.opts.fast;
    this.decoding++;
    try {
      // Single-stream ms per token: the VRAM part at GPU speed, the rest at cpuSpeedRatio of it (decoding is memory-bound).
      const cpuShare = 1 - lease.gpuFraction;
      const tokenMs = (1000 / this.tokensPerSecond(lease.spec)) * (lease.gpuFraction + cpuShare / this.opts.cpuSpeedRatio);
      const promptStart = process.hrtime.bigint();
      if (!fast) await this.evaluatePrompt(rc, (promptTokens * tokenMs) / PROMPT_SPEEDUP);
      const evalStart = process.hrtime.bigint();
      let deadline = performance.now();
      let unslept = 0;
      for (const [i, piece] of pieces.entries()) {
        this.dropIfDue(rc, i);
        if (!fast) {
          deadline += tokenMs * this.wallFactor();
          const wait = deadline - performance.now();
          if (wait > 0) {
            await sleep(wait, undefined, { signal: rc.signal });
            unslept = 0;
          } else if (++unslept % YIELD_EVERY === 0) {
            await yieldToLoop(undefined, { signal: rc.signal });
          }
        } else if (i % YIELD_EVERY === YIELD_EVERY - 1) {
          await yieldToLoop(undefined, { signal: rc.signal });
        }
        rc.signal.throwIfAborted();
        await onPiece(piece);
      }
      this.dropIfDue(rc, pieces.length, true);
      const end = process.hrtime.bigint();
      return { promptEvalNs: this.reportNs(Number(evalStart - promptStart)), evalNs: this.reportNs(Number(end - evalStart)) };
    } finally {
      this.decoding--;
    }
  }

  /** Wall-clock ms per single-stream ms now: the batching slowdown n^(1 − e) for the requests sharing the GPU, ÷ the time scale. */
  private wallFactor(): number {
    return Math.max(1, this.decoding) ** (1 - this.opts.batchExponent) / this.opts.timeScale;
  }

  /** Spends `singleStreamMs` of prompt evaluation in chunks of at most PROMPT_CHUNK_MS, each at the node's load then. */
  private async evaluatePrompt(rc: InferenceCtx, singleStreamMs: number): Promise<void> {
    let left = singleStreamMs;
    let deadline = performance.now();
    while (left > 0) {
      const factor = this.wallFactor();
      const step = Math.min(left, PROMPT_CHUNK_MS / factor);
      left -= step;
      deadline += step * factor;
      const wait = deadline - performance.now();
      if (wait > 0) await sleep(wait, undefined, { signal: rc.signal });
    }
  }
}

function renormalise(v: number[]): number[] {
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0)) || 1;
  return v.map((x) => x / norm);
}

/** Real-time-equivalent nanoseconds since the request started (wall clock × time scale). */
export const elapsedNs = (rc: InferenceCtx): number => Math.round(Number(process.hrtime.bigint() - rc.startedNs) * rc.timeScale);
