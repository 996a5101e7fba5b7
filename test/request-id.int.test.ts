// The request id: echoed on every surface, stored with the job or workflow (every step job, including those the
// coordinator adds later), and in both the API's access log and the worker's log lines, so one grep follows a request
// across processes. The access log never shows keys or queries.
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../libs/logger/index.js';
import { startCluster, type TestCluster } from './support/cluster.js';
import { waitFor } from './support/wait.js';

const KEY = 'request-id-test-key-0123456789';
const auth = { authorization: `Bearer ${KEY}` };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The JSON lines of a log so far (a line cut mid-write is skipped). */
const lines = (text: string): Record<string, unknown>[] =>
  text.split('\n').flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });

describe('request id', () => {
  let c: TestCluster;
  let apiLog = '';
  const send = (path: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}) =>
    fetch(`${c.url}${path}`, {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers: { ...(init.body === undefined ? {} : { 'content-type': 'application/json' }), ...init.headers },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    });
  const accessLine = (id: string, path: string) => lines(apiLog).find((l) => l.part === 'http' && l.requestId === id && l.path === path);

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        apiLog += chunk.toString();
        done();
      },
    });
    c = await startCluster({ API_KEYS: KEY }, { logger: createLogger({ name: 'api', level: 'info', destination: sink }) });
    await c.simWorker('n1', { vramGb: 16, models: [{ name: 'qwen3:4b', sizeGb: 2.5 }], tokensPerSecond: 200, loadMsPerGb: 0 });
  });
  afterAll(async () => c?.stop());

  it('follows a job from the API to the worker: header, job view, both processes’ logs', async () => {
    const id = 'trace-7f3a.2024:01_b-c';
    const r = await send('/v1/jobs', { body: { type: 'generate', model: 'qwen3:4b', prompt: 'hi', wait: true }, headers: { ...auth, 'x-request-id': id } });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-request-id')).toBe(id);
    const answer = (await r.json()) as { id: string; request_id?: string };
    expect(answer.request_id).toBe(id);

    const view = await send(`/v1/jobs/${answer.id}`, { headers: auth });
    expect(((await view.json()) as { request_id?: string }).request_id).toBe(id);

    const line = await waitFor(() => accessLine(id, '/v1/jobs'), { what: 'the access-log line of the submit' });
    expect(line).toMatchObject({ method: 'POST', status: 200, msg: 'request completed' });
    expect(typeof line.ms).toBe('number');
    const worker = c.workers[0]!;
    const done = await waitFor(() => lines(worker.output()).find((l) => l.requestId === id && l.msg === 'job completed'), { what: "the worker's line for the job" });
    expect(done.jobId).toBe(answer.id);
  });

  it('follows a workflow: its view, and the worker lines of the step added at submit and of the steps the coordinator added later', async () => {
    const id = 'trace-wf-41d2';
    // The orchestrator adds its stages as earlier ones settle: only `analyze` exists at submit; `decompose`, the
    // subtask runs (t2's once t1's settled) and `synthesize` are built worker-side by the coordinator.
    const body = { prompt: 'Write a tokenizer and a parser', light_model: 'qwen3:4b', heavy_model: 'qwen3:4b', models: ['qwen3:4b'], wait: true };
    const r = await send('/v1/orchestrate', { body, headers: { ...auth, 'x-request-id': id } });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-request-id')).toBe(id);
    const end = (await r.json()) as { id: string; request_id?: string; steps: { id: string; job_id: string | null; cached: boolean }[] };
    expect(end.request_id).toBe(id);
    expect(end.steps.map((s) => s.id)).toEqual(['analyze', 'decompose', 't1-m0', 't2-m0', 'synthesize']);
    expect(end.steps.every((s) => !s.cached && s.job_id)).toBe(true);

    const view = await send(`/v1/workflows/${end.id}`, { headers: auth });
    expect(((await view.json()) as { request_id?: string }).request_id).toBe(id);
    const synthesize = await send(`/v1/jobs/${end.steps.at(-1)!.job_id}`, { headers: auth });
    expect(((await synthesize.json()) as { request_id?: string }).request_id).toBe(id);

    const worker = c.workers[0]!;
    for (const s of end.steps) {
      const done = await waitFor(() => lines(worker.output()).find((l) => l.jobId === s.job_id && l.msg === 'job completed'), { what: `the worker's line for step ${s.id}` });
      expect(done.requestId, `step ${s.id}`).toBe(id);
    }
  });

  it('stores the generated id with a workflow submitted without one', async () => {
    const r = await send('/v1/distribute', { body: { prompts: ['a'], models: ['qwen3:4b'] }, headers: auth });
    expect(r.status).toBe(202);
    const got = r.headers.get('x-request-id');
    expect(got).toMatch(UUID);
    const { id } = (await r.json()) as { id: string };
    const view = await waitFor(
      async () => {
        const v = (await (await send(`/v1/workflows/${id}`, { headers: auth })).json()) as { state: string; request_id?: string; steps: { job_id: string | null }[] };
        return v.state === 'completed' && v;
      },
      { what: 'the fan-out to complete' },
    );
    expect(view.request_id).toBe(got);
    const jobId = view.steps[0]!.job_id!;
    const done = await waitFor(() => lines(c.workers[0]!.output()).find((l) => l.jobId === jobId && l.msg === 'job completed'), { what: "the worker's line for the pair" });
    expect(done.requestId).toBe(got);
  });

  it('carries the id on the Ollama and OpenAI surfaces too, and on errors', async () => {
    const ollama = await send('/api/generate', { body: { model: 'qwen3:4b', prompt: 'hi', stream: false }, headers: { ...auth, 'x-request-id': 'ollama-1' } });
    expect(ollama.status).toBe(200);
    expect(ollama.headers.get('x-request-id')).toBe('ollama-1');
    const ollamaJob = await send(`/v1/jobs/${ollama.headers.get('x-hydra-job-id')}`, { headers: auth });
    expect(((await ollamaJob.json()) as { request_id?: string }).request_id).toBe('ollama-1');

    const openai = await send('/v1/chat/completions', { body: { model: 'qwen3:4b', messages: [{ role: 'user', content: 'hi' }] }, headers: { ...auth, 'x-request-id': 'openai-1' } });
    expect(openai.status).toBe(200);
    expect(openai.headers.get('x-request-id')).toBe('openai-1');
    const openaiJob = await send(`/v1/jobs/${openai.headers.get('x-hydra-job-id')}`, { headers: auth });
    expect(((await openaiJob.json()) as { request_id?: string }).request_id).toBe('openai-1');

    const unauthorized = await send('/v1/nodes', { headers: { 'x-request-id': 'no-key-1' } });
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get('x-request-id')).toBe('no-key-1');
    const missing = await send('/v1/no-such-route', { headers: { ...auth, 'x-request-id': 'missing-1' } });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('x-request-id')).toBe('missing-1');
    await waitFor(() => accessLine('no-key-1', '/v1/nodes')?.status === 401, { what: 'the 401 in the access log' });
  });

  it.each([
    ['none', undefined],
    ['one with a space', 'two words'],
    ['one too long', 'x'.repeat(129)],
    ['one with a newline-ish character', 'a\tb'],
  ])('generates a uuid when the client sends %s', async (_name, sent) => {
    const r = await send('/v1/jobs', { body: { type: 'generate', model: 'qwen3:4b', prompt: 'hi' }, headers: { ...auth, ...(sent === undefined ? {} : { 'x-request-id': sent }) } });
    expect(r.status).toBe(202);
    const got = r.headers.get('x-request-id');
    expect(got).toMatch(UUID);
    const { id } = (await r.json()) as { id: string };
    const view = await send(`/v1/jobs/${id}`, { headers: auth });
    expect(((await view.json()) as { request_id?: string }).request_id).toBe(got);
    await waitFor(() => accessLine(got!, '/v1/jobs'), { what: 'the access-log line with the generated id' });
  });

  it('never logs the Authorization header, the key, a query string or a body', async () => {
    const secret = 'query-secret-5b9e';
    const prompt = 'body-secret-prompt-41c7';
    await send(`/v1/cluster/stats?api_key=${secret}`, { headers: { ...auth, 'x-request-id': 'quiet-1' } });
    await send('/v1/jobs', { body: { type: 'generate', model: 'qwen3:4b', prompt, wait: true }, headers: { ...auth, 'x-request-id': 'quiet-2' } });
    await waitFor(() => accessLine('quiet-1', '/v1/cluster/stats') && accessLine('quiet-2', '/v1/jobs'), { what: 'both access-log lines' });
    expect(apiLog).not.toContain(KEY);
    expect(apiLog).not.toContain(secret);
    expect(apiLog).not.toContain(prompt);
    expect(apiLog.toLowerCase()).not.toContain('bearer');
  });
});
