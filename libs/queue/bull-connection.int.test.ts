// BullMQ on a connection of its own (bullConnection): Hydra's connection carries none of BullMQ's ~64 Lua commands, so
// its pipelines stay cheap, while jobs, the replica ack and shutdown still see both connections.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { jobSettingsOf, loadConfig } from '../config/index.js';
import { bullConnection, createRedis } from './connection.js';
import { hydraKeys } from './keys.js';
import { Producer } from './producer.js';
import { ReplicaAck } from './replica-ack.js';

const commandsOf = (r: Redis): string[] => Object.keys((r as unknown as { scriptsSet: Record<string, unknown> }).scriptsSet);

describe('bullConnection', () => {
  const keys = hydraKeys(`{bc${randomBytes(4).toString('hex')}}`);
  let admin: Redis;
  beforeAll(() => {
    admin = new Redis(inject('redisUrl'));
  });
  afterAll(async () => {
    const found = await admin.keys(`${keys.prefix}:*`);
    if (found.length > 0) await admin.del(...found);
    admin.disconnect();
  });

  it("keeps BullMQ's commands off Hydra's connection: a job added through the producer defines them on the other one", async () => {
    const redis = createRedis(inject('redisUrl'), 'worker', { connectionName: 'hydra-bc-test' });
    const producer = new Producer(redis, keys, jobSettingsOf(loadConfig({})));
    await producer.queue('infer.bc').add('noop', { x: 1 }, { jobId: 'bc-1' });
    const bull = bullConnection(redis) as Redis;
    expect(bullConnection(redis)).toBe(bull); // one per connection
    expect(commandsOf(bull).length).toBeGreaterThan(30);
    expect(commandsOf(bull).some((c) => c.startsWith('addStandardJob') || c.startsWith('addPrioritizedJob'))).toBe(true);
    // Hydra's connection holds Hydra's own scripts only (the lifecycle loads stream-end.lua on it), none of BullMQ's.
    expect(commandsOf(redis as Redis).filter((c) => !c.startsWith('hydra_'))).toEqual([]);
    // It is named after the connection it serves, and it is the one BullMQ wrote through.
    expect(String(await admin.client('LIST'))).toContain('name=hydra-bc-test-bullmq');
    expect(await admin.exists(`${keys.prefix}:infer.bc:bc-1`)).toBe(1);
    await producer.close();
    // Closing Hydra's connection closes BullMQ's too (no process is kept alive by it).
    await redis.quit();
    await new Promise((r) => setTimeout(r, 100));
    expect(bull.status).toBe('end');
  });

  it('makes the replica ack refuse a confirm when either producer connection was re-established since the seal', async () => {
    const redis = createRedis(inject('redisUrl'), 'producer', { connectionName: 'hydra-bc-ack' });
    const bull = bullConnection(redis) as Redis;
    const ackConn = new Redis(inject('redisUrl'));
    await Promise.all([redis, bull, ackConn].map((r) => (r.status === 'ready' ? Promise.resolve() : new Promise((ok) => r.once('ready', ok)))));
    // replicas 0: WAIT answers at once on a server without replicas, so only the connection checks decide.
    const ack = new ReplicaAck({ producer: [redis, bull], ack: ackConn, key: `${keys.prefix}:replica-ack`, replicas: 0, timeoutMs: 200 });
    await new Promise((r) => setTimeout(r, 50)); // run_ids learnt (INFO at ready)
    expect(await ack.confirm(ack.seal())).toEqual({ ok: true, replicas: 0 });
    const seal = ack.seal();
    // Only BullMQ's connection drops (and comes back): a job added on it may have gone to another server.
    const id = String(await bull.client('ID'));
    await admin.client('KILL', 'ID', id);
    await new Promise((ok) => bull.once('ready', ok));
    const refused = await ack.confirm(seal);
    expect(refused.ok).toBe(false);
    expect(refused).toMatchObject({ why: expect.stringContaining('re-established') });
    await new Promise((r) => setTimeout(r, 50));
    expect((await ack.confirm(ack.seal())).ok).toBe(true);
    ack.close();
    redis.disconnect();
  });
});
