// The typed client (libs/client) against a real cluster: jobs (submit, run, wait, job, list, cancel), token streams,
// nodes, workflows, typed errors; and a stream that resumes across a restart of the API process: `hydra api` as a real
// child process, SIGKILLed mid-stream and started again on the same port, while the client's iterator goes on.
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadRequestError, ConflictError, Hydra, NotFoundError, type JobStreamEvent } from '../libs/client/index.js';
import { HYDRA_BIN, startCluster, testEnv, type TestCluster } from './support/cluster.js';
import { freePort, waitFor } from './support/wait.js';

const MODEL = 'qwen3:4b';
const gen = (prompt: string, extra: Record<string, unknown> = {}) => ({ type: 'generate' as const, model: MODEL, prompt, cache: false, ...extra });
const tokensOf = (events: JobStreamEvent[]) => events.flatMap((e) => (e.event === 'token' ? [e.text] : []));

describe('the client against a cluster', () => {
  let c: TestCluster;
  let h: Hydra;
  beforeAll(async () => {
    c = await startCluster();
    await c.simWorker('n1', { vramGb: 16, models: [{ name: MODEL, sizeGb: 2.5 }], tokensPerSecond: 200, loadMsPerGb: 0 });
    h = new Hydra({ url: c.url, apiKey: '' });
  });
  afterAll(async () => c?.stop());

  it('nodes, cluster stats, run, submit + wait, job, stream', async () => {
    expect((await h.nodes()).map((n) => n.id)).toEqual(['n1']);
    const done = await h.run(gen('hello there'));
    expect(done).toMatchObject({ state: 'completed', model: MODEL, type: 'generate' });
    expect(done.result?.response).toEqual(expect.any(String));
    expect(done.result?.node_id).toBe('n1');

    const a = await h.submit(gen('second', { options: { num_predict: 40, sim_answer_tokens: 40 } }));
    expect(a).toMatchObject({ status: 202, state: 'waiting', status_url: `/v1/jobs/${a.id}`, stream_url: `/v1/jobs/${a.id}/stream` });
    const events: JobStreamEvent[] = [];
    for await (const e of h.stream(a.id)) events.push(e);
    const last = events.at(-1)!;
    expect(last.event).toBe('done');
    expect(tokensOf(events).join('')).toBe(last.event === 'done' ? last.result.response : null);
    expect(tokensOf(events).length).toBeGreaterThan(1);
    const waited = await h.wait(a.id, { timeoutMs: 20_000 });
    expect(waited).toMatchObject({ id: a.id, state: 'completed' });
    expect(await h.job(a.id)).toMatchObject({ id: a.id, state: 'completed', result: { response: waited.result!.response } });
    expect((await h.cluster()).queues['infer.qwen3_4b']).toMatchObject({ completed: expect.any(Number) });
  });

  it('lists recent jobs newest first, filtered by state and model; refuses bad query values with 400', async () => {
    const first = (await h.submit(gen('list one'))).id;
    await h.wait(first);
    const second = (await h.submit(gen('list two'))).id;
    await h.wait(second);
    const all = await h.jobs({ limit: 50 });
    const ids = all.map((j) => j.id);
    expect(ids.indexOf(second)).toBeGreaterThanOrEqual(0);
    expect(ids.indexOf(second)).toBeLessThan(ids.indexOf(first));
    for (let i = 1; i < all.length; i++) expect(Date.parse(all[i - 1]!.created_at)).toBeGreaterThanOrEqual(Date.parse(all[i]!.created_at));
    expect(all.find((j) => j.id === second)).toEqual({
      id: second,
      state: 'completed',
      type: 'generate',
      model: MODEL,
      queue: 'infer.qwen3_4b',
      priority: 5,
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      finished_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      node_id: 'n1',
    });
    expect(await h.jobs({ limit: 1 })).toHaveLength(1);
    expect((await h.jobs({ state: 'completed', model: MODEL })).every((j) => j.state === 'completed' && j.model === MODEL)).toBe(true);
    expect(await h.jobs({ model: 'other:1b' })).toEqual([]);
    expect(await h.jobs({ state: 'failed' })).toEqual([]);

    const bad = await h.jobs({ limit: 0, state: 'bogus' }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(BadRequestError);
    expect((bad as BadRequestError).fields.map((f) => f.field).sort()).toEqual(['limit', 'state']);
    expect(bad).toMatchObject({ status: 400, code: 'bad_request', requestId: expect.any(String) });
  });

  it('cancels a running job (it ends cancelled; a second cancel is a ConflictError); unknown ids are NotFoundError', async () => {
    const id = (await h.submit(gen('long', { options: { num_predict: 2000, sim_answer_tokens: 2000 } }))).id;
    await waitFor(async () => (await h.job(id)).state === 'active', { what: 'the long job to start' });
    // The list shows it running, on its node.
    await waitFor(async () => (await h.jobs({ state: 'active' })).find((j) => j.id === id && j.node_id === 'n1'), { what: 'the active job in the list' });
    expect(await h.cancel(id)).toMatchObject({ id, state: 'cancelling' });
    const end = await h.wait(id, { timeoutMs: 15_000 });
    expect(end).toMatchObject({ state: 'failed', error: { code: 'cancelled' } });
    await expect(h.cancel(id)).rejects.toBeInstanceOf(ConflictError);
    const nf = await h.job('no-such-job').catch((e: unknown) => e);
    expect(nf).toBeInstanceOf(NotFoundError);
    expect(nf).toMatchObject({ code: 'not_found', status: 404, retryable: false });
    const bad = await h.submit({ type: 'generate', model: MODEL } as never).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(BadRequestError);
    expect((bad as BadRequestError).fields).toContainEqual({ field: 'prompt', problem: expect.any(String) });
  });

  it('batches: create (Idempotency-Key), get with pages, results as NDJSON in request order, cancel', async () => {
    const requests = ['b0', 'b1', 'b2'].map((p) => gen(p));
    const key = `batch-${Date.now()}`;
    const b = await h.batches.create({ requests }, { idempotencyKey: key });
    expect(b).toMatchObject({ object: 'batch', state: 'running', counts: { total: 3 }, results_url: `/v1/batches/${b.id}/results` });
    expect((await h.batches.create({ requests }, { idempotencyKey: key })).id).toBe(b.id);
    const ended = await waitFor(async () => {
      const v = await h.batches.get(b.id);
      return v.state === 'completed' ? v : null;
    }, { what: 'the batch to complete' });
    expect(ended.counts).toMatchObject({ total: 3, completed: 3 });
    const page = await h.batches.get(b.id, { offset: 1, limit: 1 });
    expect(page.results.map((r) => r.index)).toEqual([1]);
    expect(page.next_offset).toBe(2);
    const all = [];
    for await (const r of h.batches.results(b.id)) all.push(r);
    expect(all.map((r) => [r.index, r.state])).toEqual([[0, 'completed'], [1, 'completed'], [2, 'completed']]);
    expect(all[1]!.result?.response).toContain('b1');
    const long = await h.batches.create({ requests: [gen('long batch', { options: { num_predict: 2000, sim_answer_tokens: 2000 } })] });
    expect(await h.batches.cancel(long.id)).toMatchObject({ id: long.id, state: 'cancelled' });
    await expect(h.batches.get('no-such-batch')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('workflows: submit (wait), get, and the stream of a finished one', async () => {
    const w = await h.workflows.submit({ steps: [{ id: 'a', model: MODEL, prompt: 'one' }, { id: 'b', model: MODEL, prompt: 'two: {{steps.a.output}}', depends_on: ['a'] }], wait: true, timeout_ms: 20_000 });
    expect(w).toMatchObject({ status: 200, state: 'completed' });
    expect(await h.workflows.get(w.id)).toMatchObject({ id: w.id, state: 'completed' });
    const events = [];
    for await (const e of h.workflows.stream(w.id)) events.push(e.event);
    expect(events.at(-1)).toBe('done');
  });
});

describe('a token stream across a restart of the API process', () => {
  let c: TestCluster;
  let api: ChildProcess | undefined;
  let out = '';
  let port = 0;

  const startApi = async () => {
    api = spawn(process.execPath, [HYDRA_BIN, 'api'], { env: { ...process.env, ...testEnv(c.prefix, c.redisUrl, { PORT: String(port), HOST: '127.0.0.1' }) }, stdio: ['ignore', 'pipe', 'pipe'] });
    api.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    api.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  };
  const stopApi = async (signal: NodeJS.Signals) => {
    const p = api;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    await exited;
  };

  beforeAll(async () => {
    c = await startCluster();
    // 20 tokens/s: a 200-token answer streams for seconds, long enough to restart the API in the middle.
    await c.simWorker('slow', { vramGb: 16, models: [{ name: MODEL, sizeGb: 2.5 }], tokensPerSecond: 20, loadMsPerGb: 0 });
    port = await freePort();
    await startApi();
  });
  afterAll(async () => {
    await stopApi('SIGKILL');
    await c?.stop();
  });

  it('delivers every token exactly once, in order, when the API is SIGKILLed and started again mid-stream', async () => {
    const h = new Hydra({ url: `http://127.0.0.1:${port}`, apiKey: '', reconnect: { attempts: 20, delayMs: 100, maxDelayMs: 1000 } });
    await waitFor(() => h.nodes().then((n) => n.length === 1), { timeoutMs: 30_000, what: `the API child on port ${port} (output: ${out})` });
    const { id } = await h.submit(gen('a long story', { options: { num_predict: 200, sim_answer_tokens: 200 } }));
    const events: JobStreamEvent[] = [];
    let restarted: Promise<void> | undefined;
    let tokensBeforeKill = 0;
    /** Events that arrived once the new API process was started (so through a new connection to it). */
    let afterRestart = 0;
    let up = false;
    for await (const e of h.stream(id)) {
      events.push(e);
      if (up) afterRestart++;
      if (!restarted && tokensOf(events).length >= 10) {
        tokensBeforeKill = tokensOf(events).length;
        restarted = (async () => {
          await stopApi('SIGKILL');
          await startApi();
          up = true;
        })();
      }
    }
    await restarted;
    expect(afterRestart).toBeGreaterThan(5);
    const last = events.at(-1)!;
    expect(last.event).toBe('done');
    const tokens = tokensOf(events);
    // The whole answer, nothing repeated or lost: the tokens make up exactly the final response.
    expect(tokens.join('')).toBe(last.event === 'done' ? last.result.response : null);
    expect(tokens.length).toBeGreaterThan(tokensBeforeKill);
    const ids = events.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    const seq = (s: string) => s.split('-').map(Number) as [number, number];
    for (let i = 1; i < ids.length; i++) {
      const [a, b] = [seq(ids[i - 1]!), seq(ids[i]!)];
      expect(a[0] < b[0] || (a[0] === b[0] && a[1] < b[1])).toBe(true);
    }
    // The job ran once, was never cancelled, and the API really went away (a fresh process answered the rest).
    expect(await h.job(id)).toMatchObject({ state: 'completed', attempts_made: 1 });
    expect(out.match(/"msg":"api listening"/g)?.length).toBe(2);
  });
});
