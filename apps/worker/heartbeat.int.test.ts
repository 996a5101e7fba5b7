// A heartbeat still probing when its process leaves must not write the node back into the registry after `leave`.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../libs/config/index.js';
import type { BackendProbe } from '../../libs/core/index.js';
import { silentLogger } from '../../libs/logger/index.js';
import { hydraKeys } from '../../libs/queue/index.js';
import { NodeRegistry, redisBreakerStore } from '../../libs/registry/index.js';
import type { InferenceBackend } from './backends/backend.js';
import { SharedBreaker } from './circuit-breaker.js';
import { Heartbeat } from './heartbeat.js';
import { workerSettings } from './settings.js';

const probe: BackendProbe = { healthy: true, models_available: [{ name: 'm:7b', size_bytes: 4e9 }], models_loaded: [] };

/** A backend whose probes answer only when the test says so (the probe is all a heartbeat calls). */
function heldBackend() {
  const waiting: (() => void)[] = [];
  const backend = {
    kind: 'ollama',
    url: 'http://127.0.0.1:1',
    probe: () => new Promise<BackendProbe>((resolve) => waiting.push(() => resolve(probe))),
    close: async () => undefined,
  } as unknown as InferenceBackend;
  return { backend, waiting, answer: () => waiting.splice(0).forEach((f) => f()) };
}

describe('Heartbeat.stop', () => {
  const keys = hydraKeys(`{hb${randomBytes(4).toString('hex')}}`);
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(inject('redisUrl'));
  });
  afterAll(async () => {
    const found = await redis.keys(`${keys.prefix}:*`);
    if (found.length > 0) await redis.del(...found);
    redis.disconnect();
  });

  it('waits for a beat under way, which then publishes nothing: the node left stays gone', async () => {
    const config = loadConfig({ NODE_VRAM_GB: '24' });
    const registry = new NodeRegistry(redis, keys);
    const breaker = new SharedBreaker({ failures: 3, windowMs: 30_000, cooldownMs: 30_000, probeTimeoutMs: 30_000 }, redisBreakerStore(redis, keys, 'n1', 600_000));
    const held = heldBackend();
    const hb = new Heartbeat(workerSettings(config, 'n1', 2), config, { backend: held.backend, registry, breaker, procId: 'p1', logger: silentLogger(), onHealthChange: () => undefined, remote: { host: 'h' } });

    const first = hb.beat();
    held.answer();
    const published = (await first).last_heartbeat;
    expect((await registry.list(Date.now())).map((n) => [n.id, n.last_heartbeat])).toEqual([['n1', published]]);

    // The next beat's probe is out when the process stops and leaves.
    const second = hb.beat();
    await new Promise((r) => setTimeout(r, 20));
    expect(held.waiting).toHaveLength(1);
    let stopped = false;
    const stopping = hb.stop().then(() => (stopped = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(stopped).toBe(false); // stop waits for the beat under way
    held.answer();
    await stopping;
    await second;
    // The beat that was out when the process stopped published nothing: the stored record is still the first one.
    await new Promise((r) => setTimeout(r, 5));
    expect((await registry.list(Date.now())).map((n) => n.last_heartbeat)).toEqual([published]);
    expect(await registry.leave('n1', 'p1', Date.now())).toBe(true);
    // Neither that beat nor a later one (a job ending asks for one soon) writes the record or the membership again.
    await hb.beat();
    hb.soon();
    await new Promise((r) => setTimeout(r, 300));
    expect(held.waiting).toHaveLength(0);
    expect(await registry.list(Date.now())).toEqual([]);
    expect(await redis.exists(keys.node('n1'), keys.nodeProcs('n1'))).toBe(0);
  });
});
