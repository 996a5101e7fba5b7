// The cached node list: at most one registry read per ttl, a list up to twice the ttl old answered at once while a
// fresh one is read behind it, an older one waited for, a failed read never cached.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { cachedNodeList, keepFresh } from './node-list.js';

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

describe('keepFresh', () => {
  // setImmediate stays real: it is how a test tells an answer given at once from one that waited.
  beforeEach(() => vi.useFakeTimers({ now: 1_000_000, toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] }));
  afterEach(() => vi.useRealTimers());

  /** A registry whose reads take `ms` (fake time) and answer `v1`, `v2`, ... */
  const slowRegistry = (ms: number) => {
    let n = 0;
    return {
      reads: () => n,
      hang: false,
      list(): Promise<string[]> {
        const v = [`v${++n}`];
        return this.hang ? new Promise<string[]>(() => undefined) : new Promise((res) => setTimeout(() => res(v), ms));
      },
    };
  };
  /** Whether `p` settles before the macrotask queue turns: no registry read (which takes fake time) was waited for. */
  const atOnce = async (p: Promise<unknown>) => Promise.race([p.then(() => true), new Promise((r) => setImmediate(() => r(false)))]);

  it('after a quiet spell a caller is answered at once, where without it the caller waits for the read', async () => {
    const kept = slowRegistry(100);
    const keptNodes = cachedNodeList(kept, 250);
    const stop = keepFresh(keptNodes, 125);
    const plain = slowRegistry(100);
    const plainNodes = cachedNodeList(plain, 250);
    await vi.advanceTimersByTimeAsync(200);
    void plainNodes();
    await vi.advanceTimersByTimeAsync(200);
    for (const quiet of [700, 1300, 5000]) {
      await vi.advanceTimersByTimeAsync(quiet);
      expect(await atOnce(keptNodes()), `after ${quiet} ms`).toBe(true);
      const waited = plainNodes();
      expect(await atOnce(waited)).toBe(false);
      await vi.advanceTimersByTimeAsync(100);
      await waited;
    }
    // Idle, one read per ttl and a half (reads start at 375 ms of age), not one per tick.
    const before = kept.reads();
    await vi.advanceTimersByTimeAsync(3000);
    expect(kept.reads() - before).toBeGreaterThanOrEqual(7);
    expect(kept.reads() - before).toBeLessThanOrEqual(9);
    stop();
    const stopped = kept.reads();
    await vi.advanceTimersByTimeAsync(3000);
    expect(kept.reads()).toBe(stopped);
  });

  it('does not pile reads up behind one that hangs', async () => {
    const r = slowRegistry(10);
    const nodes = cachedNodeList(r, 250);
    const stop = keepFresh(nodes, 125);
    await vi.advanceTimersByTimeAsync(300);
    r.hang = true;
    const before = r.reads();
    await vi.advanceTimersByTimeAsync(5000);
    // The background read that hangs, then the caller's own once the list is too old: one ask at a time.
    expect(r.reads() - before).toBeLessThanOrEqual(2);
    stop();
  });
});

describe('cachedNodeList.invalidate', () => {
  beforeEach(() => vi.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => vi.useRealTimers());

  it('drops the list: the next call reads the registry again, and a read under way then is not kept', async () => {
    let n = 0;
    const pending: (() => void)[] = [];
    const r = { list: () => new Promise<string[]>((res) => { const v = [`v${++n}`]; pending.push(() => res(v)); }) };
    const nodes = cachedNodeList(r, 250);
    const first = nodes();
    pending.shift()!();
    expect(await first).toEqual(['v1']);
    // A join: within the ttl, the next call reads again (before: the cached list).
    nodes.invalidate();
    const second = nodes();
    expect(n).toBe(2);
    pending.shift()!();
    expect(await second).toEqual(['v2']);
    // A background read started before a change is not kept as fresh once it lands.
    vi.advanceTimersByTime(300);
    expect(await nodes()).toEqual(['v2']);
    expect(n).toBe(3);
    nodes.invalidate();
    pending.shift()!(); // v3: read before the change
    await vi.advanceTimersByTimeAsync(0);
    const after = nodes();
    expect(n).toBe(4);
    pending.shift()!();
    expect(await after).toEqual(['v4']);
  });
});
