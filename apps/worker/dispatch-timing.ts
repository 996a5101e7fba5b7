// Optional timing of one node agent's dispatch rounds (DISPATCH_TIMING_LOG_MS > 0): the wall time of each round (peek
// the heads, order them, reserve, take) and of its pure ordering step, summarised in one log line per interval.
import type { Logger } from '../../libs/logger/index.js';

const q = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? 0;
const ms = (x: number): number => Math.round(x * 1000) / 1000;

export class DispatchTiming {
  private rounds: number[] = [];
  private orders: number[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(everyMs: number, private readonly log: Logger) {
    this.timer = setInterval(() => this.flush(), everyMs);
    this.timer.unref();
  }

  round(msTaken: number): void {
    this.rounds.push(msTaken);
  }

  order(msTaken: number): void {
    this.orders.push(msTaken);
  }

  private flush(): void {
    if (this.rounds.length === 0) return;
    const r = this.rounds.sort((a, b) => a - b);
    const o = this.orders.sort((a, b) => a - b);
    this.log.info(
      { rounds: r.length, round_p50_ms: ms(q(r, 0.5)), round_p99_ms: ms(q(r, 0.99)), round_max_ms: ms(r.at(-1) ?? 0), orders: o.length, order_p99_ms: ms(q(o, 0.99)), order_max_ms: ms(o.at(-1) ?? 0) },
      'dispatch timing',
    );
    this.rounds = [];
    this.orders = [];
  }

  close(): void {
    clearInterval(this.timer);
  }
}
