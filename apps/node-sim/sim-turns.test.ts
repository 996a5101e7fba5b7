// The simulated node's richer turns over real HTTP: tool calls, reasoning (think) and images, on /api/chat, /api/generate and /v1/chat/completions.
import { describe, expect, it } from 'vitest';
import { simulatedAnswer, simulatedThinking, toolArguments } from './sim-server.js';
import { getJson, ndjson, postJson, send, sseChunks, startSim } from './sim-test-support.js';

/** The simulator's GB: GiB (2^30 bytes), the unit of --vram-gb and of NODE_VRAM_GB. */
const GiB = 1024 ** 3;

const MODELS = [
  { name: 'chat:8b', sizeGb: 5 },
  { name: 'plain:1b', sizeGb: 1, capabilities: ['completion' as const] },
  { name: 'think:8b', sizeGb: 5, capabilities: ['completion' as const, 'tools' as const, 'thinking' as const] },
  { name: 'eye:7b', sizeGb: 4.7, capabilities: ['completion' as const, 'vision' as const] },
  { name: 'nomic-embed-text', sizeGb: 0.27 },
];
const WEATHER = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'current weather',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, days: { type: 'integer' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] }, alerts: { type: 'boolean' }, note: { type: 'string' } },
      required: ['city', 'days', 'unit', 'alerts'],
    },
  },
};
const OTHER = { type: 'function', function: { name: 'other', parameters: { type: 'object', properties: {} } } };
const ASK = 'What is the weather in Paris for 3 days?';
const ARGS = { city: 'days', days: 3, unit: 'celsius', alerts: true };
const PNG = Buffer.from('simulated image bytes').toString('base64');

describe('capabilities per model', () => {
  it('reports capabilities in /api/show and Ollama fields in /api/tags and /api/ps', async () => {
    const n = await startSim({ models: MODELS });
    const caps = async (model: string): Promise<string[]> => (await postJson(n, '/api/show', { model })).capabilities;
    expect(await caps('chat:8b')).toEqual(['completion', 'tools']);
    expect(await caps('plain:1b')).toEqual(['completion']);
    expect(await caps('think:8b')).toEqual(['completion', 'tools', 'thinking']);
    expect(await caps('nomic-embed-text')).toEqual(['embedding']);
    // The name alone makes it an embedding model: its vectors are as wide as /api/show says.
    const show = await postJson(n, '/api/show', { model: 'nomic-embed-text' });
    const emb = await postJson(n, '/api/embed', { model: 'nomic-embed-text', input: 'x' });
    expect(emb.embeddings[0]).toHaveLength(show.model_info['llama.embedding_length']);
    expect((await send(n, 'POST', '/api/chat', { model: 'nomic-embed-text', messages: [{ role: 'user', content: 'x' }] })).status).toBe(400);

    const tags = await getJson(n, '/api/tags');
    expect(tags.models[0]).toEqual({
      name: 'chat:8b',
      model: 'chat:8b',
      modified_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      size: 5 * GiB,
      digest: expect.stringMatching(/^[0-9a-f]{64}$/),
      details: { parent_model: '', format: 'gguf', family: 'simulated', families: ['simulated'], parameter_size: '8.3B', quantization_level: 'Q4_K_M' },
    });
    await postJson(n, '/api/generate', { model: 'chat:8b', keep_alive: -1 });
    const ps = await getJson(n, '/api/ps');
    // /api/ps `size` is the loaded footprint: 5 GiB of weights + f16 KV for 4096 tokens × 4 slots (32 layers × 8 kv
    // heads × 128 × 2 × 2 bytes a token: 2 GiB) + the compute graph (4 · 512 · (1 + 4 · 4096 + 16384 · 33) bytes).
    const size = 5 * GiB + 2 * GiB + 4 * 512 * (1 + 4 * 4096 + 16384 * 33);
    expect(ps.models.find((m: any) => m.name === 'chat:8b')).toEqual(
      { name: 'chat:8b', model: 'chat:8b', size, size_vram: size, digest: tags.models[0].digest, details: tags.models[0].details, expires_at: expect.stringMatching(/Z$/), context_length: 4096 },
    );
  });

  it('matches a name without a tag to its :latest model, as Ollama does', async () => {
    const n = await startSim({ models: [{ name: 'qwen3:latest', sizeGb: 5 }] });
    const r = await postJson(n, '/api/generate', { model: 'qwen3', prompt: 'hi', stream: false });
    expect(r).toMatchObject({ model: 'qwen3:latest', done: true });
  });
});

