// Per-node circuit breaker: after N backend failures in a window the node stops pulling for a cooldown,
// then lets one probe job through (half-open) before taking work again. Time is passed in, never read.

export type BreakerState = 'closed' | 'open' | 'half_open';

export interface BreakerOptions {
  failures: number;
  windowMs: number;
  cooldownMs: number;
}

export interface BreakerView {
  state: BreakerState;
  recent_failures: number;
  open_until: number | null;
}

export class CircuitBreaker {
  private failures: number[] = [];
  private state: BreakerState = 'closed';
  private openUntil = 0;
  private probing = false;

  constructor(private readonly o: BreakerOptions) {}

  /** Whether a new job may start now. In half-open, only one probe job at a time. */
  allow(now: number): boolean {
    if (this.state === 'open' && now >= this.openUntil) {
      this.state = 'half_open';
      this.probing = false;
    }
    if (this.state === 'closed') return true;
    if (this.state === 'half_open' && !this.probing) return true;
    return false;
  }

  /** A job started (after `allow`). */
  started(): void {
    if (this.state === 'half_open') this.probing = true;
  }

  success(): void {
    if (this.state !== 'closed') {
      this.state = 'closed';
      this.failures = [];
    }
    this.probing = false;
  }

  /** A failure the backend is to blame for (not bad input, not a cancel). Returns true when it opened the breaker. */
  failure(now: number): boolean {
    this.probing = false;
    if (this.state === 'half_open') return this.open(now);
    this.failures = this.failures.filter((t) => now - t < this.o.windowMs);
    this.failures.push(now);
    if (this.state === 'closed' && this.failures.length >= this.o.failures) return this.open(now);
    return false;
  }

  /** A job that did not finish either way (cancelled, handed back): the probe slot is free again. */
  neutral(): void {
    this.probing = false;
  }

  private open(now: number): true {
    this.state = 'open';
    this.openUntil = now + this.o.cooldownMs;
    return true;
  }

  view(now: number): BreakerView {
    this.allow(now); // advance open → half_open when the cooldown is over
    return {
      state: this.state,
      recent_failures: this.failures.filter((t) => now - t < this.o.windowMs).length,
      open_until: this.state === 'open' ? this.openUntil : null,
    };
  }
}
