// The simulated Ollama node over real HTTP: API shapes, deterministic answers, memory model, faults, aborts, OpenAI routes.
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../test/support/wait.js';
import { createSimNode, parseModelsArg, schemaInstance, simulatedAnswer, type SimNode, type SimNodeOptions } from './sim-server.js';
import { footprint } from './sim-sizing.js';

/** The simulator's GB: GiB (2^30 bytes), the unit of --vram-gb and of NODE_VRAM_GB. */
const GiB = 1024 ** 3;

const nodes: SimNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.close()));
});

async function sim(opts: Partial<SimNodeOptions> = {}): Promise<SimNode> {
  const n = await createSimNode({ vramGb: 24, models: [{ name: 'm:8b', sizeGb: 8 }, { name: 'emb', sizeGb: 0.5, embeddingLength: 16 }], fast: true, ...opts });
  nodes.push(n);
  return n;
}

/** Answers in tests are inspected field by field: their JSON is typed loosely. */
type LooseResponse = Omit<Response, 'json'> & { json(): Promise<any> };

async function post(n: SimNode, path: string, body: unknown, init: RequestInit = {}): Promise<LooseResponse> {
  return fetch(n.url + path, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json' }, ...init });
}

const getJson = async (n: SimNode, path: string): Promise<any> => (await fetch(n.url + path)).json();
const lines = (text: string): any[] => text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));

/** A raw HTTP exchange that reports whether the server ended the answer properly (fetch hides a cut connection's data). */
function rawPost(n: SimNode, path: string, body: unknown): Promise<{ status: number; text: string; complete: boolean }> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = request(n.url + path, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      answered = true;
      let text = '';
      const settle = (): void => resolve({ status: res.statusCode ?? 0, text, complete: res.complete });
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', settle);
      res.on('error', settle);
      res.on('close', settle);
    });
    req.on('error', (e) => {
      if (!answered) reject(e);
    });
    req.end(JSON.stringify(body));
  });
}

describe('Ollama model endpoints', () => {
  it('answers version, tags, ps and show in Ollama shapes, labelled simulated', async () => {
    const n = await sim();
    const version = await fetch(`${n.url}/api/version`);
    expect(version.headers.get('x-hydra-simulated')).toBe('1');
    expect(await version.json()).toEqual({ version: '0.12.0-simulated' });

    const tags = await getJson(n, '/api/tags');
    expect(tags.models).toHaveLength(2);
    expect(tags.models[0]).toMatchObject({
      name: 'm:8b',
      model: 'm:8b',
      size: 8 * GiB,
      digest: expect.stringMatching(/^[0-9a-f]{64}$/),
      details: { format: 'gguf', family: 'simulated', parameter_size: '13.3B', quantization_level: 'Q4_K_M' },
    });
    expect(Date.parse(tags.models[0].modified_at)).not.toBeNaN();

    const show = await (await post(n, '/api/show', { model: 'm:8b' })).json();
    expect(show.model_info).toMatchObject({
      'general.architecture': 'llama',
      'llama.block_count': 40,
      'llama.attention.head_count': 40,
      'llama.attention.head_count_kv': 8,
      'llama.attention.key_length': 128,
      'llama.attention.value_length': 128,
      'llama.embedding_length': 5120,
      'llama.context_length': 40960,
    });
    // A chat model declared without capabilities can complete and call tools (most of Ollama's library can).
    expect(show.capabilities).toEqual(['completion', 'tools']);
    const embShow = await (await post(n, '/api/show', { model: 'emb' })).json();
    expect(embShow.model_info['llama.embedding_length']).toBe(16);
    expect(embShow.capabilities).toEqual(['embedding']);

    const missing = await post(n, '/api/show', { model: 'nope' });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('x-hydra-simulated')).toBe('1');
    expect(await missing.json()).toEqual({ error: "model 'nope' not found" });

    expect(await getJson(n, '/api/ps')).toEqual({ models: [] });
    await post(n, '/api/generate', { model: 'm:8b', prompt: 'hi', stream: false });
    const ps = await getJson(n, '/api/ps');
    // Loaded: 8 GiB of weights + f16 KV cache for 4096 tokens × 4 slots (2 × 40 layers × 8 kv heads × 128 × 2 bytes
    // = 160 KiB a token: 2.5 GiB) + the compute graph (4 · 512 · (1 + 4 · 5120 + 16384 · 41) bytes).
    const size = 8 * GiB + 2.5 * GiB + 4 * 512 * (1 + 4 * 5120 + 16384 * 41);
    expect(ps.models).toEqual([
      expect.objectContaining({ name: 'm:8b', model: 'm:8b', size, size_vram: size, context_length: 4096, digest: tags.models[0].digest, details: expect.any(Object) }),
    ]);
    expect(Date.parse(ps.models[0].expires_at)).toBeGreaterThan(Date.now());
  });
});

