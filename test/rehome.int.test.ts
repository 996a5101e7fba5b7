// Jobs whose node went away: rehomed jobs keep their min_vram_gb bucket and their age; a restarting node's model stays routable.
import { afterEach, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from './support/cluster.js';
import { waitFor } from './support/wait.js';

const M = 'm:7b';
const model = (tokensPerSecond: number, vramGb: number) => ({ vramGb, models: [{ name: M, sizeGb: 4 }], tokensPerSecond, loadMsPerGb: 0 });

const view = async (c: TestCluster, id: string) => (await c.get(`/v1/jobs/${id}`)).body;
const until = (c: TestCluster, id: string, ok: (v: any) => boolean, timeoutMs = 20_000, what = 'job state') =>
  waitFor(async () => {
    const v = await view(c, id);
    return ok(v) ? v : null;
  }, { timeoutMs, what: `${what} of ${id}` });

let c: TestCluster | undefined;
afterEach(async () => {
  await c?.stop();
  c = undefined;
});

describe('rehoming', () => {
  it('keeps the min_vram_gb bucket and the age of a job pinned to a node that died', async () => {
    c = await startCluster({ LOCK_DURATION_MS: '3000', STALLED_INTERVAL_MS: '1000', WORKER_CONCURRENCY: '1' });
    const a = await c.simWorker('a', model(40, 24));
    // Too small for the job's bucket: it must not take the job once rehomed.
    await c.simWorker('small', model(2000, 16));
    const blocker = (await c.post('/v1/jobs', { type: 'generate', model: M, prompt: 'running on a', node_id: 'a', options: { num_predict: 400, sim_answer_tokens: 400 } })).body.id;
    await until(c, blocker, (v) => v.state === 'active');
    const pinned = (await c.post('/v1/jobs', { type: 'generate', model: M, prompt: 'needs 20 GB', node_id: 'a', min_vram_gb: 20, options: { num_predict: 8 } })).body.id;
    const before = await view(c, pinned);
    expect(before).toMatchObject({ state: 'waiting', queue: 'node.a' });

    a.worker.proc.kill('SIGKILL');
    // Moved to the 24 GB bucket's class queue, still waiting (the 16 GB node does not qualify), as old as it was.
    const moved = await until(c, pinned, (v) => v.queue !== 'node.a', 20_000, 'rehome');
    expect(moved).toMatchObject({ state: 'waiting', queue: 'infer.m_7b.min24576mb', submitted_at: before.submitted_at, priority: before.priority });
    expect(moved.routing_decision.reason).toMatch(/requested node a stopped heartbeating before running it: moved to any qualifying node/);

    await c.simWorker('big', model(2000, 48));
    const done = await until(c, pinned, (v) => v.state === 'completed', 30_000);
    expect(done.result.node_id).toBe('big');
    expect(done.submitted_at).toBe(before.submitted_at);
  }, 60_000);
});

describe('a model whose only worker is restarting', () => {
  it('is queued within MODEL_GRACE_MS (202, not 422) and runs when the worker comes back', async () => {
    c = await startCluster({ MODEL_GRACE_MS: '60000' });
    const { sim, worker } = await c.simWorker('solo', model(2000, 24));
    await worker.stop('SIGTERM');
    await waitFor(async () => (await c!.nodes()).every((n) => n.id !== 'solo'), { what: 'solo to leave the registry' });

    const r = await c.post('/v1/jobs', { type: 'generate', model: M, prompt: 'while restarting', options: { num_predict: 4 } });
    expect(r.status).toBe(202);
    // A workflow whose steps need that model is queued the same way (as after a Redis failover, when nodes re-register).
    const wf = await c.post('/v1/workflows', { name: 'while restarting', steps: [{ id: 'a', model: M, prompt: 'x', options: { num_predict: 2 } }] });
    expect(wf.status, JSON.stringify(wf.body)).toBe(202);
    const waiting = await view(c, r.body.id);
    expect(waiting).toMatchObject({ state: 'waiting', queue: 'infer.m_7b' });
    expect(waiting.routing_decision.reason).toMatch(/no live node has model "m:7b"; node\(s\) that had it stopped heartbeating within MODEL_GRACE_MS: solo \(\d+ s ago\); queued until one comes back/);

    await c.worker({ BACKEND: 'ollama', OLLAMA_URL: sim.url, NODE_ID: 'solo', NODE_VRAM_GB: '24' });
    const done = await until(c, r.body.id, (v) => v.state === 'completed', 20_000);
    expect(done.result.node_id).toBe('solo');
  }, 60_000);

  it('is refused (422) once the grace has passed', async () => {
    c = await startCluster({ MODEL_GRACE_MS: '1' });
    const { worker } = await c.simWorker('solo', model(2000, 24));
    await worker.stop('SIGTERM');
    await waitFor(async () => (await c!.nodes()).every((n) => n.id !== 'solo'), { what: 'solo to leave the registry' });
    const r = await c.post('/v1/jobs', { type: 'generate', model: M, prompt: 'too late', options: { num_predict: 4 } });
    expect(r.status).toBe(422);
  }, 60_000);
});
