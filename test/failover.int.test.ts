// Failover with real processes: retry elsewhere with the failed node excluded, circuit breaker, SIGKILL recovery,
// poison pills, SIGTERM drain and time limits.
import { afterEach, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from './support/cluster.js';
import { waitFor } from './support/wait.js';

const M = 'm:7b';
const slow = { vramGb: 24, models: [{ name: M, sizeGb: 4 }], tokensPerSecond: 40, loadMsPerGb: 0 }; // 80 tokens/s
const fast = { vramGb: 24, models: [{ name: M, sizeGb: 4 }], tokensPerSecond: 2000, loadMsPerGb: 0 };

const job = async (c: TestCluster, id: string) => (await c.get(`/v1/jobs/${id}`)).body;
const until = (c: TestCluster, id: string, ok: (v: any) => boolean, timeoutMs = 20_000, what = 'job state') =>
  waitFor(async () => {
    const v = await job(c, id);
    return ok(v) ? v : null;
  }, { timeoutMs, what: `${what} of ${id}` });
const faults = (url: string, body: unknown) => fetch(`${url}/admin/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

let c: TestCluster | undefined;
afterEach(async () => {
  await c?.stop();
  c = undefined;
});

describe('failover', () => {
  it('retries a dropped request on another node, excluding the failing one, and records every attempt; the breaker opens and recovers', async () => {
    c = await startCluster({ BREAKER_FAILURES: '2', BREAKER_WINDOW_MS: '30000', BREAKER_COOLDOWN_MS: '1500', WORKER_CONCURRENCY: '1' });
    const a = await c.simWorker('a', fast);
    await c.simWorker('b', fast);
    await faults(a.sim.url, { drop_next: 100, drop_after_tokens: 2 });
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push((await c.post('/v1/jobs', { type: 'generate', model: M, prompt: `j${i}`, options: { num_predict: 8 } })).body.id);
    const views = await Promise.all(ids.map((id) => until(c!, id, (v) => v.state === 'completed' || v.state === 'failed', 30_000)));
    expect(views.map((v) => v.state)).toEqual(views.map(() => 'completed'));
    // Every answer came from b; jobs that a took first failed there and then ran on b, never twice on a.
    expect(new Set(views.map((v) => v.result.node_id))).toEqual(new Set(['b']));
    const retried = views.filter((v) => v.result.routing_decision.attempts.length > 1);
    expect(retried.length).toBeGreaterThan(0);
    for (const v of retried) {
      const attempts = v.result.routing_decision.attempts;
      expect(attempts[0]).toMatchObject({ node_id: 'a', error: { code: 'backend_unavailable' } });
      expect(attempts.at(-1)).toMatchObject({ node_id: 'b' });
      expect(attempts.filter((x: any) => x.node_id === 'a')).toHaveLength(1);
    }
    // Two failures opened a's breaker: it shows in /v1/nodes.
    await c.waitForNode('a', (n) => n.breaker?.state === 'open' || n.breaker?.state === 'half_open');
    // The backend recovers; after the cooldown one probe job closes the breaker and a takes work again.
    await fetch(`${a.sim.url}/admin/reset`, { method: 'POST' });
    await c.waitForNode('a', (n) => n.breaker?.state === 'half_open');
    const pinned = await c.post('/v1/jobs', { type: 'generate', model: M, prompt: 'probe', node_id: 'a', wait: true });
    expect(pinned.body.result?.node_id ?? pinned.body).toBe('a');
    await c.waitForNode('a', (n) => n.breaker?.state === 'closed');
  });

  it('re-runs a SIGKILLed worker’s job on another node within 10 s (default lock settings)', async () => {
    c = await startCluster({ LOCK_DURATION_MS: '8000', STALLED_INTERVAL_MS: '2000' });
    const a = await c.simWorker('a', slow);
    const long = (await c.post('/v1/jobs', { type: 'generate', model: M, prompt: 'long', options: { num_predict: 400, sim_answer_tokens: 400 } })).body.id;
    await until(c, long, (v) => v.state === 'active');
    await c.simWorker('b', fast);
    const killedAt = Date.now();
    a.worker.proc.kill('SIGKILL');
    const done = await until(c, long, (v) => v.state === 'completed', 25_000);
    const recoveredMs = Date.parse(done.started_at) - killedAt;
    process.stdout.write(`SIGKILL recovery: job restarted on ${done.result.node_id} ${recoveredMs} ms after the kill\n`);
    expect(done.result.node_id).toBe('b');
    expect(recoveredMs).toBeLessThan(10_000);
  }, 60_000);

  it('fails a job that crashes its worker twice as a poison pill', async () => {
    c = await startCluster({ LOCK_DURATION_MS: '2000', STALLED_INTERVAL_MS: '500', MAX_STALLED_COUNT: '1' });
    const sim = await c.sim(slow);
    const env = { BACKEND: 'ollama', OLLAMA_URL: sim.url, NODE_ID: 'crashy', NODE_VRAM_GB: '24' };
    let w = await c.worker(env);
    await c.waitForNode('crashy', (n) => n.healthy);
    const id = (await c.post('/v1/jobs', { type: 'generate', model: M, prompt: 'boom', options: { num_predict: 400, sim_answer_tokens: 400 } })).body.id;
    let lastStart: string | null = null;
    for (let crash = 1; crash <= 2; crash++) {
      // Active in a new run (a stalled job still looks active until its lock expires).
      const v = await until(c, id, (x) => x.state === 'active' && x.started_at !== lastStart, 20_000, `active before crash ${crash}`);
      lastStart = v.started_at;
      w.proc.kill('SIGKILL'); // the prompt "crashes" its worker (as an OOM would)
      await w.stop();
      w = await c.worker(env);
    }
    const failed = await until(c, id, (v) => v.state === 'failed', 20_000).catch(async (e: Error) => {
      throw new Error(`${e.message}\njob: ${JSON.stringify(await job(c!, id))}\nworker: ${w.output().slice(-3000)}`);
    });
    expect(failed.error.code).toBe('poison_pill');
    expect(failed.error.message).toMatch(/crashed its worker too many times/);
  }, 60_000);

  it('drains on SIGTERM: the active job goes back to the queue without spending an attempt, and completes elsewhere', async () => {
    c = await startCluster({ DRAIN_MODE: 'requeue' });
    const a = await c.simWorker('a', slow);
    const id = (await c.post('/v1/jobs', { type: 'generate', model: M, prompt: 'drain me', options: { num_predict: 300, sim_answer_tokens: 300 } })).body.id;
    await until(c, id, (v) => v.state === 'active');
    const abortedBefore = a.sim.state().aborted;
    await a.worker.stop('SIGTERM');
    expect(a.worker.proc.exitCode).toBe(0);
    expect((await c.nodes()).map((n) => n.id)).not.toContain('a'); // deregistered at once, not after a TTL
    expect(a.sim.state().aborted).toBeGreaterThan(abortedBefore); // the backend request was stopped
    const back = await job(c, id);
    expect(back).toMatchObject({ state: 'waiting', attempts_made: 0 });
    await c.simWorker('b', fast);
    const done = await until(c, id, (v) => v.state === 'completed');
    expect(done.attempts_made).toBe(1);
    expect(done.result.node_id).toBe('b');
  });

  it('drains on SIGTERM in finish mode: the active job completes first', async () => {
    c = await startCluster({ DRAIN_MODE: 'finish', DRAIN_GRACE_MS: '20000' });
    const a = await c.simWorker('a', slow);
    const id = (await c.post('/v1/jobs', { type: 'generate', model: M, prompt: 'finish me', options: { num_predict: 40, sim_answer_tokens: 40 } })).body.id;
    await until(c, id, (v) => v.state === 'active');
    await a.worker.stop('SIGTERM');
    const done = await job(c, id);
    expect(done).toMatchObject({ state: 'completed', attempts_made: 1 });
    expect(done.result.node_id).toBe('a');
  });

  it('ends a job at its timeout_ms with an error that names the limit, without retrying it', async () => {
    c = await startCluster();
    await c.simWorker('a', slow);
    const r = await c.post('/v1/jobs', { type: 'generate', model: M, prompt: 'too slow', timeout_ms: 400, options: { num_predict: 400, sim_answer_tokens: 400 }, wait: true });
    expect(r.status).toBe(504);
    expect(r.body.error).toMatchObject({ code: 'timeout' });
    expect(r.body.error.message).toMatch(/timeout_ms \(400 ms, queued \+ running\) expired/);
    expect(r.body.attempts_made).toBe(1);
  });
});
