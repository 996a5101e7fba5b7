// The Ollama backend against a real simulated Ollama node: streaming, probe contents, cancellation reaching the server, error mapping.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { HydraError, type ErrorCode } from '../../../libs/core/index.js';
import { silentLogger } from '../../../libs/logger/index.js';
import { estimateNeedMb, graphBytes, kvCacheBytes } from '../../../libs/scheduling/index.js';
import { freePort, waitFor } from '../../../test/support/wait.js';
import { simulatedAnswer } from '../../node-sim/sim-server.js';
import { cleanups, failure, fault, hooks, sim } from '../../../test/support/backend-fixtures.js';
import type { InferenceBackend } from './backend.js';
import { archFromModelInfo, createOllamaBackend } from './ollama.backend.js';

/** The simulated node's GB: GiB (2^30 bytes), as --vram-gb and NODE_VRAM_GB. */
const GiB = 1024 ** 3;

function backend(url: string, requestTimeoutMs?: number): InferenceBackend {
  const b = createOllamaBackend({ url, logger: silentLogger(), ...(requestTimeoutMs ? { requestTimeoutMs } : {}) });
  cleanups.push(() => b.close());
  return b;
}

describe('ollama backend: inference', () => {
  it('streams generate tokens in order, equal to the final text, with ms durations and token counts', async () => {
    // m:8b decodes at 400 tokens/s: 16 tokens take about 40 ms.
    const n = await sim({ fast: false, tokensPerSecond: 400, loadMsPerGb: 1 });
    const b = backend(n.url);
    const tokens: string[] = [];
    const out = await b.generate({ type: 'generate', model: 'm:8b', prompt: 'Why is the sky blue?', system: 'be brief' }, hooks((t) => tokens.push(t)));
    expect(tokens).toHaveLength(16);
    expect(tokens.join('')).toBe(out.response);
    expect(out.response).toBe(simulatedAnswer({ model: 'm:8b', prompt: 'Why is the sky blue?' }));
    expect(out).toMatchObject({ model: 'm:8b', done_reason: 'stop', prompt_tokens: 7, completion_tokens: 16 });
    expect(out.eval_duration_ms).toBeGreaterThan(30);
    expect(out.eval_duration_ms).toBeLessThan(5_000);
    expect(out.load_duration_ms).toBeGreaterThan(6);
    expect(out.total_duration_ms).toBeGreaterThanOrEqual(out.eval_duration_ms);
  });

  it('chats with options, format and keep_alive passed through', async () => {
    const n = await sim();
    const b = backend(n.url);
    const tokens: string[] = [];
    const out = await b.chat(
      { type: 'chat', model: 'm:8b', messages: [{ role: 'user', content: 'count to three' }], options: { num_predict: 3 }, keep_alive: 0 },
      hooks((t) => tokens.push(t)),
    );
    expect(out.message).toEqual({ role: 'assistant', content: 'simulated answer from' });
    expect(tokens).toEqual(['simulated', ' answer', ' from']);
    expect(out).toMatchObject({ done_reason: 'length', completion_tokens: 3, prompt_tokens: 3 });
    expect(n.state().loaded).toEqual([]);

    const schema = { type: 'object', properties: { steps: { type: 'array', items: { type: 'string' } }, done: { type: 'boolean' } }, required: ['steps', 'done'] };
    const structured = await b.chat({ type: 'chat', model: 'm:8b', messages: [{ role: 'user', content: 'plan' }], format: schema }, hooks());
    expect(JSON.parse(structured.message?.content ?? '')).toEqual({ steps: ['simulated'], done: true });
  });

  it('embeds one vector of the model width per input', async () => {
    const n = await sim();
    const out = await backend(n.url).embed({ type: 'embed', model: 'emb', input: ['a', 'b', 'c'] }, hooks());
    expect(out.embeddings).toHaveLength(3);
    expect(out.embeddings?.every((v) => v.length === 16)).toBe(true);
    expect(out).toMatchObject({ model: 'emb', prompt_tokens: 3, completion_tokens: 0 });
  });
});