describe('tool calls', () => {
  it('builds deterministic arguments from the first tool\'s required parameters', () => {
    expect(toolArguments(WEATHER.function.parameters, ASK)).toEqual(ARGS);
    expect(toolArguments({ type: 'object', properties: { q: { type: 'string' }, n: { type: 'number', minimum: 10 } } }, 'find cats, 2 of them!')).toEqual({ q: 'them', n: 10 });
    expect(toolArguments(undefined, 'x')).toEqual({});
  });

  it('Ollama chat: a request with tools gets a call to the first tool, whole or streamed in one chunk before done', async () => {
    const n = await startSim({ models: MODELS });
    const body = { model: 'chat:8b', messages: [{ role: 'user', content: ASK }], tools: [WEATHER, OTHER] };
    const whole = await postJson(n, '/api/chat', { ...body, stream: false });
    expect(whole).toMatchObject({ done: true, done_reason: 'stop', message: { role: 'assistant', content: '' } });
    expect(whole.message.tool_calls).toEqual([{ id: expect.stringMatching(/^call_[a-z0-9]{8}$/), function: { index: 0, name: 'get_weather', arguments: ARGS } }]);
    expect(whole.eval_count).toBeGreaterThan(1);

    const objs = ndjson(await (await send(n, 'POST', '/api/chat', body)).text());
    expect(objs).toHaveLength(2);
    expect(objs[0]).toMatchObject({ done: false, message: { content: '', tool_calls: [{ function: { name: 'get_weather', arguments: ARGS } }] } });
    expect(objs[1]).toMatchObject({ done: true, done_reason: 'stop', message: { content: '' } });
    expect(objs[1].message.tool_calls).toBeUndefined();
  });

  it('answers a tool result with text that quotes it, and makes no further call', async () => {
    const n = await startSim({ models: MODELS });
    const messages = [
      { role: 'user', content: ASK },
      { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: ARGS } }] },
      { role: 'tool', content: '{"temperature":21} sunny', tool_name: 'get_weather' },
    ];
    const r = await postJson(n, '/api/chat', { model: 'chat:8b', messages, tools: [WEATHER], stream: false });
    expect(r.message.tool_calls).toBeUndefined();
    expect(r.message.content).toBe(simulatedAnswer({ model: 'chat:8b', prompt: ASK, toolResult: '{"temperature":21} sunny' }));
    expect(r.message.content).toMatch(/^simulated answer from chat:8b using tool result: \{"temperature":21\} sunny lorem/);
  });

  it("answers Ollama's 400 for tools on a model without the capability", async () => {
    const n = await startSim({ models: MODELS });
    const r = await send(n, 'POST', '/api/chat', { model: 'plain:1b', messages: [{ role: 'user', content: 'x' }], tools: [WEATHER] });
    expect(r.status).toBe(400);
    expect(await r.json()).toEqual({ error: 'registry.ollama.ai/library/plain:1b does not support tools' });
  });

  it('OpenAI: tool_calls with ids and JSON-string arguments, finish_reason tool_calls, streamed as deltas with index', async () => {
    const n = await startSim({ models: MODELS });
    const body = { model: 'chat:8b', messages: [{ role: 'user', content: ASK }], tools: [WEATHER, OTHER] };
    const whole = await postJson(n, '/v1/chat/completions', body);
    expect(whole.choices[0]).toMatchObject({ finish_reason: 'tool_calls', message: { role: 'assistant', content: '' } });
    const [call] = whole.choices[0].message.tool_calls;
    expect(call).toMatchObject({ index: 0, id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'get_weather' } });
    expect(JSON.parse(call.function.arguments)).toEqual(ARGS);

    const chunks = sseChunks(await (await send(n, 'POST', '/v1/chat/completions', { ...body, stream: true })).text());
    const withCalls = chunks.filter((c) => c.choices[0]?.delta?.tool_calls);
    expect(withCalls).toHaveLength(1);
    expect(withCalls[0].choices[0].delta.tool_calls[0]).toMatchObject({ index: 0, type: 'function', function: { name: 'get_weather' } });
    expect(JSON.parse(withCalls[0].choices[0].delta.tool_calls[0].function.arguments)).toEqual(ARGS);
    expect(chunks[chunks.length - 1].choices[0].finish_reason).toBe('tool_calls');

    const forced = await postJson(n, '/v1/chat/completions', { ...body, tool_choice: { type: 'function', function: { name: 'other' } } });
    expect(forced.choices[0].message.tool_calls[0].function).toEqual({ name: 'other', arguments: '{}' });
    const none = await postJson(n, '/v1/chat/completions', { ...body, tool_choice: 'none' });
    expect(none.choices[0]).toMatchObject({ finish_reason: 'stop', message: { content: simulatedAnswer({ model: 'chat:8b', prompt: ASK }) } });
    expect(none.choices[0].message.tool_calls).toBeUndefined();

    const roundTrip = await postJson(n, '/v1/chat/completions', {
      ...body,
      messages: [...body.messages, { role: 'assistant', content: null, tool_calls: [{ ...call }] }, { role: 'tool', tool_call_id: call.id, content: 'rainy' }],
    });
    expect(roundTrip.choices[0]).toMatchObject({ finish_reason: 'stop', message: { content: simulatedAnswer({ model: 'chat:8b', prompt: ASK, toolResult: 'rainy' }) } });
  });
});

