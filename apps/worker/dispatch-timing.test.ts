// Dispatch round timing (DISPATCH_TIMING_LOG_MS): one summary line per interval, nothing when no round ran.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Logger } from '../../libs/logger/index.js';
import { DispatchTiming, processTiming } from './dispatch-timing.js';

describe('DispatchTiming', () => {
  afterEach(() => void vi.useRealTimers());

  it('logs rounds, p50 / p99 / max of the rounds and of the ordering step (wall and CPU), then starts over', () => {
    vi.useFakeTimers();
    const lines: [Record<string, unknown>, string][] = [];
    const log = { info: (o: Record<string, unknown>, msg: string) => lines.push([o, msg]) } as unknown as Logger;
    const t = new DispatchTiming(1000, log);
    for (let i = 1; i <= 100; i++) t.round(i / 10);
    t.order(0.02, 0.01);
    t.order(0.05, 0.03);
    vi.advanceTimersByTime(1000);
    expect(lines).toEqual([[{ rounds: 100, round_p50_ms: 5, round_p99_ms: 9.9, round_max_ms: 10, orders: 2, order_p99_ms: 0.05, order_max_ms: 0.05, order_cpu_p99_ms: 0.03 }, 'dispatch timing']]);
    vi.advanceTimersByTime(1000);
    expect(lines).toHaveLength(1); // no rounds: no line
    t.close();
  });
});

describe('processTiming', () => {
  it("pools every agent's samples into one line per interval marked scope: process", () => {
    vi.useFakeTimers();
    const lines: [Record<string, unknown>, string][] = [];
    const log = { info: (o: Record<string, unknown>, msg: string) => lines.push([o, msg]) } as unknown as Logger;
    const pool = processTiming(1000, log);
    const a = new DispatchTiming(1000, { info: () => undefined } as unknown as Logger, pool);
    const b = new DispatchTiming(1000, { info: () => undefined } as unknown as Logger, pool);
    a.round(1);
    b.round(3);
    b.order(0.5, 0.4);
    vi.advanceTimersByTime(1000);
    expect(lines).toEqual([[{ scope: 'process', rounds: 2, round_p50_ms: 1, round_p99_ms: 3, round_max_ms: 3, orders: 1, order_p99_ms: 0.5, order_max_ms: 0.5, order_cpu_p99_ms: 0.4 }, 'dispatch timing']]);
    expect(processTiming(1000, log)).toBe(pool);
    for (const t of [a, b, pool]) t.close();
  });
});
