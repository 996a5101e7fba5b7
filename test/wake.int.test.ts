// A new job wakes a few nodes, not every worker process: the API names up to 4 nodes that can take it now (warm
// first, in turns) and wakes each on its own channel; with one process per node (plain `hydra worker`s), waking every
// process made each job cost one dispatch round per node (bench:scale). Real worker processes, real Redis pub/sub.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WAKE_STAGGER_MS } from '../libs/queue/index.js';
import { WAKE_FANOUT } from '../libs/scheduling/index.js';
import { startCluster, type TestCluster } from './support/cluster.js';

const NODES = ['w1', 'w2', 'w3', 'w4', 'w5'];

describe('targeted wake-ups', () => {
  let c: TestCluster;
  let sub: Redis;
  const heard: { channel: string; queue: string }[] = [];

  beforeAll(async () => {
    // Polls far apart: a job that starts well within POLL_MS was started by its wake-up, not by a poll.
    c = await startCluster({ POLL_MS: '4000' });
    await Promise.all(NODES.map((id) => c.simWorker(id, { vramGb: 24, models: [{ name: 'm', sizeGb: 1 }], tokensPerSecond: 4000, loadMsPerGb: 0 })));
    sub = new Redis(c.redisUrl);
    await sub.psubscribe(`${c.prefix}:ch:wake*`);
    sub.on('pmessage', (_p: string, channel: string, queue: string) => heard.push({ channel, queue }));
  }, 60_000);
  afterAll(async () => {
    sub?.disconnect();
    await c?.stop();
  });

  it('names at most 4 nodes per job on their own channels, never every process, in turns; each job starts within a wake, not a poll', async () => {
    // Warm the model everywhere first (a cold node is woken after warm ones).
    await c.post('/v1/jobs', { type: 'generate', model: 'm', prompt: 'warm', wait: true });
    heard.length = 0;
    const JOBS = 20;
    const took: number[] = [];
    for (let i = 0; i < JOBS; i++) {
      const t0 = Date.now();
      const r = await c.post('/v1/jobs', { type: 'generate', model: 'm', prompt: `job ${i}`, options: { num_predict: 2 }, wait: true });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      took.push(Date.now() - t0);
    }
    const general = heard.filter((h) => h.channel === `${c.prefix}:ch:wake`);
    const perNode = heard.filter((h) => h.channel.startsWith(`${c.prefix}:ch:wake:`));
    expect(general).toEqual([]);
    expect(perNode.length).toBeGreaterThanOrEqual(JOBS);
    expect(perNode.length).toBeLessThanOrEqual(JOBS * WAKE_FANOUT);
    // In turns: over 20 jobs every node was named.
    expect(new Set(perNode.map((h) => h.channel.slice(`${c.prefix}:ch:wake:`.length)))).toEqual(new Set(NODES));
    // A missed wake would leave the job to a poll (4 s): the median job took a small fraction of that.
    took.sort((a, b) => a - b);
    expect(took[Math.floor(JOBS / 2)]!, `job times ${took.join(' ')}`).toBeLessThan(1000);
  }, 60_000);

  it('wakes the first node named at once and the others WAKE_STAGGER_MS later, so they find the job taken instead of racing for it', async () => {
    const stamped: { channel: string; at: number }[] = [];
    const onMessage = (_p: string, channel: string) => stamped.push({ channel, at: performance.now() });
    sub.on('pmessage', onMessage);
    const gaps: number[] = [];
    let firstTook = 0;
    const JOBS = 10;
    for (let i = 0; i < JOBS; i++) {
      stamped.length = 0;
      const r = await c.post('/v1/jobs', { type: 'generate', model: 'm', prompt: `stagger ${i}`, options: { num_predict: 2 }, wait: true });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      await new Promise((ok) => setTimeout(ok, WAKE_STAGGER_MS + 30));
      const named = stamped.filter((h) => h.channel.startsWith(`${c.prefix}:ch:wake:`));
      expect(named.length, JSON.stringify(named)).toBeGreaterThan(1); // five idle warm nodes: several are named
      gaps.push(Math.min(...named.slice(1).map((h) => h.at)) - named[0]!.at);
      if (named[0]!.channel.endsWith(`:${r.body.result.node_id}`)) firstTook++;
    }
    sub.off('pmessage', onMessage);
    gaps.sort((a, b) => a - b);
    // Woken together (one pipeline), the gap would be ~0 ms; a delayed receipt of the first can only shorten it.
    expect(gaps[Math.floor(JOBS / 2)]!, `gaps ${gaps.map((g) => g.toFixed(1)).join(' ')}`).toBeGreaterThanOrEqual(WAKE_STAGGER_MS * 0.75);
    // The node woken first is the one that ran it, but for a rare race on a loaded machine.
    expect(firstTook, `${firstTook} of ${JOBS}`).toBeGreaterThanOrEqual(JOBS / 2);
  }, 60_000);

  it('a job pinned to a node wakes that node only', async () => {
    heard.length = 0;
    const r = await c.post('/v1/jobs', { type: 'generate', model: 'm', prompt: 'pinned', node_id: 'w3', wait: true });
    expect(r.status).toBe(200);
    expect(r.body.node_id ?? r.body.routing?.node_id ?? r.body.result?.node_id).toBe('w3');
    expect(heard.map((h) => h.channel)).toEqual([`${c.prefix}:ch:wake:w3`]);
  }, 30_000);
});