describe('generation', () => {
  it('streams NDJSON, one token per line in order, then done with nanosecond durations', async () => {
    // m:8b decodes at 400 * 8 / 8 = 400 tokens/s: 16 tokens take about 40 ms.
    const n = await sim({ fast: false, tokensPerSecond: 400, loadMsPerGb: 5, loadFixedMs: 0 });
    const res = await post(n, '/api/generate', { model: 'm:8b', prompt: 'Why is the sky blue?' });
    expect(res.headers.get('content-type')).toBe('application/x-ndjson');
    const objs = lines(await res.text());
    const tokens = objs.filter((o) => !o.done);
    const final = objs[objs.length - 1];
    expect(tokens).toHaveLength(16);
    expect(tokens.every((t) => t.model === 'm:8b' && typeof t.created_at === 'string' && t.done === false)).toBe(true);
    const text = tokens.map((t) => t.response).join('');
    expect(text).toBe('simulated answer from m:8b to: Why is the sky blue? lorem ipsum dolor sit amet consectetur');
    expect(text).toBe(simulatedAnswer({ model: 'm:8b', prompt: 'Why is the sky blue?' }));
    expect(final).toMatchObject({ done: true, done_reason: 'stop', response: '', prompt_eval_count: 5, eval_count: 16 });
    // Nanoseconds: 16 tokens at 2.5 ms are at least 30 ms = 3e7 ns; loading 8 GB at 5 ms/GB at least 35 ms.
    expect(final.eval_duration).toBeGreaterThan(3e7);
    expect(final.eval_duration).toBeLessThan(5e9);
    expect(final.load_duration).toBeGreaterThan(3.5e7);
    expect(final.total_duration).toBeGreaterThanOrEqual(final.eval_duration + final.load_duration);
    expect(final.prompt_eval_duration).toBeGreaterThan(0);
  });

  it('caps the answer at num_predict with done_reason "length", and answers one object when stream is false', async () => {
    const n = await sim();
    const res = await post(n, '/api/generate', { model: 'm:8b', prompt: 'hello there', stream: false, options: { num_predict: 4 } });
    expect(res.headers.get('content-type')).toContain('application/json');
    const body = await res.json();
    expect(body).toMatchObject({ model: 'm:8b', response: 'simulated answer from m:8b', done: true, done_reason: 'length', eval_count: 4, prompt_eval_count: 2 });
    const long = await (await post(n, '/api/generate', { model: 'm:8b', prompt: 'x', stream: false, options: { sim_answer_tokens: 40 } })).json();
    expect(long.eval_count).toBe(40);
    expect(long.response.split(' ')).toHaveLength(40);
  });

  it('chat streams message pieces and answers the last user message', async () => {
    const n = await sim();
    const res = await post(n, '/api/chat', { model: 'm:8b', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'tell me a joke' }] });
    const objs = lines(await res.text());
    const text = objs.filter((o) => !o.done).map((o) => o.message.content).join('');
    expect(objs.every((o) => o.message.role === 'assistant')).toBe(true);
    expect(text).toBe(simulatedAnswer({ model: 'm:8b', prompt: 'tell me a joke' }));
    expect(objs[objs.length - 1]).toMatchObject({ done: true, done_reason: 'stop', prompt_eval_count: 6, eval_count: 16, message: { content: '' } });
  });

  it('answers a valid instance of a JSON schema format, streamed in pieces', async () => {
    const n = await sim();
    const schema = {
      type: 'object',
      properties: {
        title: { type: 'string', minLength: 12 },
        kind: { type: 'string', enum: ['plan', 'code'] },
        count: { type: 'integer', minimum: 3 },
        ok: { type: 'boolean' },
        subtasks: { type: 'array', items: { $ref: '#/$defs/Subtask' } },
        note: { anyOf: [{ type: 'null' }, { type: 'string' }] },
      },
      required: ['title', 'kind', 'count', 'ok', 'subtasks'],
      $defs: { Subtask: { type: 'object', properties: { id: { type: 'string' }, deps: { type: 'array', items: { type: 'string' } } }, required: ['id', 'deps'] } },
    };
    const objs = lines(await (await post(n, '/api/generate', { model: 'm:8b', prompt: 'plan it', format: schema })).text());
    const pieces = objs.filter((o) => !o.done);
    expect(pieces.length).toBeGreaterThan(3);
    const value = JSON.parse(pieces.map((o) => o.response).join(''));
    expect(value).toEqual({ title: 'simulatedxxx', kind: 'plan', count: 3, ok: true, subtasks: [{ id: 'simulated', deps: ['simulated'] }], note: 'simulated' });
    expect(objs[objs.length - 1].eval_count).toBe(pieces.length);

    const json = await (await post(n, '/api/chat', { model: 'm:8b', messages: [{ role: 'user', content: 'hi' }], format: 'json', stream: false })).json();
    expect(JSON.parse(json.message.content)).toEqual({ simulated: true, model: 'm:8b', answer: simulatedAnswer({ model: 'm:8b', prompt: 'hi' }) });
  });

  it('embeds deterministic unit vectors of the model width', async () => {
    const n = await sim();
    const body = await (await post(n, '/api/embed', { model: 'emb', input: ['alpha', 'beta', 'alpha'] })).json();
    expect(body.model).toBe('emb');
    expect(body.embeddings).toHaveLength(3);
    for (const v of body.embeddings) {
      expect(v).toHaveLength(16);
      expect(Math.hypot(...v)).toBeCloseTo(1, 9);
    }
    expect(body.embeddings[0]).toEqual(body.embeddings[2]);
    expect(body.embeddings[0]).not.toEqual(body.embeddings[1]);
    expect(body.prompt_eval_count).toBe(3);
    expect(typeof body.total_duration).toBe('number');
    const plain = await (await post(n, '/api/embed', { model: 'm:8b', input: 'alpha' })).json();
    expect(plain.embeddings[0]).toHaveLength(384);
  });

  it('answers 400 for malformed JSON, a missing model or bad fields, and 413 above 10 MB', async () => {
    const n = await sim();
    const bad = await post(n, '/api/generate', '{"model": ');
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toMatch(/^invalid JSON body/);
    const noModel = await post(n, '/api/chat', { messages: [] });
    expect(noModel.status).toBe(400);
    expect(await noModel.json()).toEqual({ error: 'model is required' });
    const badField = await post(n, '/api/generate', { model: 'm:8b', prompt: 42 });
    expect(badField.status).toBe(400);
    expect((await badField.json()).error).toMatch(/prompt/);
    const huge = await post(n, '/api/generate', { model: 'm:8b', prompt: 'x'.repeat(10 * 1024 * 1024 + 10) });
    expect(huge.status).toBe(413);
    const unknown = await post(n, '/v1/chat/completions', { model: 'nope', messages: [{ role: 'user', content: 'x' }] });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ error: { message: "model 'nope' not found", type: 'not_found_error' } });
    const noRoute = await fetch(`${n.url}/api/nothing`);
    expect(noRoute.status).toBe(404);
    expect(noRoute.headers.get('x-hydra-simulated')).toBe('1');
  });
});