describe('thinking', () => {
  it('streams the reasoning before the answer on /api/chat, and returns it whole in message.thinking', async () => {
    const n = await startSim({ models: MODELS });
    const body = { model: 'think:8b', messages: [{ role: 'user', content: 'why is the sky blue' }], think: true };
    const objs = ndjson(await (await send(n, 'POST', '/api/chat', body)).text());
    const thinkingAt = objs.map((o, i) => (o.message?.thinking ? i : -1)).filter((i) => i >= 0);
    const contentAt = objs.map((o, i) => (o.message?.content ? i : -1)).filter((i) => i >= 0);
    expect(Math.max(...thinkingAt)).toBeLessThan(Math.min(...contentAt));
    expect(objs.map((o) => o.message.thinking ?? '').join('')).toBe(simulatedThinking({ model: 'think:8b', prompt: 'why is the sky blue', think: true }));
    expect(objs.map((o) => o.message.content).join('')).toBe(simulatedAnswer({ model: 'think:8b', prompt: 'why is the sky blue' }));
    expect(objs[objs.length - 1]).toMatchObject({ done: true, eval_count: thinkingAt.length + contentAt.length });

    const whole = await postJson(n, '/api/chat', { ...body, stream: false, think: 'high' });
    expect(whole.message.thinking).toBe(simulatedThinking({ model: 'think:8b', prompt: 'why is the sky blue', think: 'high' }));
    expect(whole.message.thinking.split(' ')).toHaveLength(32);
    // As on Ollama, a thinking model thinks unless told not to.
    expect((await postJson(n, '/api/chat', { ...body, think: undefined, stream: false })).message.thinking).toBeTruthy();
    expect((await postJson(n, '/api/chat', { ...body, think: false, stream: false })).message.thinking).toBeUndefined();
  });

  it('carries thinking on /api/generate and reasoning on the OpenAI route', async () => {
    const n = await startSim({ models: MODELS });
    const gen = await postJson(n, '/api/generate', { model: 'think:8b', prompt: 'two plus two', think: 'low', stream: false });
    expect(gen).toMatchObject({ thinking: simulatedThinking({ model: 'think:8b', prompt: 'two plus two', think: 'low' }), response: simulatedAnswer({ model: 'think:8b', prompt: 'two plus two' }) });
    const oa = await postJson(n, '/v1/chat/completions', { model: 'think:8b', messages: [{ role: 'user', content: 'two plus two' }], reasoning_effort: 'low' });
    expect(oa.choices[0].message).toMatchObject({ reasoning: gen.thinking, reasoning_content: gen.thinking, content: gen.response });
    const chunks = sseChunks(await (await send(n, 'POST', '/v1/chat/completions', { model: 'think:8b', messages: [{ role: 'user', content: 'two plus two' }], stream: true })).text());
    expect(chunks.map((c) => c.choices[0]?.delta?.reasoning_content ?? '').join('')).toBe(simulatedThinking({ model: 'think:8b', prompt: 'two plus two' }));
    const off = await postJson(n, '/v1/chat/completions', { model: 'think:8b', messages: [{ role: 'user', content: 'x' }], reasoning_effort: 'none' });
    expect(off.choices[0].message.reasoning).toBeUndefined();
  });

  it('counts reasoning against num_predict', async () => {
    const n = await startSim({ models: MODELS });
    const r = await postJson(n, '/api/generate', { model: 'think:8b', prompt: 'x', stream: false, options: { num_predict: 5 } });
    expect(r).toMatchObject({ response: '', done_reason: 'length', eval_count: 5, thinking: 'simulated reasoning by think:8b about:' });
  });

  it("answers Ollama's 400 for think on a model without the capability", async () => {
    const n = await startSim({ models: MODELS });
    for (const [path, body] of [
      ['/api/chat', { model: 'chat:8b', messages: [{ role: 'user', content: 'x' }], think: true }],
      ['/api/generate', { model: 'chat:8b', prompt: 'x', think: 'high' }],
    ] as const) {
      const r = await send(n, 'POST', path, body);
      expect(r.status).toBe(400);
      expect(await r.json()).toEqual({ error: '"chat:8b" does not support thinking' });
    }
    const oa = await send(n, 'POST', '/v1/chat/completions', { model: 'chat:8b', messages: [{ role: 'user', content: 'x' }], reasoning_effort: 'high' });
    expect(oa.status).toBe(400);
    expect((await oa.json()).error.message).toBe('"chat:8b" does not support thinking');
    expect((await postJson(n, '/api/chat', { model: 'chat:8b', messages: [{ role: 'user', content: 'x' }], think: false, stream: false })).done).toBe(true);
  });
});

