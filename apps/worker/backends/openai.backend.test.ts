// The OpenAI-compatible backend against the simulated node's /v1 routes (and a small real server for auth): SSE streaming, option mapping, cancellation, errors.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { HydraError, type ErrorCode } from '../../../libs/core/index.js';
import { silentLogger } from '../../../libs/logger/index.js';
import { freePort, waitFor } from '../../../test/support/wait.js';
import { simulatedAnswer } from '../../node-sim/sim-server.js';
import { cleanups, failure, fault, hooks, sim } from '../../../test/support/backend-fixtures.js';
import type { InferenceBackend } from './backend.js';
import { createOpenAIBackend, imageMimeType, openaiMessages, openaiSamplingFields, type OpenAIBackendOptions } from './openai.backend.js';

function backend(baseUrl: string, extra: Partial<OpenAIBackendOptions> = {}): InferenceBackend {
  const b = createOpenAIBackend({ baseUrl, logger: silentLogger(), ...extra });
  cleanups.push(() => b.close());
  return b;
}

describe('openai backend: inference', () => {
  it('streams chat tokens in order over SSE, equal to the final text, with usage', async () => {
    const n = await sim({ fast: false, tokensPerSecond: 400, loadMsPerGb: 0 });
    const tokens: string[] = [];
    const out = await backend(`${n.url}/v1`).chat({ type: 'chat', model: 'm:8b', messages: [{ role: 'user', content: 'Why is the sky blue?' }] }, hooks((t) => tokens.push(t)));
    expect(tokens).toHaveLength(16);
    expect(out.message).toEqual({ role: 'assistant', content: tokens.join('') });
    expect(out.message?.content).toBe(simulatedAnswer({ model: 'm:8b', prompt: 'Why is the sky blue?' }));
    expect(out).toMatchObject({ model: 'm:8b', done_reason: 'stop', prompt_tokens: 5, completion_tokens: 16, load_duration_ms: 0 });
    expect(out.eval_duration_ms).toBeGreaterThan(20);
    expect(out.total_duration_ms).toBeGreaterThanOrEqual(out.eval_duration_ms);
  });

  it('generates through /completions with the system text prepended and num_predict as max_tokens', async () => {
    const n = await sim();
    const out = await backend(`${n.url}/v1`).generate({ type: 'generate', model: 'm:8b', prompt: 'hello', system: 'be brief', options: { num_predict: 7, temperature: 0.2, seed: 1 } }, hooks());
    expect(out.response).toBe('simulated answer from m:8b to: be brief');
    expect(out).toMatchObject({ done_reason: 'length', completion_tokens: 7, prompt_tokens: 3 });
    expect(n.state().requests['POST /v1/completions']).toBe(1);
  });

  it('sends format as response_format and gets a valid instance back', async () => {
    const n = await sim();
    const b = backend(`${n.url}/v1`);
    const schema = { type: 'object', properties: { answer: { type: 'string' }, score: { type: 'number', minimum: 1 } }, required: ['answer', 'score'] };
    const out = await b.chat({ type: 'chat', model: 'm:8b', messages: [{ role: 'user', content: 'x' }], format: schema }, hooks());
    expect(JSON.parse(out.message?.content ?? '')).toEqual({ answer: 'simulated', score: 1 });
    const json = await b.generate({ type: 'generate', model: 'm:8b', prompt: 'x', format: 'json' }, hooks());
    expect(JSON.parse(json.response ?? '')).toMatchObject({ simulated: true });
  });

  it('embeds one vector of the model width per input', async () => {
    const n = await sim();
    const out = await backend(`${n.url}/v1`).embed({ type: 'embed', model: 'emb', input: ['a', 'b'] }, hooks());
    expect(out.embeddings?.map((v) => v.length)).toEqual([16, 16]);
    expect(out.prompt_tokens).toBe(2);
  });

  it('maps Ollama-style options to OpenAI fields', () => {
    expect(openaiSamplingFields({ temperature: 0.5, top_p: 0.9, seed: 7, num_predict: 64, stop: ['\n'], top_k: 40, frequency_penalty: 0.1 })).toEqual({
      temperature: 0.5,
      top_p: 0.9,
      seed: 7,
      max_tokens: 64,
      stop: ['\n'],
      frequency_penalty: 0.1,
    });
    expect(openaiSamplingFields({ num_predict: -1 })).toEqual({});
  });
});