describe('memory model', () => {
  const three = [
    { name: 'a', sizeGb: 4 },
    { name: 'b', sizeGb: 4 },
    { name: 'c', sizeGb: 4 },
    { name: 'big', sizeGb: 12 },
    { name: 'seven', sizeGb: 7 },
  ];

  // A small context and one slot keep the KV cache and graph small (~0.17 GiB a model), so the weights decide what fits.
  const small = { numCtx: 256, parallel: 1 };
  const loadedBytes = (sizeGb: number): number => footprint({ name: 'x', sizeGb }, small.numCtx, small.parallel, 'f16').total;

  it('evicts the least recently used idle model to make room', async () => {
    const n = await sim({ vramGb: 10, models: three, ...small });
    for (const model of ['a', 'b', 'a', 'c']) await post(n, '/api/generate', { model, prompt: 'x', stream: false });
    const ps = await getJson(n, '/api/ps');
    expect(ps.models.map((m: any) => m.name).sort()).toEqual(['a', 'c']);
    expect(n.state()).toMatchObject({ loads: 3, evictions: 1, vram_used_bytes: 2 * loadedBytes(4), vram_total_bytes: 10 * GiB });
  });

  it("queues a model that fits once busy models finish, and answers Ollama's out-of-memory error only for one that never fits VRAM + RAM", async () => {
    const n = await sim({ vramGb: 10, ramGb: 2, models: three, fast: false, tokensPerSecond: 50, loadMsPerGb: 0, loadFixedMs: 0, ...small });
    // 12 GiB of weights + 0.17 GiB: 2.2 GiB would have to go to RAM, which has 2.
    const tooBig = await post(n, '/api/generate', { model: 'big', prompt: 'x' });
    expect(tooBig.status).toBe(500);
    expect(await tooBig.json()).toEqual({ error: 'model requires more system memory (2.2 GiB) than is available (2.0 GiB)' });

    const busy = new AbortController();
    const slow = await post(n, '/api/generate', { model: 'seven', prompt: 'x', options: { sim_answer_tokens: 10_000 } }, { signal: busy.signal });
    expect(slow.status).toBe(200);
    // "a" does not fit beside the busy "seven": it waits for memory instead of failing (Ollama queues it).
    const blocked = post(n, '/api/generate', { model: 'a', prompt: 'x', stream: false, options: { num_predict: 1 } });
    await waitFor(() => n.state().queued_for_load === 1, { what: '"a" to wait for memory' });
    expect(n.state().loaded.map((l) => l.name)).toEqual(['seven']);
    busy.abort();
    // Once "seven" is idle it is evicted and "a" loads and answers.
    const res = await blocked;
    expect(res.status).toBe(200);
    expect((await res.json()).done).toBe(true);
    expect(n.state()).toMatchObject({ oom_errors: 1, evictions: 1, queued_for_load: 0, loaded: [expect.objectContaining({ name: 'a' })] });
  });

  it('runs at most `parallel` requests per model and queues the rest in order', async () => {
    const n = await sim({ parallel: 1, fast: false, tokensPerSecond: 400, loadMsPerGb: 0, loadFixedMs: 0 });
    const done: string[] = [];
    // ~1 s at 400 tokens/s: still holding the slot when the second arrives, however loaded the machine.
    const first = post(n, '/api/generate', { model: 'm:8b', prompt: 'first', stream: false, options: { sim_answer_tokens: 400 } }).then(async (r) => done.push((await r.json()).response));
    await waitFor(() => n.state().loaded[0]?.active === 1, { what: 'the first request to hold the slot' });
    const second = post(n, '/api/generate', { model: 'm:8b', prompt: 'second', stream: false, options: { num_predict: 6 } }).then(async (r) => done.push((await r.json()).response));
    await waitFor(() => n.state().loaded[0]?.waiting === 1, { what: 'the second request to queue' });
    expect(n.state().active_requests).toBe(2);
    await Promise.all([first, second]);
    expect(done.map((t) => t.split(' ').slice(5, 6)[0])).toEqual(['first', 'second']);
  });

  it('unloads after a request with keep_alive 0, and loads/unloads on an empty prompt', async () => {
    const n = await sim();
    await post(n, '/api/generate', { model: 'm:8b', prompt: 'x', stream: false, keep_alive: 0 });
    expect(n.state().loaded).toEqual([]);
    const load = await (await post(n, '/api/generate', { model: 'm:8b', keep_alive: '10m' })).json();
    expect(load).toMatchObject({ model: 'm:8b', done: true, done_reason: 'load', response: '' });
    const expires = Date.parse(n.state().loaded[0]?.expires_at ?? '');
    expect(expires - Date.now()).toBeGreaterThan(9 * 60_000);
    const unload = await (await post(n, '/api/chat', { model: 'm:8b', messages: [], keep_alive: 0 })).json();
    expect(unload).toMatchObject({ done: true, done_reason: 'unload' });
    expect(n.state().loaded).toEqual([]);
    expect((await post(n, '/api/generate', { model: 'm:8b', keep_alive: 'soon' })).status).toBe(400);
  });
});

