// Redis Cluster with real redis-server processes (3 masters, 3 replicas): Hydra's API and a worker as child processes
// reach it through REDIS_CLUSTER_NODES; jobs, a streamed job and a workflow (a BullMQ flow) complete; every Lua script
// declares its keys and runs on the master of the slot; and with jobs flowing, a SIGKILL of the master holding the
// `{hydra}`-tag slot is survived without restarting anything, with no job the API with REDIS_MIN_REPLICAS_ACK=1
// accepted lost or run twice.
import { readdirSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../libs/config/index.js';
import { createRedis, loadScript, queueRedisTarget, readScript, slotServer, type RedisClient } from '../libs/queue/index.js';
import { readSse } from './support/cluster.js';
import { clusterMissing, startRedisCluster, type RedisClusterGroup } from './support/redis-cluster.js';
import { Load, MODEL, startHydraOn, tally, type HydraOn } from './support/sentinel-cluster.js';
import { waitFor } from './support/wait.js';

// CI installs redis-server with cluster support: there a missing one fails the run; elsewhere the file is skipped, saying why.
const missing = clusterMissing();
const inCi = /^(1|true)$/i.test(process.env.CI ?? '');
if (missing && !inCi) process.stderr.write(`test/redis-cluster.int.test.ts skipped: ${missing}\n`);

/** From the SIGKILL to the first completed job of a submission made after it (ms). cluster-node-timeout is 1 s. */
const FLOW_AGAIN_MS = 15_000;

const json = async (url: string, body?: unknown): Promise<{ status: number; body: any }> => {
  const r = await fetch(url, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, body: await r.json().catch(() => null) };
};

describe.skipIf(missing !== null && !inCi)('Redis Cluster', () => {
  let g: RedisClusterGroup;
  let h: HydraOn<RedisClusterGroup>;
  let conn: RedisClient;
  beforeAll(async () => {
    if (missing) throw new Error(`${missing}; CI must install it`);
    g = await startRedisCluster({ masters: 3, replicas: 1, nodeTimeoutMs: 1000 });
    h = await startHydraOn(g, { ackTimeoutMs: 500 });
    conn = createRedis(queueRedisTarget(loadConfig(g.env)), 'worker');
    conn.on('error', () => {});
  }, 90_000);
  afterAll(async () => {
    conn?.disconnect();
    await (h ? h.stop() : g?.stop());
  });

  it('needs the cluster client: one server of the cluster refuses most keys (MOVED), Hydra connects through the seeds', async () => {
    const owner = await g.masterOf(h.prefix);
    const other = g.ports.find((p) => p !== owner)!;
    const plain = new Redis(other, '127.0.0.1', { maxRetriesPerRequest: 0 });
    try {
      await expect(plain.set(`${h.prefix}:probe`, '1')).rejects.toThrow(/MOVED/);
    } finally {
      plain.disconnect();
    }
    // Keyless commands go to the slot's master: the worker's liveness connection is registered there.
    const srv = slotServer(conn, `${h.prefix}:live`);
    expect(srv?.options.port).toBe(owner);
    const master = g.client(owner);
    try {
      await master.connect();
      expect(String(await master.client('LIST'))).toMatch(/name=hydra-live-/);
    } finally {
      master.disconnect();
    }
  });

  it('every Lua script declares keys, runs on the master of its keys, and is refused without keys', async () => {
    for (const lib of ['metrics', 'queue', 'registry', 'workflows']) {
      const dir = new URL(`../libs/${lib}/scripts/`, import.meta.url);
      for (const file of readdirSync(dir).filter((f) => f.endsWith('.lua'))) {
        const spec = readScript(dir, file.replace(/\.lua$/, ''));
        expect({ script: file, keys: spec.keys.fixed.length + spec.keys.each.length > 0 }).toEqual({ script: file, keys: true });
      }
    }
    // The renewal script (a repeated ARGV, one key) on a reservation hash: it runs where the key lives.
    const renew = loadScript<number>(conn, new URL('../libs/registry/scripts/', import.meta.url), 'renew');
    const key = `${h.prefix}:node:probe:resv`;
    await conn.hset(key, 'j1', `m|100|${Date.now() + 1000}`);
    expect(await renew([key], [Date.now() + 60_000, 60_000, 'j1'])).toBe(1);
    const peek = loadScript(conn, new URL('../libs/queue/scripts/', import.meta.url), 'peek-heads');
    await expect(peek([], [0, 'x', 'n', 'y', 'z'])).rejects.toThrow('script peek-heads called with no keys: on a Redis Cluster it would run on a random node');
    // cluster-read.lua, through a /metrics scrape of the API.
    const metrics = await fetch(`${h.plain.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^hydra_node_healthy\{[^}]*\} 1$/m);
  });

  it('runs a job, a streamed job and a workflow (a BullMQ flow) through the cluster', async () => {
    const done = await json(`${h.plain.url}/v1/jobs`, { type: 'generate', model: MODEL, prompt: 'plain', wait: true, options: { num_predict: 5, sim_answer_tokens: 5 } });
    expect(done.status).toBe(200);
    expect(done.body.state).toBe('completed');

    const streamed = await json(`${h.plain.url}/v1/jobs`, { type: 'generate', model: MODEL, prompt: 'streamed', options: { sim_answer_tokens: 20 } });
    expect(streamed.status).toBe(202);
    const events = await readSse(`${h.plain.url}${streamed.body.stream_url}`);
    expect(events.at(-1)!.event).toBe('done');
    expect(events.filter((e) => e.event === 'token').map((e) => e.data.text).join('')).toBe(events.at(-1)!.data.response);

    const wf = await json(`${h.plain.url}/v1/workflows`, {
      steps: [
        { id: 'one', model: MODEL, prompt: 'one', options: { num_predict: 3 } },
        { id: 'two', model: MODEL, prompt: 'two {{steps.one.output}}', depends_on: ['one'], options: { num_predict: 3 } },
        { id: 'three', model: MODEL, prompt: 'three', options: { num_predict: 3 } },
      ],
    });
    expect(wf.status).toBe(202);
    const wfEvents = await readSse(`${h.plain.url}${wf.body.stream_url}`);
    expect(wfEvents.at(-1)).toMatchObject({ event: 'done', data: { state: 'completed' } });
    expect(Object.keys(wfEvents.at(-1)!.data.result.outputs).sort()).toEqual(['one', 'three', 'two']);
  });

  it('survives a SIGKILL of the master holding the {hydra} slot: the replica takes over, jobs flow again, none accepted with the ack is lost', async () => {
    const pids = h.all().map((p) => p.pid);
    const loads = { ack: new Load(h.ack), plain: new Load(h.plain) };
    loads.ack.start();
    loads.plain.start();
    const t0 = Date.now();
    await waitFor(() => loads.ack.okSince(t0).length >= 10 && loads.plain.okSince(t0).length >= 10, { timeoutMs: 20_000, what: 'jobs flowing through both APIs' });

    const old = await g.masterOf(h.prefix);
    await g.node(old).kill('SIGKILL');
    const killedAt = Date.now();
    const next = await g.waitForOk({ key: h.prefix, notPort: old, timeoutMs: FLOW_AGAIN_MS });
    const promotedAt = Date.now();
    const plainOk = await waitFor(() => loads.plain.okSince(killedAt)[0], { timeoutMs: FLOW_AGAIN_MS, intervalMs: 20, what: 'a job through the API without the ack after the failover' });
    // The promoted replica has no replica of its own: the ack API refuses (503, saying why) until the old master is back.
    const refusal = await waitFor(() => loads.ack.records.find((r) => r.startedAt >= promotedAt && r.status === 503), { timeoutMs: 10_000, what: 'the ack API to refuse while the new master has no replica' });
    expect(refusal.code).toBe('unavailable');
    await g.node(old).start();
    await g.waitForReplicas();
    const rejoinedAt = Date.now();
    const ackOk = await waitFor(() => loads.ack.okSince(rejoinedAt)[0], { timeoutMs: FLOW_AGAIN_MS, intervalMs: 20, what: 'a job through the ack API once the old master is back as a replica' }).catch((e: Error) => {
      const last = loads.ack.records.filter((r) => r.startedAt >= rejoinedAt).slice(-3);
      throw new Error(`${e.message}; its last answers: ${JSON.stringify(last.map((r) => [r.status, r.message]))}\n${h.ack.output().slice(-2000)}`);
    });
    const recoveredAt = Date.now();
    await waitFor(() => loads.ack.okSince(recoveredAt).length >= 10 && loads.plain.okSince(recoveredAt).length >= 10, { timeoutMs: 20_000, what: 'jobs flowing again through both APIs' });
    await Promise.all([loads.ack.stop(), loads.plain.stop()]);
    // The worker's liveness registration followed the slot to the new master.
    await waitFor(() => h.worker.output().includes('liveness registered again on the new master'), { timeoutMs: 5000, what: 'the worker to register its liveness on the new master' });

    const ack = await tally(h, h.ack, loads.ack.records);
    const plain = await tally(h, h.plain, loads.plain.records);
    const ms = (t: number) => `${t - killedAt} ms`;
    const odd = [...loads.ack.records, ...loads.plain.records].filter((r) => ![200, 202, 503].includes(r.status));
    process.stdout.write(
      `Redis Cluster failover (SIGKILL of the {hydra} slot's master :${old}, 3 masters + 3 replicas, cluster-node-timeout 1000 ms): replica :${next} promoted after ${ms(promotedAt)}; ` +
        `jobs flowed again without the ack after ${ms(plainOk.endedAt)}; with REDIS_MIN_REPLICAS_ACK=1 refused until the old master rejoined as a replica ` +
        `(synced at ${ms(rejoinedAt)}), then flowed after ${ms(ackOk.endedAt)}\n` +
        `  with the ack:    ${JSON.stringify(ack.tally)}\n  without the ack: ${JSON.stringify(plain.tally)}\n` +
        odd.map((r) => `  answered ${r.status} at ${ms(r.endedAt)}: ${r.code ?? ''} ${r.message ?? ''}\n`).join(''),
    );

    expect(h.all().map((p) => p.alive())).toEqual(h.all().map(() => true));
    expect(h.all().map((p) => p.pid)).toEqual(pids);
    expect(plainOk.endedAt - killedAt).toBeLessThan(FLOW_AGAIN_MS);
    expect(ack.tally.accepted).toBeGreaterThan(20);
    expect({ lost: ack.lostIds, twice: ack.twiceIds, vanished: ack.tally.vanished_while_waiting }).toEqual({ lost: [], twice: [], vanished: 0 });
    expect(ack.tally.completed).toBe(ack.tally.accepted);
    expect(plain.tally.accepted).toBeGreaterThan(20);
    expect(plain.tally.completed_twice).toBe(0);
    // A Redis error the API does not recognise answers 500; the failover's must all be 503 (retryable).
    expect(odd.map((r) => `${r.status} ${r.message ?? ''}`)).toEqual([]);
  }, 90_000);
});