describe('ollama backend: probe', () => {
  it('probes a node with many models without a listener-leak warning (one /api/show per model at once)', async () => {
    const n = await sim({ models: Array.from({ length: 14 }, (_, i) => ({ name: `m${i}:1b`, sizeGb: 0.5 })) });
    const warnings: string[] = [];
    const onWarning = (w: Error) => void warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    try {
      const p = await backend(n.url).probe();
      expect(p.models_available).toHaveLength(14);
      // Node emits its warnings on the next tick.
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.filter((w) => /MaxListeners/.test(w))).toEqual([]);
  });

  it('reports version, models with architecture, tags details, capabilities, loaded models, and caches /api/show', async () => {
    const n = await sim();
    const b = backend(n.url);
    await b.generate({ type: 'generate', model: 'm:8b', prompt: 'x' }, hooks());
    const p = await b.probe();
    expect(p).toMatchObject({ healthy: true, version: '0.12.0-simulated' });
    expect(p.models_available).toEqual([
      {
        name: 'm:8b',
        size_bytes: 8 * GiB,
        digest: expect.stringMatching(/^[0-9a-f]{64}$/),
        modified_at: expect.any(String),
        details: { format: 'gguf', family: 'simulated', families: ['simulated'], parameter_size: '13.3B', quantization_level: 'Q4_K_M' },
        capabilities: expect.arrayContaining(['completion']),
        family: 'simulated',
        parameter_size: '13.3B',
        quantization: 'Q4_K_M',
        arch: { block_count: 40, head_count: 40, head_count_kv: 8, embedding_length: 5120, context_length: 40960, key_length: 128, value_length: 128, vocab_size: 128256 },
      },
      {
        name: 'emb',
        size_bytes: 0.5 * GiB,
        digest: expect.stringMatching(/^[0-9a-f]{64}$/),
        modified_at: expect.any(String),
        details: { format: 'gguf', family: 'simulated', families: ['simulated'], parameter_size: '833M', quantization_level: 'Q4_K_M' },
        capabilities: expect.arrayContaining(['embedding']),
        family: 'simulated',
        parameter_size: '833M',
        quantization: 'Q4_K_M',
        arch: { block_count: 12, head_count: 1, head_count_kv: 1, embedding_length: 16, context_length: 8192, key_length: 16, value_length: 16, vocab_size: 128256 },
        embedding_length: 16,
      },
      expect.objectContaining({ name: 'huge', size_bytes: 40 * GiB, arch: expect.objectContaining({ block_count: 80 }) }),
    ]);
    // The simulated node loads as Ollama does: weights + KV cache of its 4 slots × 4096 + compute graph, which is
    // exactly the worker's own estimate of that load.
    const m8b = p.models_available[0]!;
    const loadedBytes = 8 * GiB + kvCacheBytes(m8b.arch!, 4096, 4) + graphBytes({ embedding_length: 5120, head_count: 40, vocab_size: 128256 }, 4096, 4);
    expect(p.models_loaded).toEqual([
      { name: 'm:8b', size_bytes: loadedBytes, vram_bytes: loadedBytes, expires_at: expect.any(String), digest: m8b.digest, context_length: 4096 },
    ]);
    expect(Math.ceil(loadedBytes / 2 ** 20)).toBe(estimateNeedMb(m8b, 4096, 4));
    await b.probe();
    expect(n.state().requests).toMatchObject({ 'GET /api/version': 2, 'GET /api/tags': 2, 'GET /api/ps': 2, 'POST /api/show': 3 });
  });

  it('reports an unreachable server as unhealthy without throwing, and calls fail as backend_unavailable', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const b = backend(url);
    const p = await b.probe();
    expect(p).toEqual({ healthy: false, error: expect.stringContaining(url), models_available: [], models_loaded: [] });
    const e = await failure(b.generate({ type: 'generate', model: 'm:8b', prompt: 'x' }, hooks()));
    expect(e.code).toBe('backend_unavailable');
    expect(e.retryable).toBe(true);
    expect(e.message).toContain(url);
  });

  it('gives up a probe after 2 s, or the caller\'s deadline, when the server accepts but never answers', async () => {
    const server = createServer(() => undefined);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => closeServer(server));
    const b = backend(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    const started = Date.now();
    const p = await b.probe();
    expect(p.healthy).toBe(false);
    expect(p.error).toMatch(/did not answer within 2000 ms/);
    expect(Date.now() - started).toBeLessThan(4_000);
    // A caller's shorter deadline wins, and is reported as a deadline, not a cancellation.
    const quick = await b.probe(AbortSignal.timeout(200));
    expect(quick).toMatchObject({ healthy: false, error: expect.stringMatching(/did not answer before the probe deadline/) });
  });
});