describe('faults and aborts', () => {
  it('fails the next N inference requests with the given status and message', async () => {
    const n = await sim();
    const set = await post(n, '/admin/faults', { fail_next: 2, fail_status: 503, fail_message: 'GPU on fire' });
    expect(await set.json()).toEqual({ faults_pending: { fail_next: 2, hang_next: 0, drop_next: 0 } });
    // Model endpoints do not consume faults.
    expect((await fetch(`${n.url}/api/tags`)).status).toBe(200);
    const r1 = await post(n, '/api/generate', { model: 'm:8b', prompt: 'x' });
    expect(r1.status).toBe(503);
    expect(await r1.json()).toEqual({ error: 'GPU on fire' });
    const r2 = await post(n, '/v1/chat/completions', { model: 'm:8b', messages: [{ role: 'user', content: 'x' }] });
    expect(r2.status).toBe(503);
    expect(await r2.json()).toEqual({ error: { message: 'GPU on fire', type: 'api_error' } });
    expect((await post(n, '/api/generate', { model: 'm:8b', prompt: 'x', stream: false })).status).toBe(200);
    expect(n.state()).toMatchObject({ failed: 2, served: 1, faults_pending: { fail_next: 0 } });
    expect((await post(n, '/admin/faults', { fail_nxt: 1 })).status).toBe(400);
  });

  it('hangs a request until the client goes away, and counts it aborted', async () => {
    const n = await sim();
    await post(n, '/admin/faults', { hang_next: 1 });
    const ac = new AbortController();
    const pending = post(n, '/api/generate', { model: 'm:8b', prompt: 'x' }, { signal: ac.signal }).catch((e: unknown) => e);
    await waitFor(() => n.state().active_requests === 1, { what: 'the hanging request' });
    ac.abort();
    expect(await pending).toBeInstanceOf(Error);
    await waitFor(() => n.state().aborted === 1 && n.state().active_requests === 0, { what: 'the abort to be counted' });
    expect(n.state().faults_pending.hang_next).toBe(0);
  });

  it('drops the connection after K tokens: the client gets K lines and no final message', async () => {
    const n = await sim();
    await post(n, '/admin/faults', { drop_next: 1, drop_after_tokens: 3 });
    const cut = await rawPost(n, '/api/generate', { model: 'm:8b', prompt: 'x' });
    expect(cut.status).toBe(200);
    expect(cut.complete).toBe(false);
    const objs = lines(cut.text);
    expect(objs.map((o) => o.response)).toEqual(['simulated', ' answer', ' from']);
    expect(n.state()).toMatchObject({ dropped: 1, aborted: 0, served: 0 });
    const next = await rawPost(n, '/api/generate', { model: 'm:8b', prompt: 'x' });
    expect(next.complete).toBe(true);
    expect(lines(next.text).pop()).toMatchObject({ done: true });
  });

  it('stops generating when the client disconnects mid-stream and counts the abort', async () => {
    const n = await sim({ fast: false, tokensPerSecond: 100, loadMsPerGb: 0, loadFixedMs: 0 });
    const ac = new AbortController();
    const res = await post(n, '/api/generate', { model: 'm:8b', prompt: 'x', options: { sim_answer_tokens: 10_000 } }, { signal: ac.signal });
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    await waitFor(() => n.state().aborted === 1 && n.state().active_requests === 0, { what: 'the server to notice the disconnect' });
    expect(n.state()).toMatchObject({ served: 0, loaded: [expect.objectContaining({ name: 'm:8b', active: 0 })] });
  });

  it('resets faults, counters and idle models', async () => {
    const n = await sim();
    await post(n, '/api/generate', { model: 'm:8b', prompt: 'x', stream: false });
    await post(n, '/admin/faults', { fail_next: 5, drop_next: 1 });
    const state = await (await post(n, '/admin/reset', {})).json();
    expect(state).toMatchObject({ simulated: true, served: 0, loads: 0, loaded: [], vram_used_bytes: 0, faults_pending: { fail_next: 0, hang_next: 0, drop_next: 0 } });
    expect(await getJson(n, '/admin/state')).toEqual(n.state());
  });
});

