// Job metrics gathered over the jobs a worker process ends within METRICS_FLUSH_MS and recorded together: the same
// hash fields summed, one record.lua call per model and flush, where a job's end used to carry its own (a SISMEMBER and
// ~12 HINCRBYs inside every end call: bench/README.md, "The hot path, sixth pass"). The price: the cluster's job metrics
// lag by up to the interval, and a process that dies loses what it had not flushed (a clean stop flushes).
import type { Logger } from '../logger/index.js';
import { fieldOf, type Increment, type MetricsStore } from './stored.js';

export class MetricsBatch {
  /** By model, then by hash and field: the first increment seen and the sum of the amounts so far. */
  private pending = new Map<string, Map<string, { inc: Increment; amount: number }>>();
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: MetricsStore,
    /** METRICS_FLUSH_MS (> 0). */
    private readonly flushMs: number,
    private readonly logger: Logger,
  ) {}

  /** Add a job's increments; they are recorded within `flushMs`. */
  add(model: string, incs: readonly Increment[]): void {
    if (incs.length === 0) return;
    let byField = this.pending.get(model);
    if (!byField) this.pending.set(model, (byField = new Map()));
    for (const inc of incs) {
      const k = `${inc.metric.key}\u0001${fieldOf(inc)}`;
      const had = byField.get(k);
      if (had) had.amount += inc.amount;
      else byField.set(k, { inc, amount: inc.amount });
    }
    if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), this.flushMs);
      this.timer.unref();
    }
  }

  /** Record what is pending now (one call per model); a failed call is logged and its increments dropped. */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.pending;
    this.pending = new Map();
    if (batch.size === 0) return this.flushing;
    // One flush at a time, in order: a later one never overtakes an earlier one's calls.
    this.flushing = this.flushing.then(() =>
      Promise.all(
        [...batch].map(([model, byField]) =>
          this.store.record(model, [...byField.values()].map(({ inc, amount }) => ({ ...inc, amount }))).catch((e: Error) => this.logger.warn({ model, err: e.message }, 'job metrics not recorded')),
        ),
      ).then(() => undefined),
    );
    return this.flushing;
  }

  /** Stop the timer and record what is left. */
  close(): Promise<void> {
    return this.flush();
  }
}
