// Dispatch round timing (DISPATCH_TIMING_LOG_MS): one summary line per interval, nothing when no round ran.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Logger } from '../../libs/logger/index.js';
import { DispatchTiming } from './dispatch-timing.js';

describe('DispatchTiming', () => {
  afterEach(() => void vi.useRealTimers());

  it('logs rounds, p50 / p99 / max of the rounds and of the ordering step, then starts over', () => {
    vi.useFakeTimers();
    const lines: [Record<string, unknown>, string][] = [];
    const log = { info: (o: Record<string, unknown>, msg: string) => lines.push([o, msg]) } as unknown as Logger;
    const t = new DispatchTiming(1000, log);
    for (let i = 1; i <= 100; i++) t.round(i / 10);
    t.order(0.02);
    t.order(0.05);
    vi.advanceTimersByTime(1000);
    expect(lines).toEqual([[{ rounds: 100, round_p50_ms: 5, round_p99_ms: 9.9, round_max_ms: 10, orders: 2, order_p99_ms: 0.05, order_max_ms: 0.05 }, 'dispatch timing']]);
    vi.advanceTimersByTime(1000);
    expect(lines).toHaveLength(1); // no rounds: no line
    t.close();
  });
});