describe('OpenAI-compatible routes', () => {
  it('lists models', async () => {
    const n = await sim();
    const body = await getJson(n, '/v1/models');
    expect(body).toEqual({ object: 'list', data: [expect.objectContaining({ id: 'm:8b', object: 'model', owned_by: 'library' }), expect.objectContaining({ id: 'emb' })] });
    expect(typeof body.data[0].created).toBe('number');
    expect(await getJson(n, '/v1/models/emb')).toMatchObject({ id: 'emb', object: 'model' });
  });

  it('answers chat completions whole, or as SSE chunks with usage and [DONE]', async () => {
    const n = await sim();
    const whole = await (await post(n, '/v1/chat/completions', { model: 'm:8b', messages: [{ role: 'user', content: 'hi there' }], max_tokens: 5 })).json();
    expect(whole).toMatchObject({
      object: 'chat.completion',
      model: 'm:8b',
      choices: [{ index: 0, message: { role: 'assistant', content: 'simulated answer from m:8b to:' }, finish_reason: 'length' }],
      usage: { prompt_tokens: 2, completion_tokens: 5, total_tokens: 7 },
    });
    expect(whole.id).toMatch(/^chatcmpl-/);

    const res = await post(n, '/v1/chat/completions', { model: 'm:8b', messages: [{ role: 'user', content: 'hi there' }], stream: true, stream_options: { include_usage: true } });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const events = (await res.text()).split('\n\n').filter((e) => e !== '');
    expect(events.every((e) => e.startsWith('data: '))).toBe(true);
    expect(events.pop()).toBe('data: [DONE]');
    const chunks = events.map((e) => JSON.parse(e.slice(6)));
    const usage = chunks.pop();
    expect(usage).toMatchObject({ object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 2, completion_tokens: 16, total_tokens: 18 } });
    const finish = chunks.pop();
    expect(finish.choices[0].finish_reason).toBe('stop');
    expect(chunks.map((c) => c.choices[0].delta.content).join('')).toBe(simulatedAnswer({ model: 'm:8b', prompt: 'hi there' }));

    const noUsage = (await (await post(n, '/v1/chat/completions', { model: 'm:8b', messages: [{ role: 'user', content: 'x' }], stream: true })).text()).split('\n\n');
    expect(noUsage.some((e) => e.includes('"usage"'))).toBe(false);
  });

  it('answers completions, JSON response formats and embeddings', async () => {
    const n = await sim();
    const text = await (await post(n, '/v1/completions', { model: 'm:8b', prompt: 'once upon a time' })).json();
    expect(text).toMatchObject({ object: 'text_completion', choices: [{ index: 0, text: simulatedAnswer({ model: 'm:8b', prompt: 'once upon a time' }), finish_reason: 'stop' }] });
    const structured = await (
      await post(n, '/v1/chat/completions', {
        model: 'm:8b',
        messages: [{ role: 'user', content: 'x' }],
        response_format: { type: 'json_schema', json_schema: { name: 'o', schema: { type: 'object', properties: { n: { type: 'number' } }, required: ['n'] } } },
      })
    ).json();
    expect(JSON.parse(structured.choices[0].message.content)).toEqual({ n: 0 });
    const emb = await (await post(n, '/v1/embeddings', { model: 'emb', input: ['a', 'b'] })).json();
    expect(emb).toMatchObject({ object: 'list', model: 'emb', usage: { prompt_tokens: 2, total_tokens: 2 } });
    expect(emb.data.map((d: any) => [d.object, d.index, d.embedding.length])).toEqual([
      ['embedding', 0, 16],
      ['embedding', 1, 16],
    ]);
  });
});

