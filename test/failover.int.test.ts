// Failover with real processes: retry elsewhere with the failed node excluded, circuit breaker, SIGKILL recovery (fast,
// through liveness) and SIGSTOP (not taken for dead, no double completion), poison pills, SIGTERM drain and time limits.
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster, type WorkerProc } from './support/cluster.js';
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

/** A slow simulated node 'crashy' with its worker, and a long job submitted to it: the node whose worker a test kills. */
async function crashyNodeWithJob(c: TestCluster) {
  const sim = await c.sim(slow);
  const env = { BACKEND: 'ollama', OLLAMA_URL: sim.url, NODE_ID: 'crashy', NODE_VRAM_GB: '24' };
  const worker = await c.worker(env);
  await c.waitForNode('crashy', (n) => n.healthy);
  const id = (await c.post('/v1/jobs', { type: 'generate', model: M, prompt: 'boom', options: { num_predict: 400, sim_answer_tokens: 400 } })).body.id as string;
  return { sim, env, worker, id };
}

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
    // Routing caches the node list for 250 ms: submit until it pins to a (half-open serves one probe job).
    const probe = await waitFor(async () => {
      const p = await c!.post('/v1/jobs', { type: 'generate', model: M, prompt: 'probe', node_id: 'a' });
      return /pinned to requested node a/.test(p.body.reason) ? p.body : null;
    }, { what: 'routing to pin to a' });
    const pinned = await until(c, probe.id, (v) => v.state === 'completed');
    expect(pinned.result.node_id).toBe('a');
    await c.waitForNode('a', (n) => n.breaker?.state === 'closed');
  });

  it('re-runs a SIGKILLed worker’s job on another node in about a second, long before its 6 s lock expires (5 kills)', async () => {
    c = await startCluster({ LOCK_DURATION_MS: '6000', STALLED_INTERVAL_MS: '2000' });
    const env = (id: string, url: string) => ({ BACKEND: 'ollama', OLLAMA_URL: url, NODE_ID: id, NODE_VRAM_GB: '24' });
    const started = (w: WorkerProc) =>
      waitFor(() => w.output().includes('node agent started'), { timeoutMs: 20_000, what: `worker ${w.nodeId} to start` }).catch((e: Error) => {
        throw new Error(`${e.message}\nworker output:\n${w.output().slice(-3000)}`);
      });
    const nodes = [await c.simWorker('a', slow), await c.simWorker('b', slow)];
    const live = `${c.prefix}:live`;
    const recoveries: number[] = [];
    for (let run = 0; run < 5; run++) {
      // Both workers registered (the one restarted last time included) and idle, so the job can land on either.
      await waitFor(async () => (await c!.ctx.redis.zcard(live)) === 2 && nodes.every((n) => n.sim.state().active_requests === 0), { what: 'both workers registered and idle' });
      // Long enough (~50 s on the slow node) that it runs until it is cancelled below, however loaded the machine.
      const id = (await c.post('/v1/jobs', { type: 'generate', model: M, prompt: `long ${run}`, options: { num_predict: 2000, sim_answer_tokens: 2000 } })).body.id;
      await until(c, id, (v) => v.state === 'active');
      const victim = await waitFor(() => nodes.find((n) => n.sim.state().active_requests > 0), { what: 'the request to reach a backend' });
      const other = nodes.find((n) => n !== victim)!;
      const killedAt = Date.now();
      await victim.worker.stop('SIGKILL');
      const again = await until(c, id, (v) => v.state === 'active' && Date.parse(v.started_at) > killedAt, 15_000, 'restart elsewhere');
      await waitFor(() => other.sim.state().active_requests > 0, { what: `node ${other.worker.nodeId} to see the request` });
      recoveries.push(Date.parse(again.started_at) - killedAt);
      // Back in its queue without spending an attempt, and without a poison-pill strike for its first death.
      expect(again.attempts_made).toBe(0);
      expect(await c.ctx.redis.hget(`${c.prefix}:${again.queue}:${id}`, 'stc')).toBeNull();
      await c.del(`/v1/jobs/${id}`);
      await until(c, id, (v) => v.state === 'failed', 15_000, 'cancelled');
      victim.worker = await c.worker(env(victim.worker.nodeId, victim.sim.url));
      await started(victim.worker);
    }
    const sorted = [...recoveries].sort((x, y) => x - y);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    process.stdout.write(`SIGKILL recovery (kill → job started on the other node), ms: ${recoveries.join(', ')}; median ${median}\n`);
    // Target ≤ 2 s (measured medians are in docs/reliability.md); 3.5 s leaves room for a loaded 2-core CI machine. Each
    // run must beat the lock: lock expiry alone takes 6 s or more (6.0-8.0 s measured before fast failover).
    expect(median).toBeLessThanOrEqual(3500);
    expect(Math.max(...recoveries)).toBeLessThan(6000);
  }, 180_000);

  it('does not take a paused worker (SIGSTOP) for dead; woken after its job ran again elsewhere, it cannot complete it: completed once', async () => {
    c = await startCluster({ LOCK_DURATION_MS: '4000', STALLED_INTERVAL_MS: '1000', WORKER_CONCURRENCY: '1' });
    const paced = { ...slow, tokensPerSecond: 100 }; // 300 tokens: 3 s
    const a = await c.simWorker('a', paced);
    const b = await c.simWorker('b', paced);
    const completions: string[] = [];
    const sub = new Redis(c.redisUrl);
    try {
      await sub.subscribe(c.ctx.keys.channels.done);
      sub.on('message', (_ch: string, raw: string) => {
        const m = JSON.parse(raw) as { id: string; state: string };
        if (m.state === 'completed') completions.push(m.id);
      });
      // b is alive all along (its liveness checks run) but busy with a job of its own, so the paused one's job waits.
      const filler = (await c.post('/v1/jobs', { type: 'generate', model: M, prompt: 'keeps b busy', node_id: 'b', options: { num_predict: 2000, sim_answer_tokens: 2000 } })).body.id;
      await until(c, filler, (v) => v.state === 'active');
      const id = (await c.post('/v1/jobs', { type: 'generate', model: M, prompt: 'paused', options: { num_predict: 300, sim_answer_tokens: 300 } })).body.id;
      const first = await until(c, id, (v) => v.state === 'active');
      await waitFor(() => a.sim.state().active_requests > 0, { what: 'the request to reach a' });
      a.worker.proc.kill('SIGSTOP');
      const stoppedAt = Date.now();
      // a's connection stays open: not taken for dead. Its lock (renewed every 2 s) runs out 2-4 s after the pause;
      // fast failover, had it taken a for dead, would have removed it within about a second.
      const lock = `${c.prefix}:${first.queue}:${id}:lock`;
      await waitFor(async () => (await c!.ctx.redis.exists(lock)) === 0, { timeoutMs: 10_000, what: 'the paused worker’s lock to expire' });
      const lockGoneMs = Date.now() - stoppedAt;
      await c.del(`/v1/jobs/${filler}`);
      const again = await until(c, id, (v) => v.state === 'active' && Date.parse(v.started_at) > stoppedAt, 20_000, 'restart on b');
      await waitFor(() => b.sim.state().active_requests > 0, { what: 'b to see the request' });
      // Back through BullMQ's stalled checker once the lock was gone: one strike, as before fast failover.
      expect(lockGoneMs).toBeGreaterThanOrEqual(1900);
      expect(await c.ctx.redis.hget(`${c.prefix}:${again.queue}:${id}`, 'stc')).toBe('1');
      // a's whole answer waits in its socket (the simulated node has sent it); wake a while b runs the job.
      await waitFor(() => a.sim.state().active_requests === 0, { what: 'a’s backend to finish sending' });
      a.worker.proc.kill('SIGCONT');
      await waitFor(() => /lock lost/.test(a.worker.output()), { timeoutMs: 10_000, what: 'the woken worker to find its lock lost' });
      const done = await until(c, id, (v) => v.state === 'completed', 20_000);
      expect(done.result.node_id).toBe('b');
      await waitFor(() => completions.includes(id), { what: 'the done message' });
      expect(completions.filter((x) => x === id)).toHaveLength(1);
      // One end in the token stream; the woken worker completed nothing and said why.
      const entries = await c.ctx.redis.xrange(c.ctx.keys.stream(id), '-', '+');
      expect(entries.filter(([, f]) => f[1] === 'done')).toHaveLength(1);
      expect(a.worker.output()).not.toMatch(/"msg":"job completed"/);
      const refusal = /"msg":"([^"]*lock lost[^"]*)"/.exec(a.worker.output())?.[1];
      process.stdout.write(`SIGSTOP: the paused worker's lock expired ${lockGoneMs} ms after the pause; the job ran again on b; woken, a logged "${refusal}"\n`);
    } finally {
      sub.disconnect();
    }
  }, 90_000);

  it('moves jobs pinned to a node that died (running and waiting) to any qualifying node', async () => {
    c = await startCluster({ LOCK_DURATION_MS: '3000', STALLED_INTERVAL_MS: '1000', WORKER_CONCURRENCY: '1' });
    const a = await c.simWorker('a', slow);
    await c.simWorker('b', fast);
    const running = (await c.post('/v1/jobs', { type: 'generate', model: M, prompt: 'running on a', node_id: 'a', options: { num_predict: 400, sim_answer_tokens: 400 } })).body.id;
    await until(c, running, (v) => v.state === 'active');
    const waiting = (await c.post('/v1/jobs', { type: 'generate', model: M, prompt: 'waiting for a', node_id: 'a', options: { num_predict: 8 } })).body.id;
    expect((await job(c, waiting)).state).toBe('waiting');
    a.worker.proc.kill('SIGKILL');
    for (const id of [waiting, running]) {
      const done = await until(c, id, (v) => v.state === 'completed', 30_000);
      expect(done.result.node_id).toBe('b');
      expect(done.result.routing_decision.requested_node).toBe('a');
      expect(done.result.routing_decision.reason).toMatch(/requested node a stopped heartbeating before running it: moved to any qualifying node/);
    }
  }, 60_000);

  it('fails a job that stalls twice (lock expiry, no fast failover) as a poison pill', async () => {
    c = await startCluster({ LOCK_DURATION_MS: '2000', STALLED_INTERVAL_MS: '500', MAX_STALLED_COUNT: '1', LIVENESS_CHECK_MS: '0' });
    const { env, worker: first, id } = await crashyNodeWithJob(c);
    let w = first;
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

  it('fails a job whose worker dies three times as a poison pill: the first death is free, each later one a strike', async () => {
    // A lock far longer than a recovery, so every death goes through fast failover, not through the stalled checker.
    c = await startCluster({ LOCK_DURATION_MS: '20000', STALLED_INTERVAL_MS: '5000', MAX_STALLED_COUNT: '1' });
    // A live process that cannot run the job (no such model) but checks its peers: it requeues the crashed worker's job.
    await c.simWorker('watcher', { vramGb: 24, models: [{ name: 'other:1b', sizeGb: 1 }], tokensPerSecond: 2000, loadMsPerGb: 0 });
    const { sim, env, worker: first, id } = await crashyNodeWithJob(c);
    let w = first;
    let lastStart: string | null = null;
    const strikes: (string | null)[] = [];
    for (let crash = 1; crash <= 3; crash++) {
      const v = await until(c, id, (x) => x.state === 'active' && x.started_at !== lastStart, 20_000, `active before crash ${crash}`);
      lastStart = v.started_at;
      await waitFor(() => sim.state().active_requests > 0, { what: `the request of run ${crash} to reach the backend` });
      await w.stop('SIGKILL'); // the prompt "crashes" its worker (as an OOM would)
      // Requeued by the watcher long before the 20 s lock expires.
      await until(c, id, (x) => x.state === 'waiting', 10_000, `requeued after crash ${crash}`);
      strikes.push(await c.ctx.redis.hget(`${c.prefix}:${v.queue}:${id}`, 'stc'));
      w = await c.worker(env);
    }
    expect(strikes).toEqual([null, '1', '2']);
    const failed = await until(c, id, (v) => v.state === 'failed', 20_000).catch(async (e: Error) => {
      throw new Error(`${e.message}\njob: ${JSON.stringify(await job(c!, id))}\nworker: ${w.output().slice(-3000)}`);
    });
    expect(failed.error.code).toBe('poison_pill');
    expect(failed.error.message).toMatch(/crashed its worker too many times \(its worker process died 3 times/);
    expect(failed.attempts_made).toBe(1);
  }, 90_000);

  it('drains on SIGTERM: the active job goes back to the queue without spending an attempt, and completes elsewhere', async () => {
    c = await startCluster({ DRAIN_MODE: 'requeue' });
    const a = await c.simWorker('a', slow);
    const id = (await c.post('/v1/jobs', { type: 'generate', model: M, prompt: 'drain me', options: { num_predict: 300, sim_answer_tokens: 300 } })).body.id;
    await until(c, id, (v) => v.state === 'active');
    await waitFor(() => a.sim.state().active_requests > 0, { what: 'the request to reach the backend' });
    const abortedBefore = a.sim.state().aborted;
    await a.worker.stop('SIGTERM');
    expect(a.worker.proc.exitCode).toBe(0);
    expect((await c.nodes()).map((n) => n.id)).not.toContain('a'); // deregistered at once, not after a TTL
    await waitFor(() => a.sim.state().aborted > abortedBefore, { what: 'the backend to see the request stopped' });
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

  it('ends a backend request at BACKEND_TIMEOUT_MS with an error that names the limit (retryable: it retries, then fails)', async () => {
    c = await startCluster({ BACKEND_TIMEOUT_MS: '300', JOB_ATTEMPTS: '2' });
    const a = await c.simWorker('a', slow);
    const before = a.sim.state().aborted;
    const r = await c.post('/v1/jobs', { type: 'generate', model: M, prompt: 'slow backend', options: { num_predict: 400, sim_answer_tokens: 400 }, wait: true });
    expect(r.status).toBe(504);
    expect(r.body.error.code).toBe('timeout');
    expect(r.body.error.message).toMatch(/BACKEND_TIMEOUT_MS \(300 ms\)/);
    expect(r.body.attempts_made).toBe(2);
    // Each timed-out request was closed on the backend.
    await waitFor(() => a.sim.state().aborted >= before + 2, { what: 'the backend to see both requests closed' });
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

describe('a client that goes away', () => {
  it('cancels its job when it leaves a wait request (the backend sees the abort), unless it asked to detach', async () => {
    c = await startCluster({ STREAM_RECONNECT_GRACE_MS: '300' });
    const a = await c.simWorker('a', slow);
    const before = a.sim.state().aborted;
    const ac = new AbortController();
    const req = fetch(`${c.url}/v1/jobs`, { method: 'POST', signal: ac.signal, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'generate', model: M, prompt: 'leave', options: { num_predict: 400, sim_answer_tokens: 400 }, wait: true }) }).catch(() => null);
    await waitFor(() => a.sim.state().active_requests > 0, { what: 'the backend to start' });
    ac.abort();
    await req;
    await waitFor(() => a.sim.state().aborted > before, { what: 'the backend to see the abort' });
    // detach: the job outlives its client.
    const ac2 = new AbortController();
    const req2 = fetch(`${c.url}/v1/jobs`, { method: 'POST', signal: ac2.signal, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'generate', model: M, prompt: 'stay', detach: true, options: { num_predict: 40, sim_answer_tokens: 40 }, wait: true }) }).catch(() => null);
    await waitFor(() => a.sim.state().active_requests > 0, { what: 'the detached job to start' });
    ac2.abort();
    await req2;
    const stats = await waitFor(async () => {
      const s = (await c!.get('/v1/cluster/stats')).body;
      return s.totals.completed >= 1 ? s : null;
    }, { what: 'the detached job to complete' });
    expect(stats.totals.completed).toBe(1);
  });

  it('cancels a streamed job when its reader leaves and does not come back within the grace; a reconnect keeps it', async () => {
    c = await startCluster({ STREAM_RECONNECT_GRACE_MS: '500' });
    await c.simWorker('a', slow);
    const open = (id: string) => {
      const ac = new AbortController();
      void fetch(`${c!.url}/v1/jobs/${id}/stream`, { signal: ac.signal }).then((r) => r.body?.getReader().read()).catch(() => null);
      return ac;
    };
    const kept = (await c.post('/v1/jobs', { type: 'generate', model: M, prompt: 'kept', options: { num_predict: 120, sim_answer_tokens: 120 } })).body.id;
    const first = open(kept);
    await until(c, kept, (v) => v.state === 'active');
    await waitFor(async () => Number(await c!.ctx.redis.get(c!.ctx.keys.streamReaders(kept))) === 1, { what: 'the reader to register' });
    first.abort();
    open(kept); // reconnects at once (as EventSource does with Last-Event-ID)
    const done = await until(c, kept, (v) => v.state === 'completed' || v.state === 'failed');
    expect(done.state).toBe('completed');

    const dropped = (await c.post('/v1/jobs', { type: 'generate', model: M, prompt: 'dropped', options: { num_predict: 400, sim_answer_tokens: 400 } })).body.id;
    const reader = open(dropped);
    await until(c, dropped, (v) => v.state === 'active');
    await waitFor(async () => Number(await c!.ctx.redis.get(c!.ctx.keys.streamReaders(dropped))) === 1, { what: 'the reader to register' });
    reader.abort();
    const failed = await until(c, dropped, (v) => v.state === 'failed');
    expect(failed.error.code).toBe('cancelled');
    // Why, in the API's own words (it used to say "DELETE /v1/jobs/:id" whatever the cause).
    expect(failed.error.message).toMatch(/the client disconnected from its stream and did not come back/);
  });
});
