// Hydra as a drop-in Ollama server, driven by the official ollama-js client: models, generate/chat (streamed and
// not), JSON formats, embeddings, tools, thinking, errors, aborts, load/unload, pull/delete and VRAM-aware routing.
import { Ollama } from 'ollama';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulatedAnswer } from '../apps/node-sim/sim-server.js';
import { startCluster, type TestCluster } from './support/cluster.js';
import { waitFor } from './support/wait.js';

const SMALL = 'qwen3:4b';
const BIG = 'llama3.1:70b';
const EMBED = 'nomic-embed-text';
const PULLABLE = 'phi4-mini:3.8b';
/** A reasoning model: thinks unless asked not to (as qwen3 does in Ollama), so the exact-text tests use SMALL. */
const THINKER = 'qwen3:8b';

describe('the Ollama API through ollama-js', () => {
  let c: TestCluster;
  let ollama: Ollama;
  /** Pinned to one node with Hydra's header, for assertions about that node's simulated backend. */
  const pinned = (node: string) => new Ollama({ host: c.url, headers: { 'X-Hydra-Node': node } });
  const sim = (node: string) => c.sims[c.workers.findIndex((w) => w.nodeId === node)]!;
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${c.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

  beforeAll(async () => {
    // A reconnect grace far longer than any wait below: an aborted Ollama stream must cancel its job at once.
    c = await startCluster({ STREAM_RECONNECT_GRACE_MS: '60000' });
    const models = [
      { name: SMALL, sizeGb: 2.5, capabilities: ['completion', 'tools'] },
      { name: THINKER, sizeGb: 5.2, capabilities: ['completion', 'tools', 'thinking'] },
      { name: BIG, sizeGb: 43, capabilities: ['completion', 'tools'] },
      { name: EMBED, sizeGb: 0.27, embeddingLength: 768 },
    ];
    await c.simWorker('gpu8', { vramGb: 8, models: [...models, { name: 'gemma3', sizeGb: 3.3 }], pullable: [{ name: PULLABLE, sizeGb: 0.2 }], pullMBps: 400, tokensPerSecond: 2000, loadMsPerGb: 0 });
    await c.simWorker('gpu80', { vramGb: 80, models: [...models, { name: 'gemma3:latest', sizeGb: 3.3 }], tokensPerSecond: 2000, loadMsPerGb: 0 });
    ollama = new Ollama({ host: c.url });
  }, 60_000);
  afterAll(async () => c?.stop());

  it('answers version, / and HEAD / as Ollama does', async () => {
    expect((await ollama.version()).version).toMatch(/^\d+\.\d+\.\d+/);
    const root = await fetch(`${c.url}/`);
    expect(root.status).toBe(200);
    expect(await root.text()).toBe('Ollama is running');
    expect((await fetch(`${c.url}/`, { method: 'HEAD' })).status).toBe(200);
  });

  it('lists the union of models over nodes, once per canonical name, with name and model', async () => {
    const { models } = await ollama.list();
    const names = models.map((m) => m.name);
    expect(names.filter((n) => n === 'gemma3:latest')).toHaveLength(1);
    expect(names).toEqual(expect.arrayContaining([`${SMALL}`, BIG, `${EMBED}:latest`]));
    const m = models.find((x) => x.name === SMALL)!;
    expect(m.model).toBe(SMALL);
    expect(m.size).toBe(2.5 * 2 ** 30);
    expect(m.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(m.details).toMatchObject({ format: 'gguf' });
    expect((m as unknown as { nodes: string[] }).nodes.sort()).toEqual(['gpu8', 'gpu80']);
  });

  it('shows a model from a node that has it, and 404s one nobody has in Ollama’s words', async () => {
    const shown = await ollama.show({ model: SMALL });
    expect(shown.capabilities).toEqual(expect.arrayContaining(['completion', 'tools']));
    expect(shown.details.format).toBe('gguf');
    expect(Object.keys(shown.model_info)).toContain('general.architecture');
    await expect(ollama.show({ model: 'mystery:7b' })).rejects.toMatchObject({ status_code: 404, error: "model 'mystery:7b' not found" });
  });

  it('generates and chats, with and without streaming, with the node’s exact text and Ollama’s metrics in nanoseconds', async () => {
    const prompt = 'why is the sky blue';
    const want = simulatedAnswer({ model: SMALL, prompt });
    const once = await ollama.generate({ model: SMALL, prompt, options: { temperature: 0.7 } });
    expect(once).toMatchObject({ model: SMALL, response: want, done: true, done_reason: 'stop', eval_count: 16 });
    expect(once.total_duration).toBeGreaterThan(once.eval_duration);
    expect(once.eval_duration).toBeGreaterThan(1000); // nanoseconds, not milliseconds

    let text = '';
    let last: { done: boolean; done_reason?: string; eval_count?: number } | undefined;
    for await (const part of await ollama.generate({ model: SMALL, prompt, stream: true, options: { temperature: 0.7 } })) {
      text += part.response;
      last = part;
    }
    expect(text).toBe(want);
    expect(last).toMatchObject({ done: true, done_reason: 'stop', eval_count: 16 });

    const messages = [{ role: 'system', content: 'be brief' }, { role: 'user', content: prompt }];
    const chat = await ollama.chat({ model: SMALL, messages, options: { temperature: 0.7 } });
    expect(chat.message).toMatchObject({ role: 'assistant', content: want });
    let streamed = '';
    for await (const part of await ollama.chat({ model: SMALL, messages, stream: true, options: { temperature: 0.7 } })) streamed += part.message.content;
    expect(streamed).toBe(want);
  });

  it('names the job and the node in headers, on streamed, waited and cached answers', async () => {
    const body = { model: SMALL, prompt: 'headers please', options: { temperature: 0 } };
    const streamed = await post('/api/generate', body);
    expect(streamed.headers.get('content-type')).toMatch(/application\/x-ndjson/);
    expect(streamed.headers.get('x-hydra-job-id')).toBeTruthy();
    expect(['gpu8', 'gpu80']).toContain(streamed.headers.get('x-hydra-node'));
    const lines = (await streamed.text()).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.at(-1)).toMatchObject({ done: true });
    // Deterministic (temperature 0): the second time comes from the L1 cache, still naming the job and node.
    const cached = await waitFor(async () => {
      const r = await post('/api/generate', { ...body, stream: false });
      const j = (await r.json()) as { response: string };
      return r.headers.get('x-hydra-job-id') === streamed.headers.get('x-hydra-job-id') ? { r, j } : null;
    }, { what: 'the answer to be cached' });
    expect(cached.r.headers.get('x-hydra-node')).toBe(streamed.headers.get('x-hydra-node'));
    expect(cached.j.response).toBe(simulatedAnswer({ model: SMALL, prompt: 'headers please' }));
  });

  it('honours format "json", a JSON schema and num_predict', async () => {
    const json = await ollama.generate({ model: SMALL, prompt: 'as json', format: 'json', options: { temperature: 0.5 } });
    expect(JSON.parse(json.response ?? '')).toMatchObject({ simulated: true, model: SMALL });
    const schema = { type: 'object', properties: { city: { type: 'string' }, population: { type: 'integer', minimum: 1 } }, required: ['city', 'population'] };
    const structured = await ollama.chat({ model: SMALL, messages: [{ role: 'user', content: 'a city' }], format: schema, options: { temperature: 0.5 } });
    expect(JSON.parse(structured.message.content)).toEqual({ city: 'simulated', population: 1 });
    const capped = await ollama.generate({ model: SMALL, prompt: 'long one', options: { num_predict: 5, temperature: 0.5 } });
    expect(capped).toMatchObject({ eval_count: 5, done_reason: 'length' });
    expect((capped.response ?? '').split(' ')).toHaveLength(5);
  });

  it('embeds a batch, and the legacy single prompt', async () => {
    const out = await ollama.embed({ model: EMBED, input: ['first', 'second'], truncate: true });
    expect(out.model).toBe(EMBED);
    expect(out.embeddings).toHaveLength(2);
    expect(out.embeddings[0]).toHaveLength(768);
    expect(out.embeddings[0]).not.toEqual(out.embeddings[1]);
    const legacy = await ollama.embeddings({ model: EMBED, prompt: 'first' });
    expect(legacy.embedding).toEqual(out.embeddings[0]);
  });

  it('round-trips a tool call: tools in, message.tool_calls out (arguments as an object), the result back as role tool', async () => {
    const tools = [{ type: 'function', function: { name: 'get_weather', description: 'weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
    const ask = [{ role: 'user', content: 'weather in Paris?' }];
    const first = await ollama.chat({ model: SMALL, messages: ask, tools, options: { temperature: 0.5 } });
    const call = first.message.tool_calls?.[0];
    expect(call?.function.name).toBe('get_weather');
    expect(typeof call?.function.arguments).toBe('object');
    const streamedCalls: unknown[] = [];
    for await (const part of await ollama.chat({ model: SMALL, messages: ask, tools, stream: true, options: { temperature: 0.5 } })) streamedCalls.push(...(part.message.tool_calls ?? []));
    expect(streamedCalls).toEqual(first.message.tool_calls);
    const answer = await ollama.chat({
      model: SMALL,
      messages: [...ask, first.message, { role: 'tool', content: 'sunny and 24 degrees', tool_name: 'get_weather' }],
      tools,
      options: { temperature: 0.5 },
    });
    expect(answer.message.tool_calls ?? []).toHaveLength(0);
    expect(answer.message.content).toMatch(/sunny and 24 degrees/);
  });

  it('streams thinking as Ollama does (message.thinking in chat, thinking in generate)', async () => {
    let thinking = '';
    let content = '';
    for await (const part of await ollama.chat({ model: THINKER, messages: [{ role: 'user', content: 'think first' }], think: true, stream: true, options: { temperature: 0.5 } })) {
      thinking += part.message.thinking ?? '';
      content += part.message.content;
    }
    expect(thinking.length).toBeGreaterThan(0);
    expect(content.length).toBeGreaterThan(0);
    const gen = await ollama.generate({ model: THINKER, prompt: 'think first', think: true, options: { temperature: 0.5 } });
    expect(gen.thinking?.length).toBeGreaterThan(0);
  });

  it('answers an unknown model with 404 and Ollama’s wording, a bad body with 400 naming the field, and 501 for copy', async () => {
    await expect(ollama.generate({ model: 'mystery:7b', prompt: 'x' })).rejects.toMatchObject({ status_code: 404, error: "model 'mystery:7b' not found" });
    await expect(ollama.chat({ model: 'mystery:7b', messages: [{ role: 'user', content: 'x' }], stream: true })).rejects.toMatchObject({ status_code: 404 });
    const bad = await post('/api/chat', { model: SMALL, messages: [{ role: 'robot', content: 'x' }] });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/messages\.0\.role/);
    const copy = await post('/api/copy', { source: SMALL, destination: 'mine' });
    expect(copy.status).toBe(501);
    expect(((await copy.json()) as { error: string }).error).toMatch(/not supported by Hydra/);
  });

  it('cancels the job on its node at once when the client aborts mid-stream', async () => {
    const node = sim('gpu80');
    const before = node.state().aborted;
    const client = pinned('gpu80');
    const stream = await client.chat({ model: BIG, messages: [{ role: 'user', content: 'a very long story' }], stream: true, options: { num_predict: 20_000, ...{ sim_answer_tokens: 20_000 } } });
    let pieces = 0;
    await expect(
      (async () => {
        for await (const _part of stream) if (++pieces === 2) client.abort();
      })(),
    ).rejects.toThrow(/abort/i);
    // The reconnect grace is 60 s here: only the Ollama surface's immediate cancel stops the backend this soon.
    await waitFor(() => node.state().aborted > before && node.state().active_requests === 0, { timeoutMs: 10_000, what: 'the node to see the abort' });
  });

  it('ends a stream broken mid-answer with one {"error"} line (ollama-js throws it) and cancels the job', async () => {
    await fetch(`${sim('gpu80').url}/admin/faults`, { method: 'POST', body: JSON.stringify({ drop_next: 1, drop_after_tokens: 40 }) });
    const r = await post('/api/chat', { model: BIG, messages: [{ role: 'user', content: 'cut me off' }], options: { temperature: 0.5, num_predict: 400, sim_answer_tokens: 400 } }, { 'X-Hydra-Node': 'gpu80' });
    expect(r.status).toBe(200);
    const lines = (await r.text()).trim().split('\n').map((l) => JSON.parse(l) as { error?: string; done?: boolean; message?: { content: string } });
    expect(lines.slice(0, -1).map((l) => l.message?.content).join('').length).toBeGreaterThan(0);
    expect(lines.at(-1)?.error).toMatch(/gpu80/);
    expect(lines.some((l) => l.done)).toBe(false);
    const job = await waitFor(async () => {
      const v = (await c.get(`/v1/jobs/${r.headers.get('x-hydra-job-id')}`)).body;
      return v.state === 'failed' || v.state === 'cancelled' ? v : null;
    }, { what: 'the broken job to end' });
    expect(job.state === 'cancelled' || job.error?.code === 'cancelled').toBe(true);
  });

  it('unloads with keep_alive 0 and an empty prompt, and loads with an empty chat', async () => {
    await ollama.generate({ model: SMALL, prompt: 'warm up', options: { temperature: 0.5 } });
    const loaded = await waitFor(async () => (await ollama.ps()).models.find((m) => m.name === SMALL), { what: `${SMALL} in /api/ps` });
    expect(loaded.expires_at.toString()).not.toBe('Invalid Date');
    expect((loaded as unknown as { node: string }).node).toMatch(/^gpu/);
    // Open WebUI parses expires_at itself: it must carry a UTC offset; every field Ollama's /api/ps has is there.
    const raw = ((await (await fetch(`${c.url}/api/ps`)).json()) as { models: Record<string, unknown>[] }).models.find((m) => m.name === SMALL)!;
    expect(raw.expires_at).toMatch(/(Z|[+-]\d\d:\d\d)$/);
    expect(raw).toMatchObject({ model: SMALL, size: expect.any(Number), size_vram: expect.any(Number), digest: expect.stringMatching(/^[0-9a-f]{64}$/), details: expect.objectContaining({ format: 'gguf' }) });
    expect(Number(raw.context_length)).toBeGreaterThan(0);
    const unloaded = await ollama.generate({ model: SMALL, prompt: '', keep_alive: 0 });
    expect(unloaded).toMatchObject({ response: '', done: true, done_reason: 'unload' });
    await waitFor(async () => !(await ollama.ps()).models.some((m) => m.name === SMALL), { what: `${SMALL} to leave /api/ps` });
    const load = await ollama.chat({ model: SMALL, messages: [] });
    expect(load).toMatchObject({ message: { role: 'assistant', content: '' }, done: true, done_reason: 'load' });
    await waitFor(async () => (await ollama.ps()).models.some((m) => m.name === SMALL), { what: `${SMALL} back in /api/ps` });
  });

  it('pulls onto the named node with progress tagged by node, then deletes it where it is', async () => {
    const statuses: { status: string; node?: string }[] = [];
    for await (const p of await pinned('gpu8').pull({ model: PULLABLE, stream: true })) statuses.push(p as { status: string; node?: string });
    expect(statuses.at(-1)).toEqual({ status: 'success' });
    expect(statuses.filter((s) => s.node).every((s) => s.node === 'gpu8')).toBe(true);
    expect(statuses.some((s) => s.node === 'gpu8' && /pulling|downloading/.test(s.status))).toBe(true);
    await waitFor(async () => (await ollama.list()).models.some((m) => m.name === PULLABLE), { what: `${PULLABLE} in /api/tags` });
    // A model no registry has: the error names the node.
    await expect(pinned('gpu8').pull({ model: 'nope:1b' })).rejects.toThrow(/gpu8/);
    await ollama.delete({ model: PULLABLE });
    await waitFor(async () => !(await ollama.list()).models.some((m) => m.name === PULLABLE), { what: `${PULLABLE} to leave /api/tags` });
    await expect(ollama.delete({ model: PULLABLE })).rejects.toMatchObject({ status_code: 404 });
  });

  it('runs a 70b chat on the node that fits it, with the routing decision and the job in Bull Board', async () => {
    const r = await post('/api/chat', { model: BIG, messages: [{ role: 'user', content: 'big one' }], stream: false, options: { temperature: 0.5 } });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-hydra-node')).toBe('gpu80');
    const id = r.headers.get('x-hydra-job-id')!;
    const job = (await c.get(`/v1/jobs/${id}`)).body;
    expect(job).toMatchObject({ state: 'completed', model: BIG, result: { node_id: 'gpu80' } });
    expect(job.routing_decision.selected_node).toBe('gpu80');
    const board = await c.get('/admin/queues/api/queues');
    expect(board.body.queues.map((q: { name: string }) => q.name)).toContain(job.queue);
  });
});