describe('openai backend: probe', () => {
  it('lists models with configured sizes and nothing loaded', async () => {
    const n = await sim();
    const p = await backend(`${n.url}/v1`, { modelSizes: { 'm:8b': 123 } }).probe();
    // A model whose size nobody gave is shown as unknown, not silently 0 (docs/scheduling.md, "Memory admission").
    expect(p).toEqual({
      healthy: true,
      models_available: [
        { name: 'm:8b', size_bytes: 123 },
        { name: 'emb', size_bytes: 0, size_unknown: true },
        { name: 'huge', size_bytes: 0, size_unknown: true },
      ],
      models_loaded: [],
    });
  });

  it('takes sizes, contexts and slots from the server where it tells: llama-server /models meta and /props, vLLM max_model_len', async () => {
    const paths: string[] = [];
    const server = createServer((req, res) => {
      paths.push(req.url ?? '');
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.url === '/v1/models') {
        return json(200, {
          object: 'list',
          data: [
            // llama-server (server_context::model_meta): weights bytes and the training context.
            { id: 'llama3.1-8b-q4', object: 'model', owned_by: 'llamacpp', meta: { vocab_type: 2, n_vocab: 128256, n_ctx_train: 131072, n_embd: 4096, n_params: 8030261312, size: 4_920_733_696 } },
            // vLLM: the context it serves, no size.
            { id: 'Qwen/Qwen3-8B', object: 'model', owned_by: 'vllm', max_model_len: 32768 },
            // configured: OPENAI_MODEL_SIZES wins over the server's meta; router mode: not loaded now.
            { id: 'listed', object: 'model', meta: { size: 1 }, status: { value: 'unloaded' } },
          ],
        });
      }
      if (req.url === '/props') return json(200, { total_slots: 4, default_generation_settings: { n_ctx: 8192 } });
      json(404, { error: { message: 'not found' } });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => closeServer(server));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    const p = await backend(url, { modelSizes: { listed: 2 * 1024 ** 3 } }).probe();
    expect(p.models_available).toEqual([
      { name: 'llama3.1-8b-q4', size_bytes: 4_920_733_696, context_length: 131072 },
      { name: 'Qwen/Qwen3-8B', size_bytes: 0, size_unknown: true, context_length: 32768 },
      { name: 'listed', size_bytes: 2 * 1024 ** 3 },
    ]);
    // llama-server holds its model from the start: loaded, so nvidia-smi's used memory is not counted twice.
    expect(p.models_loaded).toEqual([{ name: 'llama3.1-8b-q4', size_bytes: 4_920_733_696, vram_bytes: 4_920_733_696 }]);
    // llama-server's slots become the node's per-model parallel (heartbeat: the server's own slots win over NUM_PARALLEL).
    expect(p.parallel).toBe(4);
    expect(paths.sort()).toEqual(['/props', '/v1/models']);
  });

  it('asks a server without /props (vLLM, LM Studio) only once in a while', async () => {
    const n = await sim();
    const b = backend(`${n.url}/v1`);
    const first = await b.probe();
    expect(first.healthy).toBe(true);
    expect(first).not.toHaveProperty('parallel');
    await b.probe();
    expect(n.state().requests['GET /props'] ?? 0).toBeLessThanOrEqual(1);
  });

  it('reports an unreachable server as unhealthy without throwing', async () => {
    const url = `http://127.0.0.1:${await freePort()}/v1`;
    const p = await backend(url).probe();
    expect(p).toEqual({ healthy: false, error: expect.stringContaining(url), models_available: [], models_loaded: [] });
  });

  it('sends the API key only as a bearer token and never puts it in errors', async () => {
    const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
    const server = createServer((req, res) => {
      seen.push({ url: req.url ?? '', headers: req.headers });
      if (req.url === '/v1/models') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ object: 'list', data: [{ id: 'x', object: 'model' }] }));
        return;
      }
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'Incorrect API key provided', type: 'invalid_request_error' } }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => closeServer(server));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    const b = backend(url, { apiKey: 'sk-secret-123' });
    expect((await b.probe()).healthy).toBe(true);
    const e = await failure(b.chat({ type: 'chat', model: 'x', messages: [{ role: 'user', content: 'x' }] }, hooks()));
    expect({ code: e.code, retryable: e.retryable }).toEqual({ code: 'backend_error', retryable: false });
    expect(e.message).toMatch(/API key/);
    expect(JSON.stringify(e.toJSON())).not.toContain('sk-secret-123');
    // /models, llama-server's /props (refused here) and the chat: each with the key.
    expect(seen.map((r) => [r.url, r.headers.authorization]).sort()).toEqual([
      ['/props', 'Bearer sk-secret-123'],
      ['/v1/chat/completions', 'Bearer sk-secret-123'],
      ['/v1/models', 'Bearer sk-secret-123'],
    ]);

    const before = seen.length;
    await backend(url).probe();
    expect(seen.slice(before).map((r) => r.headers.authorization)).toEqual([undefined, undefined]);
  });
});