describe('ollama backend: cancellation', () => {
  it('aborting mid-stream closes the request on the server and rejects with cancelled', async () => {
    const n = await sim({ fast: false, tokensPerSecond: 100, loadMsPerGb: 0 });
    const b = backend(n.url);
    const ac = new AbortController();
    const tokens: string[] = [];
    const e = await failure(
      b.generate(
        { type: 'generate', model: 'm:8b', prompt: 'x', options: { sim_answer_tokens: 10_000 } },
        {
          signal: ac.signal,
          onToken: (t) => {
            tokens.push(t);
            if (tokens.length === 2) ac.abort();
          },
        },
      ),
    );
    expect(e.code).toBe('cancelled');
    expect(e.retryable).toBe(false);
    await waitFor(() => n.state().aborted === 1 && n.state().active_requests === 0, { what: 'the simulated node to see the abort' });
    expect(n.state().served).toBe(0);
  });

  it('rejects at once when the signal is already aborted', async () => {
    const n = await sim();
    const ac = new AbortController();
    ac.abort();
    const e = await failure(backend(n.url).chat({ type: 'chat', model: 'm:8b', messages: [{ role: 'user', content: 'x' }] }, { signal: ac.signal }));
    expect(e.code).toBe('cancelled');
    expect(n.state().requests['POST /api/chat']).toBeUndefined();
  });
});

describe('ollama backend: error mapping', () => {
  const call = (b: InferenceBackend, model = 'm:8b'): Promise<unknown> => b.generate({ type: 'generate', model, prompt: 'x' }, hooks());
  const expectError = (e: HydraError, code: ErrorCode, retryable: boolean, url: string): void => {
    expect({ code: e.code, retryable: e.retryable }).toEqual({ code, retryable });
    expect(e.message).toContain(url);
  };

  it('maps 5xx, 4xx, unknown model and out-of-memory answers', async () => {
    // 1 GB of system RAM: the 40 GB model can be neither held in VRAM nor offloaded.
    const n = await sim({ ramGb: 1 });
    const b = backend(n.url);
    await fault(n, { fail_next: 1, fail_status: 500, fail_message: 'runner crashed' });
    const e500 = await failure(call(b));
    expectError(e500, 'backend_error', true, n.url);
    expect(e500.message).toContain('runner crashed');
    await fault(n, { fail_next: 1, fail_status: 400, fail_message: 'invalid options' });
    expectError(await failure(call(b)), 'backend_error', false, n.url);
    expectError(await failure(call(b, 'missing:1b')), 'model_not_found', false, n.url);
    const oom = await failure(call(b, 'huge'));
    expectError(oom, 'out_of_memory', true, n.url);
    expect(oom.message).toContain('requires more system memory');
    expectError(await failure(b.embed({ type: 'embed', model: 'missing', input: 'x' }, hooks())), 'model_not_found', false, n.url);
  });

  it('maps a connection cut mid-stream to backend_unavailable, after the tokens that arrived', async () => {
    const n = await sim();
    const b = backend(n.url);
    await fault(n, { drop_next: 1, drop_after_tokens: 3 });
    const tokens: string[] = [];
    const e = await failure(b.generate({ type: 'generate', model: 'm:8b', prompt: 'x' }, hooks((t) => tokens.push(t))));
    expectError(e, 'backend_unavailable', true, n.url);
    expect(tokens).toEqual(['simulated', ' answer', ' from']);
    expect(n.state().dropped).toBe(1);
  });

  it('maps a server that never answers to backend_unavailable after the request timeout', async () => {
    const n = await sim();
    await fault(n, { hang_next: 1 });
    const e = await failure(call(backend(n.url, 300)));
    expectError(e, 'backend_unavailable', true, n.url);
    expect(e.message).toMatch(/did not answer in time/);
    await waitFor(() => n.state().aborted === 1, { what: 'the timed-out request to be closed' });
  });

  it('treats an {"error"} line mid-stream, or a stream without done, as a failure', async () => {
    let mode: 'error' | 'no-done' = 'error';
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write(`${JSON.stringify({ model: 'm', response: 'partial', done: false })}\n`);
      res.end(mode === 'error' ? `${JSON.stringify({ error: 'an error was encountered while running the model: CUDA error' })}\n` : '');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => closeServer(server));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const b = backend(url);
    const e = await failure(call(b));
    expectError(e, 'backend_error', true, url);
    expect(e.message).toContain('CUDA error');
    mode = 'no-done';
    const e2 = await failure(call(b));
    expectError(e2, 'backend_error', true, url);
    expect(e2.message).toMatch(/without a final "done"/);
  });
});

