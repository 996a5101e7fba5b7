// The cached node list: at most one registry read per ttl, a list up to twice the ttl old answered at once while a
// fresh one is read behind it, an older one waited for, a failed read never cached.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { cachedNodeList } from './node-list.js';

describe('cachedNodeList', () => {
  beforeEach(() => vi.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => vi.useRealTimers());

  /** A registry whose reads answer `v1`, `v2`, ... in turn, each when `release` is called (or at once). */
  const registry = () => {
    let n = 0;
    const pending: (() => void)[] = [];
    return {
      reads: () => n,
      release: () => pending.splice(0).forEach((f) => f()),
      fail: false,
      list(): Promise<string[]> {
        n++;
        const v = [`v${n}`];
        if (this.fail) return Promise.reject(new Error('registry away'));
        return new Promise((res) => pending.push(() => res(v)));
      },
    };
  };

  it('reads once per ttl, answers a list under twice the ttl old at once while reading a fresh one', async () => {
    const r = registry();
    const nodes = cachedNodeList(r, 250);
    const first = nodes();
    r.release();
    expect(await first).toEqual(['v1']);
    vi.advanceTimersByTime(200);
    expect(await nodes()).toEqual(['v1']);
    expect(r.reads()).toBe(1);
    // 300 ms old: the old list at once, one fresh read behind it (not one per call).
    vi.advanceTimersByTime(100);
    expect(await nodes()).toEqual(['v1']);
    expect(await nodes()).toEqual(['v1']);
    expect(r.reads()).toBe(2);
    r.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(await nodes()).toEqual(['v2']);
    // Older than twice the ttl: the caller waits for the fresh list.
    vi.advanceTimersByTime(600);
    const waited = nodes();
    expect(r.reads()).toBe(3);
    r.release();
    expect(await waited).toEqual(['v3']);
  });

  it('never caches a failed read', async () => {
    const r = registry();
    r.fail = true;
    const nodes = cachedNodeList(r, 250);
    await expect(nodes()).rejects.toThrow('registry away');
    r.fail = false;
    const again = nodes();
    r.release();
    expect(await again).toEqual(['v2']);
  });
});
