// Per-node circuit breaker: after N backend failures in a window the node stops pulling for a cooldown, then lets one
// probe job through (half-open) before taking work again. `CircuitBreaker` is the policy (time passed in, never read);
// `SharedBreaker` keeps that state in a store shared by every worker process of the node (Redis, libs/registry).
import { z } from 'zod';
import type { BreakerStore, VersionedState } from '../../libs/registry/index.js';

export type BreakerState = 'closed' | 'open' | 'half_open';

export interface BreakerOptions {
  failures: number;
  windowMs: number;
  cooldownMs: number;
  /** A half-open probe not settled within this (ms) is taken as lost (its process died), freeing the probe slot. */
  probeTimeoutMs?: number;
}

export interface BreakerView {
  state: BreakerState;
  recent_failures: number;
  open_until: number | null;
}

/** The whole state, as stored: failure times (ms), state, end of the cooldown (ms), the probe and when it started. */
const SnapshotSchema = z.object({
  state: z.enum(['closed', 'open', 'half_open']),
  failures: z.array(z.number()),
  openUntil: z.number(),
  probing: z.boolean(),
  probeAt: z.number(),
});
export type BreakerSnapshot = z.infer<typeof SnapshotSchema>;

const fresh = (): BreakerSnapshot => ({ state: 'closed', failures: [], openUntil: 0, probing: false, probeAt: 0 });

export class CircuitBreaker {
  private st: BreakerSnapshot = fresh();

  constructor(protected readonly o: BreakerOptions) {}

  /** Whether a new job may start now. In half-open, only one probe job at a time. */
  allow(now: number): boolean {
    const st = this.st;
    if (st.state === 'open' && now >= st.openUntil) {
      st.state = 'half_open';
      st.probing = false;
    }
    if (st.state === 'half_open' && st.probing && this.o.probeTimeoutMs !== undefined && now - st.probeAt >= this.o.probeTimeoutMs) st.probing = false;
    if (st.state === 'closed') return true;
    if (st.state === 'half_open' && !st.probing) return true;
    return false;
  }

  /** A job started (after `allow`) at `now` (ms). */
  started(now = 0): void {
    if (this.st.state === 'half_open') {
      this.st.probing = true;
      this.st.probeAt = now;
    }
  }

  success(): void {
    if (this.st.state !== 'closed') {
      this.st.state = 'closed';
      this.st.failures = [];
    }
    this.st.probing = false;
  }

  /** A failure the backend is to blame for (not bad input, not a cancel). Returns true when it opened the breaker. */
  failure(now: number): boolean {
    this.st.probing = false;
    if (this.st.state === 'half_open') return this.open(now);
    this.st.failures = this.st.failures.filter((t) => now - t < this.o.windowMs);
    this.st.failures.push(now);
    if (this.st.state === 'closed' && this.st.failures.length >= this.o.failures) return this.open(now);
    return false;
  }

  /** A job that did not finish either way (cancelled, handed back): the probe slot is free again. */
  neutral(): void {
    this.st.probing = false;
  }

  private open(now: number): true {
    this.st.state = 'open';
    this.st.openUntil = now + this.o.cooldownMs;
    return true;
  }

  view(now: number): BreakerView {
    this.allow(now); // advance open → half_open when the cooldown is over
    return {
      state: this.st.state,
      recent_failures: this.st.failures.filter((t) => now - t < this.o.windowMs).length,
      open_until: this.st.state === 'open' ? this.st.openUntil : null,
    };
  }

  snapshot(): BreakerSnapshot {
    return structuredClone(this.st);
  }

  /** Replace the state by a stored one (JSON from `snapshot`); '' or anything unreadable is a closed breaker. */
  restore(json: string): void {
    let parsed: unknown = null;
    try {
      parsed = json ? JSON.parse(json) : null;
    } catch {
      parsed = null;
    }
    const r = SnapshotSchema.safeParse(parsed);
    this.st = r.success ? r.data : fresh();
  }
}

/** How often (ms) the dispatcher re-reads the shared state at most: another process's opening shows within this. */
const SYNC_MS = 250;
/** Compare-and-set tries before an update gives up (each conflict means another process just wrote). */
const CAS_TRIES = 8;

/**
 * The node's breaker as every one of its processes sees it. This object is a mirror of the stored state: reads are
 * local (and refreshed by `sync`), each change is applied here at once and to the store by compare-and-set,
 * re-applying the same change to the stored state when another process wrote first, so no failure is lost.
 */
export class SharedBreaker extends CircuitBreaker {
  private remote: VersionedState = { version: '', json: '' };
  private syncedAt = -Infinity;
  private pending = 0;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    o: BreakerOptions,
    private readonly store: BreakerStore,
    private readonly onError: (err: Error) => void = () => undefined,
  ) {
    super(o);
  }

  /** Re-read the stored state if the mirror is older than `maxAgeMs` (and no change of ours is in flight). */
  async sync(now: number, maxAgeMs = SYNC_MS): Promise<void> {
    if (this.pending > 0 || now - this.syncedAt < maxAgeMs) return;
    this.syncedAt = now;
    const got = await this.store.read();
    if (this.pending === 0 && got.version !== this.remote.version) this.adopt(got);
  }

  /**
   * Whether this process may start a job now, after a fresh look at the shared state. In half-open it claims the
   * single probe for the whole node (atomically): the caller calls `neutral()` if it then starts no job.
   */
  async admit(now: number): Promise<{ ok: boolean; probe: boolean }> {
    // Redis unreachable: decide on the mirror (the dispatch round that follows fails and logs the outage itself).
    await this.sync(now).catch(() => undefined);
    if (!this.allow(now)) return { ok: false, probe: false };
    if (this.view(now).state !== 'half_open') return { ok: true, probe: false };
    const won = await this.update((b) => {
      if (!b.allow(now)) return false;
      b.started(now);
      return true;
    });
    return { ok: won, probe: won };
  }

  override success(): void {
    this.locally(() => super.success(), (b) => b.success());
  }

  override neutral(): void {
    this.locally(() => super.neutral(), (b) => b.neutral());
  }

  override failure(now: number): boolean {
    const opened = super.failure(now);
    void this.update((b) => b.failure(now));
    return opened;
  }

  /** Apply here, and to the store only when it changed something (a success while closed is the common, free case). */
  private locally(here: () => void, there: (b: CircuitBreaker) => void): void {
    const before = JSON.stringify(this.snapshot());
    here();
    if (JSON.stringify(this.snapshot()) !== before) void this.update((b) => (there(b), true));
  }

  /** Compare-and-set `op` onto the stored state, one update at a time; resolves to op's answer on the stored state. */
  private update<R>(op: (b: CircuitBreaker) => R): Promise<R | false> {
    this.pending++;
    const run = async (): Promise<R | false> => {
      let cur = this.remote;
      for (let i = 0; i < CAS_TRIES; i++) {
        const b = new CircuitBreaker(this.o);
        b.restore(cur.json);
        const answer = op(b);
        const res = await this.store.swap(cur.version, JSON.stringify(b.snapshot()));
        if (res.ok) {
          this.adopt(res.now);
          return answer;
        }
        cur = res.now;
      }
      this.adopt(cur);
      throw new Error(`circuit breaker state kept changing under ${CAS_TRIES} tries`);
    };
    const p = this.chain.then(run).catch((e: Error) => {
      this.onError(e);
      return false as const;
    });
    this.chain = p.finally(() => this.pending--);
    return p;
  }

  private adopt(s: VersionedState): void {
    this.remote = s;
    this.restore(s.json);
  }
}