/** A small real Ollama-shaped server: records each request (method, path, JSON body) and answers with `reply`. */
async function ollamaStub(reply: (path: string, body: any, res: import('node:http').ServerResponse) => void) {
  const seen: { method: string; path: string; body: any }[] = [];
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const body = raw ? JSON.parse(raw) : undefined;
      seen.push({ method: req.method ?? '', path: req.url ?? '', body });
      reply(req.url ?? '', body, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => closeServer(server));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

const ndjsonLines = (res: import('node:http').ServerResponse, lines: unknown[], status = 200) => {
  res.writeHead(status, { 'content-type': 'application/x-ndjson' });
  res.end(lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
};
const doneLine = { done: true, done_reason: 'stop', prompt_eval_count: 3, eval_count: 4, total_duration: 2e6 };

describe('ollama backend: tools, thinking, images', () => {
  it('passes tools, think, images, tool history and generate/embed extras through as Ollama takes them', async () => {
    const stub = await ollamaStub((path, _body, res) => {
      if (path === '/api/embed') return ndjsonLines(res, [{ embeddings: [[1, 0]] }]);
      ndjsonLines(res, [path === '/api/chat' ? { message: { role: 'assistant', content: 'ok' }, done: false } : { response: 'ok', done: false }, doneLine]);
    });
    const b = backend(stub.url);
    const tools = [{ type: 'function' as const, function: { name: 'get_weather', description: 'weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
    const messages = [
      { role: 'user' as const, content: 'what is in this picture, and the weather?', images: ['aW1n'] },
      { role: 'assistant' as const, content: '', thinking: 'I should call the tool', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
      { role: 'tool' as const, content: '21 C', tool_name: 'get_weather' },
    ];
    await b.chat({ type: 'chat', model: 'm', messages, tools, think: 'high' }, hooks());
    await b.generate({ type: 'generate', model: 'm', prompt: 'def f(', suffix: '  return x', template: '{{ .Prompt }}', raw: true, images: ['aW1n'], context: [1, 2], think: true }, hooks());
    await b.embed({ type: 'embed', model: 'emb', input: 'x', truncate: false, dimensions: 2 }, hooks());
    expect(stub.seen[0]).toMatchObject({ method: 'POST', path: '/api/chat' });
    expect(stub.seen[0]?.body).toEqual({ model: 'm', messages, tools, think: 'high', stream: true });
    expect(stub.seen[1]?.body).toEqual({ model: 'm', prompt: 'def f(', suffix: '  return x', template: '{{ .Prompt }}', raw: true, images: ['aW1n'], context: [1, 2], think: true, stream: true });
    expect(stub.seen[2]?.body).toEqual({ model: 'emb', input: 'x', truncate: false, dimensions: 2 });
  });

  it('streams thinking to onThinking and content to onToken, and returns the tool calls of a streamed chat', async () => {
    const stub = await ollamaStub((path, _body, res) =>
      ndjsonLines(
        res,
        path === '/api/chat'
          ? [
              { message: { role: 'assistant', content: '', thinking: 'The user wants ' }, done: false },
              { message: { role: 'assistant', content: '', thinking: 'the weather.' }, done: false },
              { message: { role: 'assistant', content: 'Checking.' }, done: false },
              { message: { role: 'assistant', content: '', tool_calls: [{ id: 'call_1', function: { index: 0, name: 'get_weather', arguments: { city: 'Paris' } } }] }, done: false },
              { message: { role: 'assistant', content: '', tool_calls: [{ function: { index: 1, name: 'get_time', arguments: '{"tz":"CET"}' } }] }, done: false },
              { ...doneLine, message: { role: 'assistant', content: '' } },
            ]
          : [{ thinking: 'hmm', response: '', done: false }, { response: '42', done: false }, doneLine],
      ),
    );
    const b = backend(stub.url);
    const thoughts: string[] = [];
    const tokens: string[] = [];
    const h = { signal: new AbortController().signal, onToken: (t: string) => tokens.push(t), onThinking: (t: string) => thoughts.push(t) };
    const out = await b.chat({ type: 'chat', model: 'm', messages: [{ role: 'user', content: 'weather?' }], think: true, tools: [{ type: 'function', function: { name: 'get_weather' } }] }, h);
    expect(thoughts).toEqual(['The user wants ', 'the weather.']);
    expect(tokens).toEqual(['Checking.']);
    expect(out.message).toEqual({
      role: 'assistant',
      content: 'Checking.',
      thinking: 'The user wants the weather.',
      tool_calls: [
        { id: 'call_1', type: 'function', function: { index: 0, name: 'get_weather', arguments: { city: 'Paris' } } },
        { type: 'function', function: { index: 1, name: 'get_time', arguments: { tz: 'CET' } } },
      ],
    });
    expect(out.done_reason).toBe('stop');
    const gen = await b.generate({ type: 'generate', model: 'm', prompt: 'x', think: true }, h);
    expect(gen).toMatchObject({ response: '42', thinking: 'hmm' });
  });

  it('reports capabilities from /api/show, calling show once per model digest across heartbeats', async () => {
    let digest = 'a'.repeat(64);
    const stub = await ollamaStub((path, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      if (path === '/api/version') return res.end(JSON.stringify({ version: '0.12.0' }));
      if (path === '/api/ps') return res.end(JSON.stringify({ models: [] }));
      if (path === '/api/tags') return res.end(JSON.stringify({ models: [{ name: 'llava:7b', size: 4e9, digest, modified_at: '2025-01-01T00:00:00+01:00' }] }));
      res.end(JSON.stringify({ model_info: {}, capabilities: ['completion', 'vision', 'some-future-capability'] }));
    });
    const b = backend(stub.url);
    expect((await b.probe()).models_available[0]).toMatchObject({ name: 'llava:7b', digest, modified_at: '2025-01-01T00:00:00+01:00', capabilities: ['completion', 'vision'] });
    await b.probe();
    const shows = () => stub.seen.filter((r) => r.path === '/api/show').length;
    expect(shows()).toBe(1);
    digest = 'b'.repeat(64); // re-pulled: a new digest may mean new capabilities
    await b.probe();
    expect(shows()).toBe(2);
  });
});

describe('ollama backend: pull, delete, unload', () => {
  it('streams pull progress to onProgress and succeeds on "success"; an error line fails naming it', async () => {
    let fail = false;
    const stub = await ollamaStub((_path, _body, res) =>
      ndjsonLines(
        res,
        fail
          ? [{ status: 'pulling manifest' }, { error: 'pull model manifest: file does not exist' }]
          : [{ status: 'pulling manifest' }, { status: 'pulling abc', digest: 'sha256:abc', total: 100, completed: 40 }, { status: 'pulling abc', digest: 'sha256:abc', total: 100, completed: 100 }, { status: 'success' }],
      ),
    );
    const b = backend(stub.url);
    const progress: unknown[] = [];
    await b.pull!('qwen3:0.6b', { insecure: true }, { signal: new AbortController().signal, onProgress: (p) => progress.push(p) });
    expect(stub.seen[0]).toEqual({ method: 'POST', path: '/api/pull', body: { model: 'qwen3:0.6b', stream: true, insecure: true } });
    expect(progress).toEqual([
      { status: 'pulling manifest' },
      { status: 'pulling abc', digest: 'sha256:abc', total: 100, completed: 40 },
      { status: 'pulling abc', digest: 'sha256:abc', total: 100, completed: 100 },
      { status: 'success' },
    ]);
    fail = true;
    const e = await failure(b.pull!('nope', {}, { signal: new AbortController().signal }));
    expect(e.message).toMatch(/could not pull nope: pull model manifest: file does not exist/);
    expect(e.retryable).toBe(false);
  });

  it('deletes with DELETE /api/delete (404 is model_not_found) and unloads with keep_alive 0', async () => {
    const stub = await ollamaStub((path, body, res) => {
      if (path === '/api/delete' && body.model === 'gone') {
        res.writeHead(404, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ error: "model 'gone' not found" }));
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(path === '/api/generate' ? JSON.stringify({ model: body.model, response: '', done: true, done_reason: 'unload' }) : '');
    });
    const b = backend(stub.url);
    const h = { signal: new AbortController().signal };
    await b.delete!('m:8b', h);
    await b.unload!('m:8b', h);
    expect(stub.seen.slice(0, 2)).toEqual([
      { method: 'DELETE', path: '/api/delete', body: { model: 'm:8b' } },
      { method: 'POST', path: '/api/generate', body: { model: 'm:8b', keep_alive: 0, stream: false } },
    ]);
    const e = await failure(b.delete!('gone', h));
    expect(e.code).toBe('model_not_found');
    expect(e.message).toMatch(/model gone is not on ollama at .*: nothing to delete/);
  });
});

describe('archFromModelInfo', () => {
  it('reads the architecture-prefixed keys, defaulting head_count_kv and taking the largest per-layer value', () => {
    expect(archFromModelInfo({ 'general.architecture': 'qwen3', 'qwen3.block_count': 36, 'qwen3.attention.head_count': 32, 'qwen3.embedding_length': 4096 })).toEqual({
      block_count: 36,
      head_count: 32,
      head_count_kv: 32,
      embedding_length: 4096,
    });
    expect(archFromModelInfo({ 'general.architecture': 'x', 'x.block_count': 2, 'x.attention.head_count': [4, 8], 'x.attention.head_count_kv': [2, 2], 'x.embedding_length': 64, 'x.context_length': 512 })).toEqual({
      block_count: 2,
      head_count: 8,
      head_count_kv: 2,
      embedding_length: 64,
      context_length: 512,
    });
    // llama3.1:8b as Ollama's /api/show describes it: explicit head widths and the vocabulary for the memory estimate.
    const llama31 = {
      'general.architecture': 'llama',
      'llama.block_count': 32,
      'llama.attention.head_count': 32,
      'llama.attention.head_count_kv': 8,
      'llama.attention.key_length': 128,
      'llama.attention.value_length': 128,
      'llama.embedding_length': 4096,
      'llama.context_length': 131072,
      'llama.vocab_size': 128256,
      'tokenizer.ggml.tokens': null,
    };
    expect(archFromModelInfo(llama31)).toEqual({ block_count: 32, head_count: 32, head_count_kv: 8, embedding_length: 4096, context_length: 131072, key_length: 128, value_length: 128, vocab_size: 128256 });
    // Without vocab_size, a verbose /api/show's token list gives it.
    const { ['llama.vocab_size']: _, ...noVocab } = llama31;
    expect(archFromModelInfo({ ...noVocab, 'tokenizer.ggml.tokens': ['a', 'b', 'c'] })?.vocab_size).toBe(3);
    expect(archFromModelInfo(noVocab)).not.toHaveProperty('vocab_size');
    expect(archFromModelInfo({ 'general.architecture': 'llama', 'llama.block_count': 2 })).toBeUndefined();
    expect(archFromModelInfo(undefined)).toBeUndefined();
  });
});

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((r) => server.close(() => r()));
}