describe('helpers', () => {
  it('parses the --models syntax and names a bad entry', () => {
    expect(parseModelsArg('qwen3:14b=9.3, llama3.1:70b=43,nomic-embed-text=0.27:768')).toEqual([
      { name: 'qwen3:14b', sizeGb: 9.3 },
      { name: 'llama3.1:70b', sizeGb: 43 },
      { name: 'nomic-embed-text', sizeGb: 0.27, embeddingLength: 768 },
    ]);
    expect(parseModelsArg('qwen3:8b=5.2:tools+thinking,llava=4.7:vision,bge-m3=1.2:1024:embedding,plain=1:completion')).toEqual([
      { name: 'qwen3:8b', sizeGb: 5.2, capabilities: ['completion', 'tools', 'thinking'] },
      { name: 'llava', sizeGb: 4.7, capabilities: ['completion', 'vision'] },
      { name: 'bge-m3', sizeGb: 1.2, embeddingLength: 1024, capabilities: ['embedding'] },
      { name: 'plain', sizeGb: 1, capabilities: ['completion'] },
    ]);
    expect(() => parseModelsArg('a=1:tools+telepathy')).toThrow(/unknown capability "telepathy"/);
    expect(() => parseModelsArg('a=1:768:tools:vision')).toThrow(/bad model entry/);
    expect(() => parseModelsArg('qwen3:14b')).toThrow(/bad model entry "qwen3:14b"/);
    expect(() => parseModelsArg('a=-1')).toThrow(/positive size/);
    expect(() => parseModelsArg('a=1,a=2')).toThrow(/listed twice/);
    expect(() => parseModelsArg('')).toThrow(/no models/);
  });

  it('rejects bad options naming them', async () => {
    const base = { vramGb: 8, models: [{ name: 'a', sizeGb: 1 }] };
    await expect(createSimNode({ ...base, batchExponent: 0 })).rejects.toThrow('batchExponent must be a number > 0 and <= 1, got 0');
    await expect(createSimNode({ ...base, timeScale: 0 })).rejects.toThrow('timeScale must be a positive number, got 0');
    await expect(createSimNode({ ...base, numCtx: 2 })).rejects.toThrow('numCtx must be an integer >= 4, got 2');
    await expect(createSimNode({ ...base, maxQueue: -1 })).rejects.toThrow('maxQueue must be an integer >= 0, got -1');
    await expect(createSimNode({ ...base, ramGb: -1 })).rejects.toThrow('ramGb must be >= 0, got -1');
    await expect(createSimNode({ ...base, cpuSpeedRatio: 2 })).rejects.toThrow('cpuSpeedRatio must be a number > 0 and <= 1, got 2');
    await expect(createSimNode({ ...base, loadFixedMs: -5 })).rejects.toThrow('loadFixedMs must be >= 0, got -5');
    await expect(createSimNode({ ...base, kvCacheType: 'q2' as never })).rejects.toThrow('kvCacheType must be one of f16, q8_0, q4_0, got "q2"');
  });

  it('builds minimal schema instances', () => {
    expect(schemaInstance({ type: 'array', items: { type: 'integer', exclusiveMinimum: 0 }, minItems: 2 })).toEqual([1, 1]);
    expect(schemaInstance({ type: ['null', 'string'], format: 'date' })).toBe('1970-01-01');
    expect(schemaInstance({ allOf: [{ properties: { a: { const: 1 } } }, { properties: { b: { type: 'boolean' } } }] })).toEqual({ a: 1, b: true });
    expect(schemaInstance({ type: 'object', required: ['x'] })).toEqual({ x: 'simulated' });
  });
});
