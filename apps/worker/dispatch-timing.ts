// Optional timing of one node agent's dispatch rounds (DISPATCH_TIMING_LOG_MS > 0): the wall time of each round (peek
// the heads, order them, reserve, take) and of its pure ordering step, summarised in one log line per interval. The
// ordering step has no await, so its wall time is its CPU time plus any time the OS or a GC pause took the thread
// away; its CPU time (process.cpuUsage around it: this thread's work, and any other thread's meanwhile) is logged too.
import type { Logger } from '../../libs/logger/index.js';

const q = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? 0;
const ms = (x: number): number => Math.round(x * 1000) / 1000;

export class DispatchTiming {
  private rounds: number[] = [];
  private orders: number[] = [];
  private orderCpu: number[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(
    everyMs: number,
    private readonly log: Logger,
    /** Also fed every sample: the process's line over all its agents (`processTiming`). */
    private readonly pool: DispatchTiming | null = null,
    private readonly fields: Record<string, unknown> = {},
  ) {
    this.timer = setInterval(() => this.flush(), everyMs);
    this.timer.unref();
  }

  round(msTaken: number): void {
    this.rounds.push(msTaken);
    this.pool?.round(msTaken);
  }

  order(msTaken: number, cpuMs?: number): void {
    this.orders.push(msTaken);
    if (cpuMs !== undefined) this.orderCpu.push(cpuMs);
    this.pool?.order(msTaken, cpuMs);
  }

  private flush(): void {
    if (this.rounds.length === 0) return;
    const r = this.rounds.sort((a, b) => a - b);
    const o = this.orders.sort((a, b) => a - b);
    const oc = this.orderCpu.sort((a, b) => a - b);
    this.log.info(
      { ...this.fields, rounds: r.length, round_p50_ms: ms(q(r, 0.5)), round_p99_ms: ms(q(r, 0.99)), round_max_ms: ms(r.at(-1) ?? 0), orders: o.length, order_p99_ms: ms(q(o, 0.99)), order_max_ms: ms(o.at(-1) ?? 0), order_cpu_p99_ms: ms(q(oc, 0.99)) },
      'dispatch timing',
    );
    this.rounds = [];
    this.orders = [];
    this.orderCpu = [];
  }

  close(): void {
    clearInterval(this.timer);
  }
}

let pooled: DispatchTiming | null = null;

/**
 * The process's timing over all its node agents (one line per interval with `scope: "process"`): its p99 is over
 * every decision the process made, where the per-agent lines' worst p99 is close to the slowest single decision of
 * the interval once a process serves hundreds of agents.
 */
export function processTiming(everyMs: number, log: Logger): DispatchTiming {
  pooled ??= new DispatchTiming(everyMs, log, null, { scope: 'process' });
  return pooled;
}
