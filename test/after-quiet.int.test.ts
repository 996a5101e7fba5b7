// A job that comes after a quiet spell waits for no read of state that could have been read before it came
// (bench/README.md, "The hot path, sixth pass": each was a round trip of a lone chat request's time to first token).
// - The worker: the circuit breaker's shared state is read (at most every SYNC_MS) beside the dispatch round's peek, not
//   before it. The worker talks to Redis through a TCP proxy that holds Redis' replies once the breaker's read is
//   sent: the peek still goes out (the proxy then lets everything through) only when it does not wait for that read's
//   answer. On the old code the proxy gives up holding after HOLD_MS and the job starts that much later.
// - The API: its node list is kept fresh between requests (keepFresh), so routing a request after a quiet spell waits
//   for no registry read, even one made slow on purpose.
// Real worker child process, real Redis, the API's own context.
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startCluster, type TestCluster } from './support/cluster.js';

const HOLD_MS = 1500;

/** A pass-through proxy to `target` that, once armed, holds every reply after a breaker read until a peek is sent. */
function holdingProxy(target: URL, breakerKey: string) {
  let armed = false;
  let holding: { release: (why: 'peek' | 'timeout') => void } | null = null;
  const releases: ('peek' | 'timeout')[] = [];
  const sockets = new Set<Socket>();
  // A peek (peek-heads.lua) is the only script whose first key is a queue's `prioritized`.
  const peek = /evalsha\r\n\$40\r\n[0-9a-f]{40}\r\n\$\d+\r\n\d+\r\n\$\d+\r\n[^\r]*:prioritized\r\n/i;
  const breakerRead = new RegExp(`hmget\\r\\n\\$\\d+\\r\\n${breakerKey.replace(/[{}]/g, '\\$&')}\\r\\n`, 'i');
  const held: { to: Socket; data: Buffer }[] = [];
  const server: Server = createServer((client) => {
    const upstream = createConnection(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => (client.destroy(), upstream.destroy()));
    }
    client.on('data', (d: Buffer) => {
      upstream.write(d);
      const text = d.toString('latin1');
      if (holding) {
        if (peek.test(text)) holding.release('peek');
        return;
      }
      const at = armed ? text.search(breakerRead) : -1;
      if (at < 0) return;
      armed = false;
      const timer = setTimeout(() => holding?.release('timeout'), HOLD_MS);
      holding = {
        release: (why) => {
          clearTimeout(timer);
          holding = null;
          releases.push(why);
          for (const h of held.splice(0)) h.to.write(h.data);
        },
      };
      // Sent in the same packet, after the read.
      if (peek.test(text.slice(at))) holding.release('peek');
    });
    upstream.on('data', (d: Buffer) => (holding ? held.push({ to: client, data: d }) : client.write(d)));
  });
  return {
    listen: () => new Promise<string>((r) => server.listen(0, '127.0.0.1', () => r(`redis://127.0.0.1:${(server.address() as { port: number }).port}`))),
    arm: () => (armed = true),
    disarm: () => (armed = false),
    releases,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe('after a quiet spell', () => {
  let c: TestCluster;
  let proxy: ReturnType<typeof holdingProxy>;

  beforeAll(async () => {
    // Polls far apart, so a round between jobs (which would read the breaker itself) is rare; heartbeats too, since
    // each reads the breaker (with no peek after it), and one of those held by the proxy would hold the job's round.
    c = await startCluster({ POLL_MS: '5000' });
    proxy = holdingProxy(new URL(c.redisUrl), `${c.prefix}:node:b1:breaker`);
    const url = await proxy.listen();
    await c.simWorker('b1', { vramGb: 24, models: [{ name: 'm', sizeGb: 1 }], tokensPerSecond: 4000, loadMsPerGb: 0 }, { REDIS_URL: url, HEARTBEAT_MS: '20000' });
    await c.post('/v1/jobs', { type: 'generate', model: 'm', prompt: 'warm', wait: true });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
    proxy?.close();
  });

  it('sends the peek of a job that comes after a quiet spell before the breaker read is answered', async () => {
    const took: number[] = [];
    // A round between jobs (a poll) may have read the breaker within SYNC_MS of the job: then the job's round reads
    // none and there is nothing to see; try again.
    for (let i = 0; i < 4 && proxy.releases.length < 2; i++) {
      // Longer than SYNC_MS (250 ms): the job's round reads the breaker again.
      await new Promise((r) => setTimeout(r, 600));
      proxy.arm();
      const t0 = Date.now();
      const r = await c.post('/v1/jobs', { type: 'generate', model: 'm', prompt: `after a pause ${i}`, options: { num_predict: 2 }, wait: true });
      took.push(Date.now() - t0);
      proxy.disarm();
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    }
    expect(proxy.releases.length, 'no round read the breaker after a pause').toBeGreaterThan(0);
    // Before: the peek waited for the read's answer, so the proxy held on until HOLD_MS ('timeout').
    expect(proxy.releases, `job times ${took.join(' ')} ms`).toEqual(proxy.releases.map(() => 'peek'));
    expect(Math.max(...took), `job times ${took.join(' ')} ms`).toBeLessThan(HOLD_MS);
  }, 60_000);

  it("routes a request without waiting for a registry read: the API's node list is kept fresh meanwhile", async () => {
    // Every registry read made slow (100 ms): a request that had to wait for one could not be answered at once.
    const shared = c.ctx.registry.shared.bind(c.ctx.registry);
    const spy = vi.spyOn(c.ctx.registry, 'shared').mockImplementation(async (age) => {
      await new Promise((r) => setTimeout(r, 100));
      return shared(age);
    });
    try {
      for (const quiet of [700, 1300]) {
        const before = spy.mock.calls.length;
        await new Promise((r) => setTimeout(r, quiet));
        const reads = spy.mock.calls.length - before;
        // Answered before the event loop turns: no read (100 ms) was waited for.
        const atOnce = await Promise.race([c.ctx.nodes().then(() => true), new Promise((r) => setImmediate(() => r(false)))]);
        expect(atOnce, `after ${quiet} ms quiet`).toBe(true);
        // The list was read while nothing asked for it (before: no read at all between requests).
        expect(reads, 'registry reads while quiet').toBeGreaterThan(0);
      }
    } finally {
      spy.mockRestore();
    }
  });

  it('drops the API\'s cached node list as soon as the registry announces a change', async () => {
    const spy = vi.spyOn(c.ctx.nodes, 'invalidate');
    try {
      await c.ctx.registry.invalidateShared();
      await vi.waitFor(() => expect(spy).toHaveBeenCalled(), { timeout: 2000 });
    } finally {
      spy.mockRestore();
    }
  });
});
