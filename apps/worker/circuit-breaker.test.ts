// The breaker's state machine, driven by an explicit clock.
import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from './circuit-breaker.js';

describe('CircuitBreaker', () => {
  const make = () => new CircuitBreaker({ failures: 3, windowMs: 1000, cooldownMs: 500 });

  it('opens after N failures inside the window, not when they are spread out', () => {
    const spread = make();
    expect([0, 600, 1200, 1800].map((t) => spread.failure(t))).toEqual([false, false, false, false]);
    expect(spread.allow(1900)).toBe(true);
    const b = make();
    expect([0, 100, 200].map((t) => b.failure(t))).toEqual([false, false, true]);
    expect(b.allow(300)).toBe(false);
    expect(b.view(300)).toEqual({ state: 'open', recent_failures: 3, open_until: 700 });
  });

  it('lets one probe through after the cooldown; success closes it', () => {
    const b = make();
    [0, 1, 2].forEach((t) => b.failure(t));
    expect(b.allow(702)).toBe(true);
    b.started();
    expect(b.view(702).state).toBe('half_open');
    expect(b.allow(703)).toBe(false); // only one probe at a time
    b.success();
    expect(b.view(704)).toMatchObject({ state: 'closed' });
    expect(b.allow(704)).toBe(true);
  });

  it('a failed probe opens it again for another cooldown', () => {
    const b = make();
    [0, 1, 2].forEach((t) => b.failure(t));
    expect(b.allow(800)).toBe(true);
    b.started();
    expect(b.failure(810)).toBe(true);
    expect(b.view(900)).toMatchObject({ state: 'open', open_until: 1310 });
  });

  it('a cancelled probe frees the probe slot', () => {
    const b = make();
    [0, 1, 2].forEach((t) => b.failure(t));
    b.allow(800);
    b.started();
    b.neutral();
    expect(b.allow(801)).toBe(true);
  });
});
