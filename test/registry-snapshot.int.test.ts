// The shared registry snapshot (NodeRegistry.shared, snapshot.lua) against a real Redis: one process per interval
// reads the registry, the others read one key; a join, a change of what routing looks at, or a leave is seen at once.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import type { NodeRecord } from '../libs/core/index.js';
import { hydraKeys } from '../libs/queue/index.js';
import { NodeRegistry } from '../libs/registry/index.js';

const record = (id: string): NodeRecord => ({
  id,
  url: 'http://127.0.0.1:9',
  backend: 'ollama',
  type: 'gpu',
  healthy: true,
  simulated: true,
  host: 'h',
  vram_total_mb: 24_000,
  vram_available_mb: 24_000,
  ram_total_mb: 32_000,
  ram_available_mb: 32_000,
  capacity_mb: 23_000,
  buffer_mb: 200,
  models_available: [{ name: 'm', size_mb: 4000, need_mb: 4500 }],
  models_loaded: [],
  slots: 2,
  last_heartbeat: Date.now(),
});

describe('shared registry snapshot (real Redis)', () => {
  const keys = hydraKeys(`{sn${randomBytes(4).toString('hex')}}`);
  let redis: Redis;
  const ids = (ns: readonly { id: string }[]) => ns.map((n) => n.id);
  const beat = (reg: NodeRegistry, id: string, unchanged: boolean) => reg.heartbeat({ ...record(id), last_heartbeat: Date.now() }, 60_000, 'p', { unchanged });

  beforeAll(() => {
    redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
  });
  afterAll(async () => {
    const left = await redis.keys(`${keys.prefix}*`);
    if (left.length) await redis.del(...left);
    redis.disconnect();
  });

  it('one reader builds it, the others read it; a routine beat is not seen before the snapshot ages, a change is seen at once', async () => {
    const a = new NodeRegistry(redis, keys);
    const b = new NodeRegistry(redis, keys);
    for (const id of ['n1', 'n2', 'n3']) await beat(a, id, false);
    const listA = vi.spyOn(a, 'list');
    const listB = vi.spyOn(b, 'list');
    expect(ids(await a.shared(60_000))).toEqual(['n1', 'n2', 'n3']);
    expect(listA).toHaveBeenCalledTimes(1);
    // A fourth node beats as if nothing changed: b is served the snapshot, without reading the registry.
    await beat(a, 'n4', true);
    expect(ids(await b.shared(60_000))).toEqual(['n1', 'n2', 'n3']);
    expect(listB).not.toHaveBeenCalled();
    // The same reader asking again with the snapshot unchanged gets the nodes it holds (no body sent).
    const held = await b.shared(60_000);
    expect(await b.shared(60_000)).toBe(held);
    // A beat that changes what routing looks at (the default) drops the snapshot: the next reader rebuilds.
    await beat(a, 'n4', false);
    expect(ids(await b.shared(60_000))).toEqual(['n1', 'n2', 'n3', 'n4']);
    expect(listB).toHaveBeenCalledTimes(1);
    // A leave drops it too.
    expect(await a.leave('n2', 'p', Date.now())).toBe(true);
    expect(ids(await a.shared(60_000))).toEqual(['n1', 'n3', 'n4']);
  });

  it('announces every drop of the snapshot on the registry channel (a changed beat, a leave, a deregister), not a routine beat', async () => {
    const reg = new NodeRegistry(redis, keys);
    const sub = new Redis(inject('redisUrl'));
    const heard: string[] = [];
    try {
      await sub.subscribe(keys.channels.registry);
      sub.on('message', (_c: string, m: string) => heard.push(m));
      await beat(reg, 'c1', false);
      await beat(reg, 'c1', true);
      await beat(reg, 'c2', false);
      await reg.leave('c2', 'p', Date.now());
      await reg.deregister('c1');
      await reg.invalidateShared();
      // The leave announces through invalidateShared (''), as a first speed figure does.
      await vi.waitFor(() => expect(heard).toEqual(['c1', 'c2', '', 'c1', '']));
    } finally {
      sub.disconnect();
    }
  });

  it('past its age one of many concurrent readers rebuilds it; the rest are served the previous one meanwhile', async () => {
    const regs = Array.from({ length: 10 }, () => new NodeRegistry(redis, keys));
    const spies = regs.map((r) => vi.spyOn(r, 'list'));
    await redis.del(keys.registrySnapshot);
    await regs[0]!.shared(200);
    await beat(regs[0]!, 'n5', true);
    await new Promise((r) => setTimeout(r, 250));
    const seen = await Promise.all(regs.map((r) => r.shared(200)));
    expect(spies.reduce((n, s) => n + s.mock.calls.length, 0)).toBe(2); // the first build, and one rebuild
    // The rebuild has n5; the others had the previous snapshot (or, had the rebuild finished first, the new one).
    expect(seen.some((ns) => ids(ns).includes('n5'))).toBe(true);
    expect(ids((await new NodeRegistry(redis, keys).shared(200)))).toContain('n5');
  });

  it('a build that read the registry before a node joined does not store what it read: the next reader sees the node', async () => {
    const builder = new NodeRegistry(redis, keys);
    const other = new NodeRegistry(redis, keys);
    await redis.del(keys.registrySnapshot, keys.registrySnapshotLock);
    const read = builder.list.bind(builder);
    // The join lands between the builder's registry read and its store (a node's first heartbeat drops the snapshot).
    vi.spyOn(builder, 'list').mockImplementationOnce(async (now) => {
      const nodes = await read(now);
      await beat(other, 'late', false);
      return nodes;
    });
    expect(ids(await builder.shared(60_000))).not.toContain('late');
    const list = vi.spyOn(other, 'list');
    expect(ids(await other.shared(60_000))).toContain('late');
    expect(list).toHaveBeenCalledTimes(1);
    // Without the guard (snapshot-store.lua) the stale list would have been stored and served for the whole minute.
    expect(ids(await new NodeRegistry(redis, keys).shared(60_000))).toContain('late');
  });

  it('a snapshot older than the build lock lives (its builder died) is not trusted: the reader reads the registry', async () => {
    const reg = new NodeRegistry(redis, keys);
    const list = vi.spyOn(reg, 'list');
    const [s, us] = (await redis.time()).map(Number) as [number, number];
    const redisNow = s * 1000 + Math.floor(us / 1000);
    await redis.hset(keys.registrySnapshot, 'at', String(redisNow - 10_000), 'body', JSON.stringify([record('ghost')]));
    await redis.set(keys.registrySnapshotLock, '1', 'PX', 5000);
    const nodes = await reg.shared(100);
    expect(list).toHaveBeenCalledTimes(1);
    expect(ids(nodes)).not.toContain('ghost');
    // Within the lock's life a stale one still serves (someone is building it).
    await redis.hset(keys.registrySnapshot, 'at', String(redisNow - 150), 'body', JSON.stringify([record('ghost')]));
    expect(ids(await new NodeRegistry(redis, keys).shared(100))).toEqual(['ghost']);
  });
});
