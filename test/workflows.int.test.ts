// Workflows end to end: DAGs as BullMQ flows on real workers and simulated nodes — diamond, full parallelism, SIGKILL
// redelivery, optional and required failures, validation, cancel, step stream, fan-out on a mixed cluster.
import { Job, UnrecoverableError, WaitingChildrenError, Worker } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { simulatedAnswer } from '../apps/node-sim/sim-server.js';
import { createRedis } from '../libs/queue/index.js';
import { GATE_QUEUE, WORKFLOW_QUEUE, gateJobId, stepJobId } from '../libs/workflows/index.js';
import { readSse, startCluster, type TestCluster } from './support/cluster.js';
import { waitFor } from './support/wait.js';

const faults = (url: string, body: unknown) => fetch(`${url}/admin/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const view = async (c: TestCluster, id: string) => (await c.get(`/v1/workflows/${id}`)).body;
const untilWf = (c: TestCluster, id: string, ok: (v: any) => boolean, timeoutMs = 20_000) =>
  waitFor(async () => {
    const v = await view(c, id);
    return ok(v) ? v : null;
  }, { timeoutMs, what: `workflow ${id}` });
const step = (v: any, id: string) => v.steps.find((s: any) => s.id === id);
const served = (c: TestCluster) => c.sims.reduce((n, s) => n + s.state().served, 0);

describe('DAG workflows on one simulated node (+ one that fails on demand)', () => {
  let c: TestCluster;
  let flaky: Awaited<ReturnType<TestCluster['simWorker']>>;
  beforeAll(async () => {
    c = await startCluster();
    // 1 GB model at base 200 tok/s decodes 1600 tok/s: 16 tokens take 10 ms, sim_answer_tokens 1600 take 1 s.
    await c.simWorker('gpu24', { vramGb: 24, models: [{ name: 'm', sizeGb: 1 }], tokensPerSecond: 200, loadMsPerGb: 0 });
    flaky = await c.simWorker('flaky', { vramGb: 8, models: [{ name: 'flaky', sizeGb: 1 }], tokensPerSecond: 2000, loadMsPerGb: 0 });
  }, 60_000);
  afterAll(async () => c?.stop());
  afterEach(async () => {
    await fetch(`${flaky.sim.url}/admin/reset`, { method: 'POST' });
  });

  it('runs a diamond A → B, C → D: A once, B and C from A’s output, D from both; a parent with its steps as children', async () => {
    const before = served(c);
    const r = await c.post('/v1/workflows', {
      name: 'diamond',
      input: { topic: 'rust' },
      steps: [
        { id: 'a', model: 'm', prompt: 'plan {{input.topic}}' },
        { id: 'b', model: 'm', prompt: 'left {{ steps.a.output }}', depends_on: ['a'] },
        { id: 'c', type: 'chat', model: 'm', messages: [{ role: 'user', content: 'right {{steps.a.output}}' }], depends_on: ['a'] },
        { id: 'd', model: 'm', prompt: 'join {{steps.b.output}} / {{steps.c.output}}', depends_on: ['b', 'c'] },
      ],
      wait: true,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const v = r.body;
    expect(v).toMatchObject({ kind: 'dag', name: 'diamond', state: 'completed', progress: { total: 4, completed: 4, percent: 100 } });
    const a = simulatedAnswer({ model: 'm', prompt: 'plan rust' });
    const b = simulatedAnswer({ model: 'm', prompt: `left ${a}` });
    const cc = simulatedAnswer({ model: 'm', prompt: `right ${a}` });
    expect(step(v, 'a')).toMatchObject({ state: 'completed', output: a, node_id: 'gpu24', attempts: 1 });
    expect(step(v, 'b').output).toBe(b);
    expect(step(v, 'c').output).toBe(cc);
    expect(step(v, 'd').output).toBe(simulatedAnswer({ model: 'm', prompt: `join ${b} / ${cc}` }));
    expect(v.result.outputs).toEqual({ a, b, c: cc, d: step(v, 'd').output });
    for (const s of v.steps) expect(s).toMatchObject({ queue: 'infer.m_latest', cached: false, job_id: stepJobId(v.id, s.id) });
    expect(Date.parse(step(v, 'b').started_at)).toBeGreaterThanOrEqual(Date.parse(step(v, 'a').finished_at));
    expect(served(c) - before).toBe(4); // A ran once although two steps depend on it
    // BullMQ: the workflow job completed in its own queue with the four steps as processed children.
    const parent = await waitFor(async () => {
      const j = await Job.fromId(c.ctx.producer.queue(WORKFLOW_QUEUE), v.id);
      return j && (await j.getState()) === 'completed' ? j : null;
    }, { what: 'the workflow job to be completed in BullMQ' });
    expect(parent.returnvalue.outputs).toEqual(v.result.outputs);
    const deps = await parent.getDependencies();
    expect(Object.keys(deps.processed ?? {}).sort()).toEqual(['a', 'b', 'c', 'd'].map((s) => `${c.prefix}:infer.m_latest:${stepJobId(v.id, s)}`).sort());
    // Bull Board lists the workflow queue (the registry hash), and each step is a job of its class queue.
    expect(JSON.parse((await c.ctx.redis.hget(c.ctx.keys.queues, WORKFLOW_QUEUE))!)).toEqual({ kind: 'workflow', name: WORKFLOW_QUEUE });
    const board = await waitFor(async () => {
      const q = (await c.get('/admin/queues/api/queues')).body.queues?.find((x: { name: string }) => x.name === WORKFLOW_QUEUE);
      return q?.counts?.completed >= 1 ? q : null;
    }, { what: 'the workflow queue in Bull Board' });
    expect(board.counts.completed).toBeGreaterThanOrEqual(1);
    const stepJob = await c.get(`/v1/jobs/${stepJobId(v.id, 'd')}`);
    expect(stepJob.body).toMatchObject({ state: 'completed', queue: 'infer.m_latest' });
  });

  it('starts a step as soon as its own dependencies are done, not when a whole wave is', async () => {
    const r = await c.post('/v1/workflows', {
      steps: [
        { id: 'slow', model: 'm', prompt: 'slow', options: { sim_answer_tokens: 2400 } },
        { id: 'fast', model: 'm', prompt: 'fast' },
        { id: 'after_fast', model: 'm', prompt: 'next {{steps.fast.output}}', depends_on: ['fast'] },
        { id: 'end', model: 'm', prompt: 'end', depends_on: ['slow', 'after_fast'] },
      ],
      wait: true,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const v = r.body;
    expect(Date.parse(step(v, 'after_fast').finished_at)).toBeLessThan(Date.parse(step(v, 'slow').finished_at));
    expect(Date.parse(step(v, 'end').started_at)).toBeGreaterThanOrEqual(Date.parse(step(v, 'slow').finished_at));
  });

  it('lets dependents of a failed optional step run without it (its output renders empty)', async () => {
    await faults(flaky.sim.url, { fail_next: 1, fail_status: 400, fail_message: 'bad things' });
    const r = await c.post('/v1/workflows', {
      steps: [
        { id: 'maybe', model: 'flaky', prompt: 'try', optional: true },
        { id: 'sure', model: 'm', prompt: 'x' },
        { id: 'after', model: 'm', prompt: 'got [{{steps.maybe.output}}] and {{steps.sure.output}}', depends_on: ['maybe', 'sure'] },
      ],
      wait: true,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const v = r.body;
    expect(v.state).toBe('completed');
    expect(step(v, 'maybe')).toMatchObject({ state: 'failed', optional: true, error: { code: 'backend_error' } });
    expect(step(v, 'maybe').error.message).toMatch(/bad things/);
    expect(step(v, 'after').state).toBe('completed');
    expect(step(v, 'after').output).toBe(simulatedAnswer({ model: 'm', prompt: `got [] and ${simulatedAnswer({ model: 'm', prompt: 'x' })}` }));
    expect(v.progress).toMatchObject({ completed: 2, failed: 1 });
  });

  it('fails the workflow with a required step’s error: dependents skipped, a running sibling aborted', async () => {
    await faults(flaky.sim.url, { fail_next: 1, fail_status: 400, fail_message: 'model exploded' });
    const before = served(c);
    const r = await c.post('/v1/workflows', {
      steps: [
        { id: 'long', model: 'm', prompt: 'long', options: { sim_answer_tokens: 16_000 } }, // ~10 s unless aborted
        { id: 'must', model: 'flaky', prompt: 'try' },
        { id: 'next', model: 'm', prompt: 'after {{steps.must.output}}', depends_on: ['must'] },
      ],
      wait: true,
    });
    expect(r.status).toBe(502); // backend_error
    const v = r.body;
    expect(v).toMatchObject({ state: 'failed', failed_step: 'must', error: { code: 'backend_error' } });
    expect(v.error.message).toMatch(/model exploded/);
    expect(step(v, 'next').state).toBe('skipped');
    expect(step(v, 'long')).toMatchObject({ state: 'cancelled', error: { code: 'cancelled' } });
    expect(Date.parse(v.finished_at) - Date.parse(v.created_at)).toBeLessThan(8000);
    expect(served(c) - before).toBe(0); // nothing completed: the failure stopped everything
    const parent = await waitFor(async () => {
      const j = await Job.fromId(c.ctx.producer.queue(WORKFLOW_QUEUE), v.id);
      return j && (await j.getState()) === 'failed' ? j : null;
    }, { what: 'the workflow job to be failed in BullMQ' });
    expect(parent.failedReason).toMatch(/^\[backend_error\] step "must" failed/);
  });

  it('rejects bad DAGs at submit with a 400 that names the problem', async () => {
    const post = (body: unknown) => c.post('/v1/workflows', body);
    const msg = async (body: unknown) => {
      const r = await post(body);
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      return r.body.error.message as string;
    };
    expect(
      await msg({ steps: [{ id: 'a', model: 'm', prompt: 'x', depends_on: ['c'] }, { id: 'b', model: 'm', prompt: 'x', depends_on: ['a'] }, { id: 'c', model: 'm', prompt: 'x', depends_on: ['b'] }] }),
    ).toMatch(/steps dependency cycle: (a → b → c → a|b → c → a → b|c → a → b → c)/);
    expect(await msg({ steps: [{ id: 'a', model: 'm', prompt: 'x', depends_on: ['nope'] }] })).toMatch(/steps\.0\.depends_on unknown step "nope"/);
    expect(await msg({ steps: [{ id: 'a', model: 'm', prompt: 'x' }, { id: 'a', model: 'm', prompt: 'y' }] })).toMatch(/steps\.1\.id duplicate step id "a"/);
    expect(await msg({ input: { x: 1 }, steps: [{ id: 'a', model: 'm', prompt: 'about {{input.topic}}' }] })).toMatch(/steps\.0\.prompt unknown template variable \{\{input\.topic\}\}: input has x/);
    expect(await msg({ steps: [{ id: 'a', model: 'm', prompt: '{{steps.b.output}}' }, { id: 'b', model: 'm', prompt: 'x' }] })).toMatch(/step "a" does not depend on "b"/);
    expect(await msg({ steps: [{ id: 'a', model: 'm', prompt: '{{secrets.key}}' }] })).toMatch(/unknown template variable \{\{secrets\.key\}\}/);
    expect(await msg({ steps: [{ id: 'a', model: 'm', prompt: 'x', depends_on: ['a'] }] })).toMatch(/depends on itself/);
    expect(await msg({ steps: [{ id: 'a:b', model: 'm', prompt: 'x' }] })).toMatch(/steps\.0\.id must be 1-64 letters/);
    expect(await msg({ steps: [{ id: 'a', type: 'chat', model: 'm' }] })).toMatch(/steps\.0\.messages is required for a chat step/);
    expect(await msg({ steps: [] })).toMatch(/steps must hold at least one step/);
    expect(await msg({ steps: [{ id: 'a', model: 'm', prompt: 'x', extra: 1 }] })).toMatch(/steps\.0\.extra is not a known field/);
    const unknownModel = await post({ steps: [{ id: 'a', model: 'm', prompt: 'x' }, { id: 'b', model: 'gpt-9', prompt: 'x' }] });
    expect(unknownModel.status).toBe(422);
    expect(unknownModel.body.error.message).toMatch(/^step "b": no registered node has model "gpt-9"/);
  });

  it('streams step events then the result; DELETE cancels the remaining steps', async () => {
    const r = await c.post('/v1/workflows', {
      steps: [
        { id: 'one', model: 'm', prompt: 'one' },
        { id: 'two', model: 'm', prompt: 'two {{steps.one.output}}', depends_on: ['one'] },
      ],
    });
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ state: 'running', kind: 'dag', steps: 2, stream_url: `/v1/workflows/${r.body.id}/stream` });
    const events = await readSse(`${c.url}${r.body.stream_url}`);
    expect(events.map((e) => `${e.event}:${e.data.step ?? e.data.state}:${e.data.state}`)).toEqual([
      'step:one:queued',
      'step:one:completed',
      'step:two:queued',
      'step:two:completed',
      'done:completed:completed',
    ]);
    expect(events.at(-1)!.data.result.outputs.two).toBe(simulatedAnswer({ model: 'm', prompt: `two ${simulatedAnswer({ model: 'm', prompt: 'one' })}` }));

    const slow = await c.post('/v1/workflows', {
      steps: [
        { id: 'long', model: 'm', prompt: 'long', options: { sim_answer_tokens: 16_000 } },
        { id: 'later', model: 'm', prompt: 'later', depends_on: ['long'] },
      ],
    });
    await untilWf(c, slow.body.id, (v) => step(v, 'long').state === 'running');
    const del = await c.del(`/v1/workflows/${slow.body.id}`);
    expect(del.status).toBe(202);
    expect(del.body.state).toBe('cancelling');
    const v = await untilWf(c, slow.body.id, (x) => x.state === 'cancelled');
    expect(step(v, 'long')).toMatchObject({ state: 'cancelled', error: { code: 'cancelled' } });
    expect(step(v, 'later').state).toBe('skipped');
    expect((await c.del(`/v1/workflows/${slow.body.id}`)).status).toBe(409);
    expect((await c.get('/v1/workflows/wf-unknown')).status).toBe(404);
  });
});

describe('a step redelivered after its worker is SIGKILLed', () => {
  let c: TestCluster;
  afterAll(async () => c?.stop());

  it('still counts down its dependents once, and they run once', async () => {
    c = await startCluster({ LOCK_DURATION_MS: '3000', STALLED_INTERVAL_MS: '1000' });
    const model = { name: 'm', sizeGb: 1 };
    const a = await c.simWorker('a', { vramGb: 24, models: [model], tokensPerSecond: 25, loadMsPerGb: 0 }); // 200 tok/s
    const r = await c.post('/v1/workflows', {
      steps: [
        { id: 'root', model: 'm', prompt: 'root', options: { sim_answer_tokens: 4000 } }, // ~20 s on a: still running when b is up, however loaded the machine
        { id: 'left', model: 'm', prompt: 'L {{steps.root.output}}', depends_on: ['root'] },
        { id: 'right', model: 'm', prompt: 'R {{steps.root.output}}', depends_on: ['root'] },
        { id: 'join', model: 'm', prompt: 'J {{steps.left.output}} {{steps.right.output}}', depends_on: ['left', 'right'] },
      ],
    });
    await untilWf(c, r.body.id, (v) => step(v, 'root').state === 'running');
    const b = await c.simWorker('b', { vramGb: 24, models: [model], tokensPerSecond: 2000, loadMsPerGb: 0 });
    a.worker.proc.kill('SIGKILL');
    const v = await untilWf(c, r.body.id, (x) => x.state === 'completed' || x.state === 'failed', 40_000);
    expect(v.state).toBe('completed');
    expect(step(v, 'root').node_id).toBe('b');
    for (const s of ['left', 'right', 'join']) expect(step(v, s)).toMatchObject({ state: 'completed', node_id: 'b', attempts: 1 });
    // b answered root once and each dependent once; a never finished anything.
    expect(b.sim.state().served).toBe(4);
    expect(a.sim.state().served).toBe(0);
    // The step events: root completed once, each dependent queued and completed once.
    const events = await c.ctx.redis.xrange(c.ctx.keys.stream(v.id), '-', '+');
    const seen = events.map(([, f]) => JSON.parse(f[3]!)).filter((e) => e.step).map((e) => `${e.step}:${e.state}`);
    for (const s of ['root', 'left', 'right', 'join']) expect(seen.filter((x) => x === `${s}:completed`)).toHaveLength(1);
    for (const s of ['left', 'right', 'join']) expect(seen.filter((x) => x === `${s}:queued`)).toHaveLength(1);
  }, 60_000);
});

describe('coordinator idempotency and repair (no worker: the test plays the worker)', () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster();
    // A registered node without a worker behind it: jobs are routed to its class queue and stay there.
    await c.ctx.registry.heartbeat(
      {
        id: 'ghost',
        url: 'http://127.0.0.1:9',
        backend: 'ollama',
        type: 'gpu',
        healthy: true,
        simulated: true,
        host: 'ghost',
        vram_total_mb: 24_000,
        vram_available_mb: 24_000,
        ram_total_mb: 64_000,
        ram_available_mb: 64_000,
        capacity_mb: 23_000,
        buffer_mb: 200,
        models_available: [{ name: 'm:latest', size_mb: 1000, need_mb: 1200 }],
        models_loaded: [],
        slots: 1,
        last_heartbeat: Date.now(),
      },
      600_000,
    );
  });
  afterAll(async () => c?.stop());

  const result = (text: string) => ({
    model: 'm',
    response: text,
    prompt_tokens: 1,
    completion_tokens: 1,
    total_duration_ms: 1,
    load_duration_ms: 0,
    prompt_eval_duration_ms: 0,
    eval_duration_ms: 1,
    node_id: 'ghost',
    node_url: 'http://127.0.0.1:9',
    simulated: true,
    routing_decision: { requested_node: null, selected_node: 'ghost', reason: 'test', queued_ms: 0, queue: 'infer.m_latest', candidates: [], attempts: [] },
  });

  it('a duplicate completion of a shared dependency changes nothing; a completion whose hook never ran is repaired by the sweep', async () => {
    const { coordinator } = c.ctx;
    const { id } = await coordinator.start({
      kind: 'dag',
      priority: 5,
      steps: ['a', 'b', 'c'].map((s) => ({ id: s, call: { type: 'generate' as const, model: 'm', prompt: s === 'a' ? 'a' : `${s} {{steps.a.output}}` }, depends_on: s === 'a' ? [] : ['a'], optional: false, routing: {} })),
    });
    const q = c.ctx.producer.queue('infer.m_latest');
    const jobA = (await Job.fromId(q, stepJobId(id, 'a')))!;
    expect(await jobA.getState()).toBe('prioritized');
    // The test is the worker: A completes; the hook runs twice (e.g. a redelivered completion).
    const fake = { id: jobA.id, timestamp: jobA.timestamp, processedOn: Date.now(), attemptsMade: 1 };
    await coordinator.stepFinished({ id, step: 'a' }, fake, { state: 'completed', result: result('A!') as any });
    await coordinator.stepFinished({ id, step: 'a' }, fake, { state: 'completed', result: result('A!') as any });
    const deps = await c.ctx.redis.hgetall(c.ctx.keys.workflowDeps(id));
    expect(deps).toEqual({ a: '0', b: '0', c: '0' });
    const jobB = (await Job.fromId(q, stepJobId(id, 'b')))!;
    expect((jobB.data as any).call.prompt).toBe('b A!');
    expect(await q.getJobCountByTypes('waiting', 'prioritized')).toBe(3); // a (never taken here), b, c: no second b or c
    const sv = await coordinator.view(id);
    expect(sv!.progress).toMatchObject({ completed: 1, queued: 2, total: 3 });

    // B completes in BullMQ but its worker dies before the hook: the sweep notices and settles it.
    await q.remove(stepJobId(id, 'a'));
    const conn = createRedis(c.redisUrl, 'worker');
    const w = new Worker('infer.m_latest', undefined, { connection: conn, prefix: c.prefix, autorun: false, skipVersionCheck: true });
    const token = 'test-token';
    let taken = await w.getNextJob(token, { block: false });
    while (taken && taken.id !== stepJobId(id, 'b')) taken = await w.getNextJob(token, { block: false });
    await taken!.moveToCompleted(result('B!'), token, false);
    await c.ctx.redis.hset(c.ctx.keys.workflow(id), 'updated_at', '0'); // quiet long enough for the sweep
    expect(await coordinator.repair.reconcile(Date.now(), 1000)).toBeGreaterThanOrEqual(1);
    const after = await coordinator.view(id);
    expect(step(after, 'b')).toMatchObject({ state: 'completed', output: 'B!' });
    expect(after!.state).toBe('running'); // c is still waiting for a worker
    await w.close();
    conn.disconnect();
  });

  it('puts a workflow job released too early back to waiting for its steps', async () => {
    const { coordinator } = c.ctx;
    const { id } = await coordinator.start({ kind: 'dag', priority: 5, steps: [{ id: 'only', call: { type: 'generate', model: 'm', prompt: 'x' }, depends_on: [], optional: false, routing: {} }] });
    const parents = c.ctx.producer.queue(WORKFLOW_QUEUE);
    // Someone removes the gate and the step's job (say in Bull Board): BullMQ releases the parent with a step pending.
    await c.ctx.producer.queue(GATE_QUEUE).remove(gateJobId(id));
    await c.ctx.producer.queue('infer.m_latest').remove(stepJobId(id, 'only'));
    const conn = createRedis(c.redisUrl, 'worker');
    const w = new Worker(WORKFLOW_QUEUE, undefined, { connection: conn, prefix: c.prefix, autorun: false, skipVersionCheck: true });
    const job = await w.getNextJob('tok', { block: false });
    expect(job?.id).toBe(id);
    await expect(coordinator.finaliser.finalise(job!, 'tok')).rejects.toBeInstanceOf(WaitingChildrenError);
    expect(await (await Job.fromId(parents, id))!.getState()).toBe('waiting-children');
    expect(await c.ctx.producer.queue(GATE_QUEUE).getJob(gateJobId(id))).toBeDefined();
    // The sweep then notices the step's job is gone and settles it; the gate goes and the parent is released for good.
    await c.ctx.redis.hset(c.ctx.keys.workflow(id), 'updated_at', '0');
    await coordinator.repair.reconcile(Date.now(), 1000);
    expect((await coordinator.view(id))!.steps[0]).toMatchObject({ state: 'cancelled', error: { message: 'the step job was removed from its queue' } });
    expect(await (await Job.fromId(parents, id))!.getState()).toBe('waiting');
    await w.close();
    conn.disconnect();
  });

  it('shows a step failed by BullMQ’s stalled checker as a poison pill, in its workflow as in its job view', async () => {
    const { coordinator } = c.ctx;
    const { id } = await coordinator.start({ kind: 'dag', priority: 5, steps: [{ id: 'crash', call: { type: 'generate', model: 'm', prompt: 'oom' }, depends_on: [], optional: false, routing: {} }] });
    const jobId = stepJobId(id, 'crash');
    const q = c.ctx.producer.queue('infer.m_latest');
    // A worker takes the step and dies with it: no lock renewal, no after-job hook. BullMQ's stalled checker marks the
    // job (maxStalledCount 0), and BullMQ's processor fails it on its next take, in BullMQ's own words.
    const conn = createRedis(c.redisUrl, 'worker');
    const w = new Worker('infer.m_latest', undefined, { connection: conn, prefix: c.prefix, autorun: false, skipVersionCheck: true, lockDuration: 300, stalledInterval: 100, maxStalledCount: 0 });
    const take = async (token: string) => {
      let taken = await w.getNextJob(token, { block: false });
      while (taken && taken.id !== jobId) taken = await w.getNextJob(token, { block: false });
      return taken!;
    };
    await take('dying');
    void w.startStalledCheckTimer();
    await waitFor(async () => (await Job.fromId(q, jobId))?.deferredFailure, { what: 'the stalled checker to mark the step job' });
    const again = await take('next');
    expect(again.deferredFailure).toBe('job stalled more than allowable limit');
    await again.moveToFailed(new UnrecoverableError(again.deferredFailure), 'next', false);
    await w.close();
    conn.disconnect();

    // The sweep finds the failed job whose hook never ran; the step reads its failure with the job view's decoder.
    await c.ctx.redis.hset(c.ctx.keys.workflow(id), 'updated_at', '0');
    expect(await coordinator.repair.reconcile(Date.now(), 1000)).toBeGreaterThanOrEqual(1);
    const v = await coordinator.view(id);
    expect(step(v, 'crash')).toMatchObject({ state: 'failed', error: { code: 'poison_pill' } });
    expect(v).toMatchObject({ failed_step: 'crash', error: { code: 'poison_pill' } });
    const jobView = await c.get(`/v1/jobs/${jobId}`);
    expect(jobView.body).toMatchObject({ state: 'failed', error: { code: 'poison_pill' } });
    expect(step(v, 'crash').error).toEqual(jobView.body.error);
  });
});

describe('fan-out: POST /v1/distribute on a mixed cluster', () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster();
    const models = (big: boolean) => [{ name: 'small:1b', sizeGb: 1 }, { name: 'mid:8b', sizeGb: 5 }, ...(big ? [{ name: 'big:70b', sizeGb: 40 }] : [])];
    await c.simWorker('gpu8', { vramGb: 8, models: models(false), tokensPerSecond: 2000, loadMsPerGb: 0 });
    await c.simWorker('gpu80', { vramGb: 80, models: models(true), tokensPerSecond: 2000, loadMsPerGb: 0 });
  }, 60_000);
  afterAll(async () => c?.stop());

  it('runs 4 prompts × 3 models as one flow; each pair on a node that fits its model', async () => {
    const prompts = ['alpha one', 'beta two', 'gamma three', 'delta four'];
    const models = ['small:1b', 'mid:8b', 'big:70b'];
    const r = await c.post('/v1/distribute', { prompts, models, pairing: 'cross', wait: true });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const { pairs, summary } = r.body.result;
    expect(r.body).toMatchObject({ kind: 'distribute', state: 'completed' });
    expect(summary, JSON.stringify(pairs.filter((p: any) => p.error))).toMatchObject({ pairs: 12, completed: 12, failed: 0 });
    expect(pairs).toHaveLength(12);
    for (const p of pairs) {
      expect(p.answer).toBe(simulatedAnswer({ model: p.model, prompt: p.prompt }));
      expect(p.prompt).toBe(prompts[p.prompt_index]);
      expect(p.model).toBe(models[p.model_index]);
      if (p.model === 'big:70b') expect(p.node_id).toBe('gpu80');
      expect(p.total_duration_ms).toBeGreaterThan(0);
    }
    expect(new Set(pairs.map((p: any) => `${p.prompt_index}/${p.model_index}`)).size).toBe(12);
    expect(summary.by_node.gpu80).toBeGreaterThanOrEqual(4);

    const zip = await c.post('/v1/distribute', { prompts: prompts.slice(0, 3), models, pairing: 'zip', wait: true });
    expect(zip.body.result.pairs.map((p: any) => [p.prompt, p.model])).toEqual([
      ['alpha one', 'small:1b'],
      ['beta two', 'mid:8b'],
      ['gamma three', 'big:70b'],
    ]);
    const bad = await c.post('/v1/distribute', { prompts, models, pairing: 'zip' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/models pairing "zip" needs as many models as prompts \(4 prompts, 3 models\)/);
    expect((await c.post('/v1/distribute', { prompts: [], models })).body.error.message).toMatch(/prompts must hold at least one prompt/);
  });
});