describe('openai backend: cancellation and errors', () => {
  const chat = (b: InferenceBackend, model = 'm:8b'): Promise<unknown> => b.chat({ type: 'chat', model, messages: [{ role: 'user', content: 'x' }] }, hooks());
  const expectError = (e: HydraError, code: ErrorCode, retryable: boolean, url: string): void => {
    expect({ code: e.code, retryable: e.retryable }).toEqual({ code, retryable });
    expect(e.message).toContain(url);
  };

  it('aborting mid-stream closes the request on the server and rejects with cancelled', async () => {
    const n = await sim({ fast: false, tokensPerSecond: 100, loadMsPerGb: 0 });
    const ac = new AbortController();
    let seen = 0;
    const e = await failure(
      backend(`${n.url}/v1`).generate(
        { type: 'generate', model: 'm:8b', prompt: 'x', options: { num_predict: 10_000 } },
        {
          signal: ac.signal,
          onToken: () => {
            if (++seen === 2) ac.abort();
          },
        },
      ),
    );
    expect(e.code).toBe('cancelled');
    await waitFor(() => n.state().aborted === 1 && n.state().active_requests === 0, { what: 'the simulated node to see the abort' });
  });

  it('maps 5xx, 4xx, unknown model, out-of-memory, dropped and hanging requests', async () => {
    // 1 GB of system RAM: the 40 GB model can be neither held in VRAM nor offloaded.
    const n = await sim({ ramGb: 1 });
    const url = `${n.url}/v1`;
    const b = backend(url);
    await fault(n, { fail_next: 1, fail_status: 503, fail_message: 'overloaded' });
    expectError(await failure(chat(b)), 'backend_error', true, url);
    await fault(n, { fail_next: 1, fail_status: 422, fail_message: 'bad params' });
    expectError(await failure(chat(b)), 'backend_error', false, url);
    expectError(await failure(chat(b, 'nope')), 'model_not_found', false, url);
    expectError(await failure(chat(b, 'huge')), 'out_of_memory', true, url);

    await fault(n, { drop_next: 1, drop_after_tokens: 2 });
    const tokens: string[] = [];
    const dropped = await failure(b.chat({ type: 'chat', model: 'm:8b', messages: [{ role: 'user', content: 'x' }] }, hooks((t) => tokens.push(t))));
    expectError(dropped, 'backend_unavailable', true, url);
    expect(tokens).toEqual(['simulated', ' answer']);

    await fault(n, { hang_next: 1 });
    const hung = await failure(chat(backend(url, { requestTimeoutMs: 300 })));
    expectError(hung, 'backend_unavailable', true, url);
    await waitFor(() => n.state().aborted === 1, { what: 'the timed-out request to be closed' });
  });
});

/** A small real OpenAI-shaped server: records each request body and streams `events` as SSE, then [DONE]. */
async function sseStub(events: (body: any) => unknown[]) {
  const bodies: any[] = [];
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const body = raw ? JSON.parse(raw) : undefined;
      bodies.push(body);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end([...events(body).map((e) => `data: ${JSON.stringify(e)}\n\n`), 'data: [DONE]\n\n'].join(''));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => closeServer(server));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, bodies };
}

const delta = (d: Record<string, unknown>, finish: string | null = null) => ({ model: 'm', choices: [{ index: 0, delta: d, finish_reason: finish }] });

