// The simulated node's memory: loaded models (weights + KV cache + graph), load delays, the FIFO of requests waiting for memory, LRU eviction of idle models, CPU offload, keep-alive expiry and per-model request slots (FIFO).
import { setTimeout as sleep } from 'node:timers/promises';
import { SimHttpError } from './sim-http.js';
import { modelDigest, type SimModelSpec } from './sim-models.js';
import { footprint, place, type Footprint, type KvCacheType, type Placement } from './sim-sizing.js';

/** Ollama's default keep-alive: an idle model stays loaded 5 minutes. */
export const DEFAULT_KEEP_ALIVE_MS = 5 * 60_000;

/**
 * Ollama's `keep_alive`: a number of seconds, or a duration string ("5m", "30s", "1h30m", "300ms", "0").
 * Returns milliseconds, `null` for "forever" (negative values), the default when absent. Throws a 400 when malformed.
 */
export function parseKeepAlive(v: string | number | undefined): number | null {
  if (v === undefined || v === '') return DEFAULT_KEEP_ALIVE_MS;
  if (typeof v === 'number') return v < 0 ? null : Math.round(v * 1000);
  const text = v.trim();
  if (/^-?\d+(\.\d+)?$/.test(text)) return parseKeepAlive(Number(text));
  const m = /^(-)?((?:\d+(?:\.\d+)?(?:ms|s|m|h))+)$/.exec(text);
  if (!m?.[2]) throw new SimHttpError(400, `invalid keep_alive "${v}": use seconds (300), a duration ("5m", "1h30m"), 0 to unload, or -1 to keep loaded`);
  if (m[1]) return null;
  const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  for (const [, num, unit] of m[2].matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) total += Number(num) * (unitMs[unit ?? 's'] ?? 1000);
  return Math.round(total);
}

/** Ollama's answer (503) when OLLAMA_MAX_QUEUE requests already wait to be scheduled (server/sched.go ErrMaxQueue). */
const MAX_QUEUE_MESSAGE = 'server busy, please try again.  maximum pending requests exceeded';

interface Resident {
  spec: SimModelSpec;
  placement: Placement;
  /** Pending while the load delay runs; the model's memory is held from the start of the load. */
  loading: Promise<void> | undefined;
  /** Requests holding a slot. */
  active: number;
  /** Requests waiting for the load or for a slot. */
  pending: number;
  /** FIFO of requests waiting for a slot; `grant` is called with the slot already counted in `active`. */
  queue: Array<{ grant: () => void }>;
  lastUsedMs: number;
  /** null: never expires. */
  expiresAtMs: number | null;
}

/** A request waiting for memory to load its model; `grant` hands it the resident with its `pending` already counted. */
interface LoadWaiter {
  spec: SimModelSpec;
  numCtx: number;
  grant: (r: Resident) => void;
  fail: (e: Error) => void;
}

export interface LoadedModelState {
  name: string;
  /** Weights + KV cache + graph, bytes (/api/ps `size`). */
  size_bytes: number;
  /** The part in VRAM (/api/ps `size_vram`); less than `size_bytes` when offloaded. */
  size_vram: number;
  /** Part of the model runs on the CPU from system RAM. */
  offload: boolean;
  /** Context per slot, tokens (/api/ps `context_length`). */
  num_ctx: number;
  /** Request slots (KV-cache sequences). */
  parallel: number;
  digest: string;
  loading: boolean;
  active: number;
  waiting: number;
  expires_at: string | null;
}

/** A request's hold on one slot of a loaded model. */
export interface Lease {
  spec: SimModelSpec;
  /** Wall-clock nanoseconds this request waited for memory and for the load (0 when the model was already loaded). */
  loadNs: number;
  /** Share of the model's bytes in VRAM: 1, or less when offloaded (the rest decodes at CPU speed). */
  gpuFraction: number;
  /** Gives the slot back; `keepAliveMs` 0 unloads the model once nobody uses it, null keeps it loaded for good. */
  release(keepAliveMs: number | null): void;
}

export interface SimMemoryOptions {
  totalBytes: number;
  /** System RAM for offloaded layers, bytes. */
  ramBytes: number;
  /** Slots per loaded model (embedding models get one); more requests wait in FIFO order. */
  parallel: number;
  /** Context per slot for requests that do not set num_ctx. */
  numCtx: number;
  kvCacheType: KvCacheType;
  /** Requests that may wait for a load behind the one being placed. */
  maxQueue: number;
  /** Wall-clock load delay of a model, ms (already divided by the time scale). */
  loadMs: (spec: SimModelSpec) => number;
  /** Keep-alive durations are divided by this (wall clock), like every simulated duration. */
  timeScale: number;
  /** Aborted when the server closes: cancels load delays. */
  lifetime: AbortSignal;
}