describe('images', () => {
  it('a vision model says how many images it saw; images cost prompt tokens', async () => {
    const n = await startSim({ models: MODELS });
    const chat = await postJson(n, '/api/chat', { model: 'eye:7b', messages: [{ role: 'user', content: 'what is this', images: [PNG, PNG] }], stream: false });
    expect(chat.message.content).toBe(simulatedAnswer({ model: 'eye:7b', prompt: 'what is this', images: 2 }));
    expect(chat.message.content).toMatch(/^simulated answer from eye:7b to: \(saw 2 images\) what is this/);
    expect(chat.prompt_eval_count).toBe(3 + 2 * 768);
    const gen = await postJson(n, '/api/generate', { model: 'eye:7b', prompt: 'describe', images: [PNG], stream: false });
    expect(gen.response).toMatch(/^simulated answer from eye:7b to: \(saw 1 image\) describe/);
    const oa = await postJson(n, '/v1/chat/completions', {
      model: 'eye:7b',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } }] }],
    });
    expect(oa.choices[0].message.content).toBe(simulatedAnswer({ model: 'eye:7b', prompt: 'what is this', images: 1 }));
  });

  it('rejects images for a model without vision, bad base64 and non-data image URLs with a 400', async () => {
    const n = await startSim({ models: MODELS });
    const noVision = await send(n, 'POST', '/api/chat', { model: 'chat:8b', messages: [{ role: 'user', content: 'x', images: [PNG] }] });
    expect(noVision.status).toBe(400);
    expect(await noVision.json()).toEqual({ error: '"chat:8b" does not support images' });
    const bad = await send(n, 'POST', '/api/generate', { model: 'eye:7b', prompt: 'x', images: ['not base64!'] });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toMatch(/invalid image in images\[0\]/);
    const url = await send(n, 'POST', '/v1/chat/completions', { model: 'eye:7b', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: 'https://example.com/a.png' }] }] });
    expect(url.status).toBe(400);
    expect((await url.json()).error.message).toMatch(/invalid image input/);
  });
});
