// The breaker's state machine, driven by an explicit clock; and its sharing between the processes of one node.
import { describe, expect, it } from 'vitest';
import type { BreakerStore, VersionedState } from '../../libs/registry/index.js';
import { CircuitBreaker, SharedBreaker } from './circuit-breaker.js';

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

describe('SharedBreaker: one breaker for every process of a node', () => {
  // The store as Redis keeps it (compare-and-set on a version token), in memory.
  const memoryStore = (): BreakerStore => {
    let cur: VersionedState = { version: '', json: '' };
    let n = 0;
    return {
      read: async () => cur,
      swap: async (expected, json) => {
        if (expected !== cur.version) return { ok: false, now: cur };
        cur = { version: String(++n), json };
        return { ok: true, now: cur };
      },
    };
  };
  const o = { failures: 3, windowMs: 1000, cooldownMs: 500 };
  const settle = () => new Promise((r) => setTimeout(r, 10));

  it('counts failures of all processes together; an opening shows in the others', async () => {
    const store = memoryStore();
    const [p1, p2] = [new SharedBreaker(o, store), new SharedBreaker(o, store)];
    p1.failure(0);
    p2.failure(10); // written concurrently: the compare-and-set re-applies it, nothing is lost
    await settle();
    p1.failure(20);
    await settle();
    await p2.sync(30, 0);
    expect(p2.view(30)).toEqual({ state: 'open', recent_failures: 3, open_until: 520 });
    expect(await p2.admit(100)).toEqual({ ok: false, probe: false });
  });

  it('lets exactly one process of the node probe when half-open; its success closes the breaker for all', async () => {
    const store = memoryStore();
    const [p1, p2] = [new SharedBreaker(o, store), new SharedBreaker(o, store)];
    [0, 1, 2].forEach((t) => p1.failure(t));
    await settle();
    const [a1, a2] = await Promise.all([p1.admit(600), p2.admit(600)]);
    expect([a1.probe, a2.probe].filter(Boolean)).toHaveLength(1);
    const prober = a1.probe ? p1 : p2;
    const other = a1.probe ? p2 : p1;
    prober.success();
    await settle();
    await other.sync(700, 0);
    expect(other.view(700).state).toBe('closed');
    expect((await other.admit(700)).ok).toBe(true);
  });
});