export class SimMemory {
  readonly totalBytes: number;
  readonly ramBytes: number;
  readonly counters = { loads: 0, offloaded_loads: 0, evictions: 0, unloads: 0, reloads: 0, oom_errors: 0, queue_full: 0 };
  private readonly residents = new Map<string, Resident>();
  /** Requests waiting for memory, FIFO; the head blocks the rest, as Ollama's scheduler places one request at a time. */
  private readonly loadQueue: LoadWaiter[] = [];
  private readonly opts: SimMemoryOptions;
  private pumping = false;

  constructor(opts: SimMemoryOptions) {
    this.opts = opts;
    this.totalBytes = opts.totalBytes;
    this.ramBytes = opts.ramBytes;
  }

  usedBytes(): number {
    let used = 0;
    for (const r of this.residents.values()) used += r.placement.vramBytes;
    return used;
  }

  usedRamBytes(): number {
    let used = 0;
    for (const r of this.residents.values()) used += r.placement.ramBytes;
    return used;
  }

  /** Requests waiting for memory to load their model. */
  queuedForLoad(): number {
    return this.loadQueue.length;
  }

  /** Loaded (and loading) models, least recently used first, after expiring idle ones whose keep-alive ran out. */
  loaded(): LoadedModelState[] {
    this.expire();
    return [...this.residents.values()]
      .sort((a, b) => a.lastUsedMs - b.lastUsedMs)
      .map((r) => ({
        name: r.spec.name,
        size_bytes: r.placement.fp.total,
        size_vram: r.placement.vramBytes,
        offload: r.placement.offload,
        num_ctx: r.placement.fp.numCtx,
        parallel: r.placement.fp.parallel,
        digest: modelDigest(r.spec),
        loading: r.loading !== undefined,
        active: r.active,
        waiting: r.queue.length,
        expires_at: r.expiresAtMs === null ? null : new Date(r.expiresAtMs).toISOString(),
      }));
  }

  /** The spec of a loaded (or loading) model. */
  specOf(name: string): SimModelSpec | undefined {
    return this.residents.get(name)?.spec;
  }

  /**
   * Waits for `spec` to be loaded with `numCtx` (default: the node's) and for a free slot. A model loaded with that
   * context is used at once, as Ollama does, even while other requests wait for memory; otherwise the request joins
   * the FIFO of requests waiting for memory (503 when `maxQueue` already wait behind the head).
   */
  async acquire(spec: SimModelSpec, numCtx: number | undefined, signal: AbortSignal): Promise<Lease> {
    this.expire();
    const started = process.hrtime.bigint();
    const ctx = this.footprintOf(spec, numCtx).numCtx;
    const loaded = this.residents.get(spec.name);
    let r: Resident;
    let waited = false;
    if (loaded && loaded.placement.fp.numCtx === ctx) {
      r = loaded;
      r.pending++;
    } else {
      r = await this.waitForMemory(spec, ctx, signal);
      waited = true;
    }
    let loadNs = 0;
    try {
      if (r.loading) {
        await raceAbort(r.loading, signal);
        waited = true;
      }
      if (waited) loadNs = Number(process.hrtime.bigint() - started);
      await this.takeSlot(r, signal);
    } finally {
      r.pending--;
      this.pump();
    }
    let released = false;
    return {
      spec: r.spec,
      loadNs,
      gpuFraction: r.placement.vramBytes / r.placement.fp.total,
      release: (keepAliveMs) => {
        if (released) return;
        released = true;
        this.release(r, keepAliveMs);
      },
    };
  }

  /** Loads `spec` if needed and leaves it idle (Ollama's empty-prompt "load" request). */
  async preload(spec: SimModelSpec, numCtx: number | undefined, keepAliveMs: number | null, signal: AbortSignal): Promise<void> {
    const lease = await this.acquire(spec, numCtx, signal);
    lease.release(keepAliveMs);
  }

  /** Unloads `name` if it is loaded and idle; true when it is no longer loaded. */
  unload(name: string): boolean {
    const r = this.residents.get(name);
    if (!r) return true;
    if (!isIdle(r)) {
      r.expiresAtMs = Date.now();
      return false;
    }
    this.residents.delete(name);
    this.counters.unloads++;
    this.pump();
    return true;
  }

  /** Unloads every idle model (admin reset); busy models stay until their requests finish. */
  unloadIdle(): void {
    for (const name of [...this.residents.keys()]) this.unload(name);
  }

  resetCounters(): void {
    for (const k of Object.keys(this.counters) as Array<keyof SimMemory['counters']>) this.counters[k] = 0;
  }

  private footprintOf(spec: SimModelSpec, numCtx: number | undefined): Footprint {
    return footprint(spec, numCtx ?? this.opts.numCtx, this.opts.parallel, this.opts.kvCacheType);
  }

  private expire(): void {
    const now = Date.now();
    for (const [name, r] of this.residents) {
      if (r.expiresAtMs !== null && r.expiresAtMs <= now && isIdle(r)) {
        this.residents.delete(name);
        this.counters.unloads++;
      }
    }
  }

