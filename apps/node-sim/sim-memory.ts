// The simulated node's VRAM: loaded models, load delays, LRU eviction of idle models, keep-alive expiry and per-model request slots (FIFO).
import { setTimeout as sleep } from 'node:timers/promises';
import { SimHttpError } from './sim-http.js';
import { modelBytes, modelDigest, type SimModelSpec } from './sim-models.js';

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

interface Resident {
  spec: SimModelSpec;
  bytes: number;
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

export interface LoadedModelState {
  name: string;
  size_bytes: number;
  digest: string;
  loading: boolean;
  active: number;
  waiting: number;
  expires_at: string | null;
}

/** A request's hold on one slot of a loaded model. */
export interface Lease {
  /** Nanoseconds this request waited for the model to load (0 when it was already loaded). */
  loadNs: number;
  /** Gives the slot back; `keepAliveMs` 0 unloads the model once nobody uses it, null keeps it loaded for good. */
  release(keepAliveMs: number | null): void;
}

export interface SimMemoryOptions {
  totalBytes: number;
  /** Concurrent requests per loaded model; more wait in FIFO order. */
  parallel: number;
  loadMs: (spec: SimModelSpec) => number;
  /** Aborted when the server closes: cancels load delays. */
  lifetime: AbortSignal;
}

const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

export class SimMemory {
  readonly totalBytes: number;
  readonly counters = { loads: 0, evictions: 0, unloads: 0, oom_errors: 0 };
  private readonly residents = new Map<string, Resident>();
  private readonly opts: SimMemoryOptions;

  constructor(opts: SimMemoryOptions) {
    this.opts = opts;
    this.totalBytes = opts.totalBytes;
  }

  usedBytes(): number {
    let used = 0;
    for (const r of this.residents.values()) used += r.bytes;
    return used;
  }

  /** Loaded (and loading) models, least recently used first, after expiring idle ones whose keep-alive ran out. */
  loaded(): LoadedModelState[] {
    this.expire();
    return [...this.residents.values()]
      .sort((a, b) => a.lastUsedMs - b.lastUsedMs)
      .map((r) => ({
        name: r.spec.name,
        size_bytes: r.bytes,
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

  /** Waits for `spec` to be loaded (loading it, evicting idle models, if needed) and for a free slot. */
  async acquire(spec: SimModelSpec, signal: AbortSignal): Promise<Lease> {
    this.expire();
    const started = process.hrtime.bigint();
    const r = this.residents.get(spec.name) ?? this.startLoad(spec);
    r.pending++;
    let loadNs = 0;
    try {
      if (r.loading) {
        await raceAbort(r.loading, signal);
        loadNs = Number(process.hrtime.bigint() - started);
      }
      await this.takeSlot(r, signal);
    } finally {
      r.pending--;
    }
    let released = false;
    return {
      loadNs,
      release: (keepAliveMs) => {
        if (released) return;
        released = true;
        this.release(r, keepAliveMs);
      },
    };
  }

  /** Loads `spec` if needed and leaves it idle (Ollama's empty-prompt "load" request). */
  async preload(spec: SimModelSpec, keepAliveMs: number | null, signal: AbortSignal): Promise<void> {
    const lease = await this.acquire(spec, signal);
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
    return true;
  }

  /** Unloads every idle model (admin reset); busy models stay until their requests finish. */
  unloadIdle(): void {
    for (const name of [...this.residents.keys()]) this.unload(name);
  }

  resetCounters(): void {
    this.counters.loads = 0;
    this.counters.evictions = 0;
    this.counters.unloads = 0;
    this.counters.oom_errors = 0;
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

  /**
   * Reserves memory for `spec` and starts its load. When it does not fit, idle models are evicted least recently used
   * first — but only if evicting them all would make room; otherwise nothing is evicted and the request gets Ollama's 500.
   */
  private startLoad(spec: SimModelSpec): Resident {
    const bytes = modelBytes(spec);
    const used = this.usedBytes();
    if (used + bytes > this.totalBytes) {
      const idle = [...this.residents.values()].filter(isIdle).sort((a, b) => a.lastUsedMs - b.lastUsedMs);
      const busyBytes = used - idle.reduce((s, r) => s + r.bytes, 0);
      if (busyBytes + bytes > this.totalBytes) {
        this.counters.oom_errors++;
        throw new SimHttpError(500, `model requires more system memory (${gib(bytes)}) than is available (${gib(Math.max(0, this.totalBytes - busyBytes))})`);
      }
      let usedNow = used;
      for (const victim of idle) {
        if (usedNow + bytes <= this.totalBytes) break;
        this.residents.delete(victim.spec.name);
        usedNow -= victim.bytes;
        this.counters.evictions++;
      }
    }
    const r: Resident = { spec, bytes, loading: undefined, active: 0, pending: 0, queue: [], lastUsedMs: Date.now(), expiresAtMs: null };
    r.loading = sleep(this.opts.loadMs(spec), undefined, { signal: this.opts.lifetime }).then(
      () => {
        r.loading = undefined;
        r.lastUsedMs = Date.now();
        r.expiresAtMs = Date.now() + DEFAULT_KEEP_ALIVE_MS;
      },
      () => {
        r.loading = undefined;
      },
    );
    this.residents.set(spec.name, r);
    this.counters.loads++;
    return r;
  }

  private takeSlot(r: Resident, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    if (r.active < this.opts.parallel && r.queue.length === 0) {
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
      return;
    }
    r.expiresAtMs = keepAliveMs === null ? null : Date.now() + keepAliveMs;
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