describe('openai backend: tools, reasoning, images', () => {
  it('sends tools, reasoning_effort, image parts and tool history in OpenAI form', async () => {
    const stub = await sseStub(() => [delta({ content: 'ok' }, 'stop')]);
    const tools = [{ type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
    await backend(stub.url).chat(
      {
        type: 'chat',
        model: 'm',
        tools,
        think: 'low',
        messages: [
          { role: 'user', content: 'look', images: ['/9j/4AAQ'] },
          { role: 'assistant', content: '', thinking: 'not sent', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
          { role: 'tool', content: '21 C', tool_name: 'get_weather' },
        ],
      },
      hooks(),
    );
    expect(stub.bodies[0]).toMatchObject({
      model: 'm',
      tools,
      reasoning_effort: 'low',
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'look' }, { type: 'image_url', image_url: { url: 'data:image/jpeg;base64,/9j/4AAQ' } }] },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1_0', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
        { role: 'tool', content: '21 C', tool_call_id: 'call_1_0' },
      ],
    });
    // think true/false has no portable OpenAI field: nothing is sent.
    await backend(stub.url).chat({ type: 'chat', model: 'm', think: true, messages: [{ role: 'user', content: 'x' }] }, hooks());
    expect(stub.bodies[1]).not.toHaveProperty('reasoning_effort');
  });

  it('keeps given tool_call ids, matches tool results by name, and tells image types apart', () => {
    const out = openaiMessages([
      { role: 'assistant', content: 'two calls', tool_calls: [{ id: 'a', function: { name: 'f', arguments: {} } }, { function: { name: 'g', arguments: { x: 1 } } }] },
      { role: 'tool', content: 'G', tool_name: 'g' },
      { role: 'tool', content: 'F', tool_call_id: 'a' },
    ]);
    expect(out.slice(1)).toEqual([
      { role: 'tool', content: 'G', tool_call_id: 'call_0_1' },
      { role: 'tool', content: 'F', tool_call_id: 'a' },
    ]);
    expect(['iVBORw0KGgo', '/9j/4AAQ', 'R0lGODlh', 'UklGRh4AAABXRUJQ'].map(imageMimeType)).toEqual(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);
  });

  it('assembles streamed tool-call deltas by index, parses their arguments, and streams reasoning to onThinking', async () => {
    const stub = await sseStub(() => [
      delta({ role: 'assistant', reasoning_content: 'Need the ' }),
      delta({ reasoning_content: 'weather.' }),
      delta({ tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '' } }] }),
      delta({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }),
      delta({ tool_calls: [{ index: 1, id: 'call_b', type: 'function', function: { name: 'broken', arguments: '{not json' } }] }),
      delta({ tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }),
      delta({}, 'tool_calls'),
    ]);
    const thoughts: string[] = [];
    const out = await backend(stub.url).chat(
      { type: 'chat', model: 'm', messages: [{ role: 'user', content: 'weather?' }], tools: [{ type: 'function', function: { name: 'get_weather' } }] },
      { signal: new AbortController().signal, onThinking: (t) => thoughts.push(t) },
    );
    expect(thoughts).toEqual(['Need the ', 'weather.']);
    expect(out.message).toEqual({
      role: 'assistant',
      content: '',
      thinking: 'Need the weather.',
      tool_calls: [
        { id: 'call_a', type: 'function', function: { index: 0, name: 'get_weather', arguments: { city: 'Paris' } } },
        // A model that wrote broken JSON: kept whole, for the client to see.
        { id: 'call_b', type: 'function', function: { index: 1, name: 'broken', arguments: { _raw: '{not json' } } },
      ],
    });
    // finish_reason tool_calls is a normal stop in Ollama's words (the message carries the calls).
    expect(out.done_reason).toBe('stop');
  });

  it('maps finish_reason length, sends suffix, refuses images in a generate', async () => {
    const stub = await sseStub(() => [{ model: 'm', choices: [{ index: 0, text: 'abc', finish_reason: 'length' }] }]);
    const b = backend(stub.url);
    const out = await b.generate({ type: 'generate', model: 'm', prompt: 'def f(', suffix: 'return x' }, hooks());
    expect(out).toMatchObject({ response: 'abc', done_reason: 'length' });
    expect(stub.bodies[0]).toMatchObject({ prompt: 'def f(', suffix: 'return x' });
    const e = await failure(b.generate({ type: 'generate', model: 'm', prompt: 'x', images: ['aW1n'] }, hooks()));
    expect(e.code).toBe('bad_request');
    expect(e.message).toMatch(/images/);
    expect(stub.bodies).toHaveLength(1);
  });

  it('reports capabilities only where configured', async () => {
    const n = await sim();
    const p = await backend(`${n.url}/v1`, { modelCapabilities: { 'm:8b': ['completion', 'tools'] } }).probe();
    expect(p.models_available.find((m) => m.name === 'm:8b')?.capabilities).toEqual(['completion', 'tools']);
    expect(p.models_available.find((m) => m.name === 'emb')).not.toHaveProperty('capabilities');
  });
});

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((r) => server.close(() => r()));
}