  private waitForMemory(spec: SimModelSpec, numCtx: number, signal: AbortSignal): Promise<Resident> {
    signal.throwIfAborted();
    // Ollama's pending channel holds OLLAMA_MAX_QUEUE requests; the one its scheduler is placing has left it.
    if (this.loadQueue.length > this.opts.maxQueue) {
      this.counters.queue_full++;
      throw new SimHttpError(503, MAX_QUEUE_MESSAGE);
    }
    return new Promise<Resident>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.loadQueue.indexOf(waiter);
        if (i >= 0) this.loadQueue.splice(i, 1);
        reject(signal.reason);
        this.pump();
      };
      const waiter: LoadWaiter = {
        spec,
        numCtx,
        grant: (r) => {
          signal.removeEventListener('abort', onAbort);
          resolve(r);
        },
        fail: (e) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.loadQueue.push(waiter);
      this.pump();
    });
  }

  /**
   * Places the requests waiting for memory, in order, while the head can go: its model is loaded (or loading) with
   * its context, or it fits once idle models are evicted least recently used first. A model loaded with another
   * context is reloaded once idle. A head that can never fit (VRAM + RAM) gets Ollama's 500 and the next one is tried;
   * a head that must wait for busy models blocks those behind it. Called whenever memory or a model's use changes.
   */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (let head = this.loadQueue[0]; head; head = this.loadQueue[0]) {
        const current = this.residents.get(head.spec.name);
        if (current && current.placement.fp.numCtx === head.numCtx) {
          this.loadQueue.shift();
          current.pending++;
          head.grant(current);
          continue;
        }
        if (current) {
          if (!isIdle(current)) break;
          this.residents.delete(head.spec.name);
          this.counters.reloads++;
        }
        const placement = place(this.footprintOf(head.spec, head.numCtx), this.totalBytes, this.ramBytes);
        if ('error' in placement) {
          this.loadQueue.shift();
          this.counters.oom_errors++;
          head.fail(new SimHttpError(500, placement.error));
          continue;
        }
        if (!this.makeRoom(placement.vramBytes)) break;
        this.loadQueue.shift();
        const r = this.startLoad(head.spec, placement);
        r.pending++;
        head.grant(r);
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Evicts idle models, least recently used first, until `vramBytes` fit; evicts nothing (false) when they cannot. */
  private makeRoom(vramBytes: number): boolean {
    const free = (): number => this.totalBytes - this.usedBytes();
    if (vramBytes <= free()) return true;
    const idle = [...this.residents.values()].filter(isIdle).sort((a, b) => a.lastUsedMs - b.lastUsedMs);
    if (vramBytes > free() + idle.reduce((s, r) => s + r.placement.vramBytes, 0)) return false;
    for (const victim of idle) {
      if (vramBytes <= free()) break;
      this.residents.delete(victim.spec.name);
      this.counters.evictions++;
    }
    return true;
  }

  /** Reserves the placement's memory and starts the load delay. */
  private startLoad(spec: SimModelSpec, placement: Placement): Resident {
    const r: Resident = { spec, placement, loading: undefined, active: 0, pending: 0, queue: [], lastUsedMs: Date.now(), expiresAtMs: null };
    r.loading = sleep(this.opts.loadMs(spec), undefined, { signal: this.opts.lifetime }).then(
      () => {
        r.loading = undefined;
        r.lastUsedMs = Date.now();
        r.expiresAtMs = Date.now() + DEFAULT_KEEP_ALIVE_MS / this.opts.timeScale;
        this.pump();
      },
      () => {
        r.loading = undefined;
      },
    );
    this.residents.set(spec.name, r);
    this.counters.loads++;
    if (placement.offload) this.counters.offloaded_loads++;
    return r;
  }

  private takeSlot(r: Resident, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    if (r.active < r.placement.fp.parallel && r.queue.length === 0) {
      r.active++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        grant: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        const i = r.queue.indexOf(waiter);
        if (i >= 0) r.queue.splice(i, 1);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      r.queue.push(waiter);
    });
  }

  private release(r: Resident, keepAliveMs: number | null): void {
    r.active--;
    r.lastUsedMs = Date.now();
    const next = r.queue.shift();
    if (next) {
      r.active++;
      next.grant();
    }
    if (keepAliveMs === 0) {
      if (isIdle(r) && this.residents.get(r.spec.name) === r) {
        this.residents.delete(r.spec.name);
        this.counters.unloads++;
      } else {
        r.expiresAtMs = Date.now();
      }
    } else {
      r.expiresAtMs = keepAliveMs === null ? null : Date.now() + keepAliveMs / this.opts.timeScale;
    }
    this.pump();
  }
}

function isIdle(r: Resident): boolean {
  return r.loading === undefined && r.active === 0 && r.pending === 0 && r.queue.length === 0;
}

/** Resolves with `p`, or rejects when `signal` aborts first (`p` itself keeps running). */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
