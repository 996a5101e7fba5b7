// The OpenAI surface driven by the official `openai` client: models, chat and legacy completions (plain and streamed),
// JSON output, embeddings in both encodings, tool calls, errors, aborts, cancellation, routing and auth.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulatedAnswer } from '../apps/node-sim/sim-server.js';
import { readSse, startCluster, type TestCluster } from './support/cluster.js';
import { waitFor } from './support/wait.js';

const CHAT = 'qwen3:4b';
/** On the slow node (answers take seconds: long enough to abort or cancel them midway; pinned there by X-Hydra-Node) and on big80. */
const SLOW = 'tinyllama:1b';
const EMBED = 'nomic-embed-text';
const VISION = 'llava:7b';
/** A thinking model (thinks unless told not to, as Ollama's do). */
const THINKER = 'qwen3:1.7b';

describe('OpenAI API', () => {
  let c: TestCluster;
  let client: OpenAI;
  beforeAll(async () => {
    c = await startCluster();
    await Promise.all([
      c.simWorker('small8', { vramGb: 8, models: [{ name: CHAT, sizeGb: 2.5 }, { name: THINKER, sizeGb: 1.4, capabilities: ['completion', 'tools', 'thinking'] }, { name: EMBED, sizeGb: 0.27, embeddingLength: 768 }], tokensPerSecond: 2000, loadMsPerGb: 0 }),
      c.simWorker('big80', { vramGb: 80, models: [{ name: 'llama3.1:70b', sizeGb: 43 }, { name: CHAT, sizeGb: 2.5 }, { name: VISION, sizeGb: 4.7, capabilities: ['completion', 'vision'] }, { name: SLOW, sizeGb: 0.6 }], tokensPerSecond: 2000, loadMsPerGb: 0 }),
      c.simWorker('slow', { vramGb: 8, models: [{ name: SLOW, sizeGb: 0.6 }], tokensPerSecond: 4, loadMsPerGb: 0 }),
    ]);
    client = new OpenAI({ baseURL: `${c.url}/v1`, apiKey: 'x', maxRetries: 0 });
  }, 60_000);
  const onSlow = { headers: { 'X-Hydra-Node': 'slow' } };
  afterAll(async () => c?.stop());

  it('lists the cluster’s models once each and retrieves one by id', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toEqual([EMBED, 'llama3.1:70b', VISION, THINKER, CHAT, SLOW].sort());
    const m = await client.models.retrieve('llama3.1:70b');
    expect(m).toMatchObject({ id: 'llama3.1:70b', object: 'model', owned_by: 'hydra' });
    expect(typeof m.created).toBe('number');
    // `name` and `name:latest` are one model.
    expect((await client.models.retrieve(`${EMBED}:latest`)).id).toBe(EMBED);
    const missing = await client.models.retrieve('mystery:7b').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
    expect((missing as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
  });

  it('answers a chat completion with the node’s exact text, usage and the Hydra headers', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: CHAT, messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'Say hello please' }] })
      .withResponse();
    expect(data.object).toBe('chat.completion');
    expect(data.id).toBe(`chatcmpl-${response.headers.get('x-hydra-job-id')}`);
    expect(data.model).toBe(CHAT);
    expect(data.choices).toHaveLength(1);
    expect(data.choices[0]!.message).toMatchObject({ role: 'assistant', content: simulatedAnswer({ model: CHAT, prompt: 'Say hello please' }) });
    expect(data.choices[0]!.finish_reason).toBe('stop');
    expect(data.usage).toMatchObject({ completion_tokens: 16, total_tokens: data.usage!.prompt_tokens + 16 });
    expect(['small8', 'big80']).toContain(response.headers.get('x-hydra-node'));
  });

  it('streams a chat completion: role first, the same text, a finish chunk, then usage with no choices', async () => {
    const { data: stream, response } = await client.chat.completions
      .create({ model: CHAT, messages: [{ role: 'user', content: 'stream me a story' }], stream: true, stream_options: { include_usage: true } })
      .withResponse();
    expect(response.headers.get('content-type')).toMatch(/text\/event-stream/);
    expect(['small8', 'big80']).toContain(response.headers.get('x-hydra-node'));
    const chunks = [];
    for await (const ch of stream) chunks.push(ch);
    expect(chunks[0]!.object).toBe('chat.completion.chunk');
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    const text = chunks.map((ch) => ch.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe(simulatedAnswer({ model: CHAT, prompt: 'stream me a story' }));
    expect(chunks.at(-2)!.choices[0]!.finish_reason).toBe('stop');
    expect(chunks.at(-1)!.choices).toEqual([]);
    expect(chunks.at(-1)!.usage).toMatchObject({ completion_tokens: 16 });
  });

  it('honours max_tokens (and max_completion_tokens): completion_tokens and finish_reason length', async () => {
    const a = await client.chat.completions.create({ model: CHAT, messages: [{ role: 'user', content: 'a long one' }], max_tokens: 3 });
    expect(a.usage!.completion_tokens).toBe(3);
    expect(a.choices[0]!.finish_reason).toBe('length');
    expect(a.choices[0]!.message.content).toBe('simulated answer from');
    const b = await client.chat.completions.create({ model: CHAT, messages: [{ role: 'user', content: 'another long one' }], max_completion_tokens: 5 });
    expect(b.usage!.completion_tokens).toBe(5);
    expect(b.choices[0]!.finish_reason).toBe('length');
  });

  it('answers JSON for response_format json_object and json_schema', async () => {
    const obj = await client.chat.completions.create({ model: CHAT, messages: [{ role: 'user', content: 'give me json' }], response_format: { type: 'json_object' } });
    expect(JSON.parse(obj.choices[0]!.message.content!)).toMatchObject({ simulated: true });
    const schema = { type: 'object', properties: { city: { type: 'string' }, temp: { type: 'number' } }, required: ['city', 'temp'] };
    const sch = await client.chat.completions.create({
      model: CHAT,
      messages: [{ role: 'user', content: 'weather as json' }],
      response_format: { type: 'json_schema', json_schema: { name: 'weather', schema, strict: true } },
    });
    const parsed = JSON.parse(sch.choices[0]!.message.content!);
    expect(typeof parsed.city).toBe('string');
    expect(typeof parsed.temp).toBe('number');
  });

  it('embeds: the client’s default base64 decodes to the same non-zero vector as float', async () => {
    const input = ['the quick brown fox', 'jumps over the lazy dog'];
    const b64 = await client.embeddings.create({ model: EMBED, input });
    const flt = await client.embeddings.create({ model: EMBED, input, encoding_format: 'float' });
    expect(b64.object).toBe('list');
    expect(b64.data.map((d) => d.index)).toEqual([0, 1]);
    for (const [i, d] of b64.data.entries()) {
      expect(d.embedding).toHaveLength(768);
      expect(d.embedding.some((x) => Math.abs(x) > 1e-6)).toBe(true);
      const f = flt.data[i]!.embedding;
      d.embedding.forEach((x, j) => expect(x).toBeCloseTo(f[j]!, 6));
    }
    expect(b64.usage.prompt_tokens).toBeGreaterThan(0);
    const short = await client.embeddings.create({ model: EMBED, input: 'short', dimensions: 64, encoding_format: 'float' });
    expect(short.data[0]!.embedding).toHaveLength(64);
  });

  it('serves legacy completions, plain and streamed', async () => {
    const plain = await client.completions.create({ model: CHAT, prompt: 'once upon a time', max_tokens: 4 });
    expect(plain.object).toBe('text_completion');
    expect(plain.choices[0]).toMatchObject({ text: 'simulated answer from qwen3:4b', finish_reason: 'length', index: 0 });
    const stream = await client.completions.create({ model: CHAT, prompt: 'twice upon a time', stream: true });
    let text = '';
    let finish: string | null = null;
    for await (const ch of stream) {
      text += ch.choices[0]?.text ?? '';
      finish = ch.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe(simulatedAnswer({ model: CHAT, prompt: 'twice upon a time' }));
    expect(finish).toBe('stop');
  });

  it('round-trips a tool call: ids, JSON-string arguments, finish_reason tool_calls, then the tool’s result', async () => {
    const tools: OpenAI.Chat.ChatCompletionTool[] = [
      { type: 'function', function: { name: 'get_weather', description: 'weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } },
    ];
    const ask: OpenAI.Chat.ChatCompletionMessageParam = { role: 'user', content: 'what is the weather in Paris?' };
    const first = await client.chat.completions.create({ model: CHAT, messages: [ask], tools });
    const choice = first.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    const call = choice.message.tool_calls![0]!;
    expect(call.type).toBe('function');
    expect(call.id).toMatch(/^call_/);
    if (call.type !== 'function') throw new Error('expected a function call');
    expect(call.function.name).toBe('get_weather');
    expect(typeof call.function.arguments).toBe('string');
    expect(typeof JSON.parse(call.function.arguments)).toBe('object');

    const streamed = await client.chat.completions.create({ model: CHAT, messages: [ask], tools, stream: true });
    const deltas = [];
    let finish: string | null = null;
    for await (const ch of streamed) {
      deltas.push(...(ch.choices[0]?.delta.tool_calls ?? []));
      finish = ch.choices[0]?.finish_reason ?? finish;
    }
    expect(finish).toBe('tool_calls');
    expect(deltas[0]).toMatchObject({ index: 0, type: 'function', function: { name: 'get_weather' } });
    expect(deltas[0]!.id).toMatch(/^call_/);

    const second = await client.chat.completions.create({
      model: CHAT,
      tools,
      messages: [ask, choice.message, { role: 'tool', tool_call_id: call.id, content: 'sunny and 21 degrees' }],
    });
    expect(second.choices[0]!.finish_reason).toBe('stop');
    expect(second.choices[0]!.message.content).toContain('sunny');
  });

  it('refuses what Hydra cannot honour with a 400 naming the parameter', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ n: 2 }, 'n'],
      [{ logprobs: true }, 'logprobs'],
      [{ top_logprobs: 2 }, 'top_logprobs'],
      [{ tool_choice: 'required', tools: [{ type: 'function', function: { name: 'f' } }] }, 'tool_choice'],
      [{ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }] }, 'messages[0].content[0].image_url.url'],
      [{ temperature: 7 }, 'temperature'],
    ];
    for (const [extra, param] of cases) {
      const e = await client.chat.completions.create({ model: CHAT, messages: [{ role: 'user', content: 'hi' }], ...extra } as never).catch((x: unknown) => x);
      expect(e, param).toBeInstanceOf(OpenAI.BadRequestError);
      expect((e as InstanceType<typeof OpenAI.BadRequestError>).param).toBe(param);
    }
    const echo = await client.completions.create({ model: CHAT, prompt: 'x', echo: true }).catch((x: unknown) => x);
    expect((echo as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('echo');
  });

  it('answers an unknown model with 404 model_not_found', async () => {
    const e = await client.chat.completions.create({ model: 'mystery:7b', messages: [{ role: 'user', content: 'hi' }] }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(OpenAI.NotFoundError);
    expect((e as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
    expect((e as InstanceType<typeof OpenAI.NotFoundError>).message).toMatch(/mystery:7b/);
  });

  it('sends a data: URL image part to a vision model, and refuses it for a text-only one', async () => {
    const png = Buffer.from('simulated image bytes').toString('base64');
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
      { role: 'user', content: [{ type: 'text', text: 'describe this' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } }] },
    ];
    const r = await client.chat.completions.create({ model: VISION, messages });
    expect(r.choices[0]!.message.content).toContain('describe this');
    expect(r.usage!.prompt_tokens).toBeGreaterThan(2);
    const e = await client.chat.completions.create({ model: SLOW, messages }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(OpenAI.BadRequestError);
    expect((e as Error).message).toMatch(/images/);
  });

  it('maps reasoning_effort to thinking and returns it as reasoning_content, plain and streamed', async () => {
    const r = await client.chat.completions.create({ model: THINKER, messages: [{ role: 'user', content: 'think first' }], reasoning_effort: 'low' });
    const message = r.choices[0]!.message as { content: string | null; reasoning_content?: string };
    expect(message.reasoning_content).toBeTruthy();
    expect(message.content).toBeTruthy();
    const stream = await client.chat.completions.create({ model: THINKER, messages: [{ role: 'user', content: 'think first' }], reasoning_effort: 'low', stream: true });
    let reasoning = '';
    let text = '';
    for await (const ch of stream) {
      reasoning += (ch.choices[0]?.delta as { reasoning_content?: string } | undefined)?.reasoning_content ?? '';
      text += ch.choices[0]?.delta.content ?? '';
    }
    expect(reasoning).toBe(message.reasoning_content);
    expect(text).toBe(message.content);
    const off = await client.chat.completions.create({ model: THINKER, messages: [{ role: 'user', content: 'just answer' }], reasoning_effort: 'none' });
    expect(off.choices[0]!.message).not.toHaveProperty('reasoning_content');
  });

  it('cancels the job on its node when the client aborts mid-stream', async () => {
    const slow = c.sims[2]!;
    const before = slow.state().aborted;
    const { data: stream, response } = await client.chat.completions.create({ model: SLOW, messages: [{ role: 'user', content: 'take your time' }], stream: true }, onSlow).withResponse();
    expect(response.headers.get('x-hydra-node')).toBe('slow');
    for await (const ch of stream) {
      if (!ch.choices[0]?.delta.content) continue;
      stream.controller.abort();
      break;
    }
    await waitFor(() => slow.state().aborted > before, { what: 'the simulated node to see the abort' });
    const id = response.headers.get('x-hydra-job-id')!;
    await waitFor(async () => ['failed', 'cancelled'].includes((await c.get(`/v1/jobs/${id}`)).body.state), { what: 'the job to end cancelled' });
  });

  it('a job cancelled while the client waits is not retried by the client', async () => {
    let calls = 0;
    const counting = new OpenAI({
      baseURL: `${c.url}/v1`,
      apiKey: 'x',
      maxRetries: 3,
      fetch: (url, init) => {
        calls++;
        return fetch(url, init);
      },
    });
    const pending = counting.chat.completions.create({ model: SLOW, messages: [{ role: 'user', content: 'cancel me' }] }, onSlow).catch((x: unknown) => x);
    const jobId = await waitFor(async () => {
      for (const q of await c.ctx.producer.listQueues()) {
        const jobs = await c.ctx.producer.queue(q.name).getJobs(['active']);
        const j = jobs.find((x) => x.data.call.model === SLOW && x.data.call.messages?.[0]?.content === 'cancel me');
        if (j) return j.id;
      }
      return null;
    }, { what: 'the job to run' });
    expect((await c.del(`/v1/jobs/${jobId}`)).status).toBeLessThan(300);
    const e = (await pending) as InstanceType<typeof OpenAI.APIError>;
    expect(e).toBeInstanceOf(OpenAI.APIError);
    expect(e.message).toMatch(/cancelled/);
    expect(e.headers?.get('x-should-retry')).toBe('false');
    expect(e.headers?.get('x-hydra-job-id')).toBe(jobId);
    expect(calls).toBe(1);
  });

  it('streams one clean answer across a retry: the repeated start of the new attempt is not sent twice', async () => {
    const fault = (url: string, body: unknown) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    // Both nodes with the model cut their next answer after 2 tokens: the job fails on one, then on the other, then
    // completes. The slow node's 2 tokens reach the stream before it cuts, so the client has seen them.
    const holders = [c.sims[1]!, c.sims[2]!];
    for (const s of holders) await fault(`${s.url}/admin/faults`, { drop_next: 1, drop_after_tokens: 2 });
    try {
      const { data: stream, response } = await client.chat.completions.create({ model: SLOW, messages: [{ role: 'user', content: 'survive a retry' }], stream: true }).withResponse();
      let text = '';
      for await (const ch of stream) text += ch.choices[0]?.delta.content ?? '';
      expect(text).toBe(simulatedAnswer({ model: SLOW, prompt: 'survive a retry' }));
      const id = response.headers.get('x-hydra-job-id');
      const job = (await c.get(`/v1/jobs/${id}`)).body;
      expect(job.result.routing_decision.attempts.length).toBe(3);
      const events = await readSse(`${c.url}/v1/jobs/${id}/stream`);
      const firstToken = events.findIndex((e) => e.event === 'token');
      expect(firstToken).toBeGreaterThanOrEqual(0);
      expect(firstToken).toBeLessThan(events.findLastIndex((e) => e.event === 'retry'));
    } finally {
      for (const s of holders) await fault(`${s.url}/admin/reset`, {});
    }
  });

  it('puts a 70b chat on the 80 GB node of a mixed cluster, visible in Bull Board', async () => {
    const { data, response } = await client.chat.completions.create({ model: 'llama3.1:70b', messages: [{ role: 'user', content: 'big question' }] }).withResponse();
    expect(response.headers.get('x-hydra-node')).toBe('big80');
    expect(data.choices[0]!.message.content).toBe(simulatedAnswer({ model: 'llama3.1:70b', prompt: 'big question' }));
    const jobId = response.headers.get('x-hydra-job-id')!;
    const { queue } = (await c.get(`/v1/jobs/${jobId}`)).body;
    expect(queue).toMatch(/70b/);
    const board = await c.get(`/admin/queues/api/queues?activeQueue=${encodeURIComponent(queue)}&status=completed&page=1&jobsPerPage=50`);
    expect(board.status).toBe(200);
    const shown = board.body.queues.find((q: { name: string }) => q.name === queue);
    expect(shown.jobs.map((j: { id: string }) => j.id)).toContain(jobId);
    expect(c.sims[0]!.state().oom_errors).toBe(0);
  });

  it('routes by X-Hydra-* headers: X-Hydra-Node pins the job', async () => {
    const { response } = await client.chat.completions
      .create({ model: CHAT, messages: [{ role: 'user', content: 'pinned' }] }, { headers: { 'X-Hydra-Node': 'big80' } })
      .withResponse();
    expect(response.headers.get('x-hydra-node')).toBe('big80');
    const bad = await client.chat.completions.create({ model: CHAT, messages: [{ role: 'user', content: 'x' }] }, { headers: { 'X-Hydra-Priority': 'eleven' } }).catch((x: unknown) => x);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
  });

  it('answers a repeated deterministic request from the L1 cache', async () => {
    const body = { model: CHAT, messages: [{ role: 'user' as const, content: 'cache this' }], temperature: 0 };
    const a = await client.chat.completions.create(body).withResponse();
    const b = await client.chat.completions.create(body).withResponse();
    expect(b.data.choices[0]!.message.content).toBe(a.data.choices[0]!.message.content);
    // The cached answer names the job that computed it.
    expect(b.response.headers.get('x-hydra-job-id')).toBe(a.response.headers.get('x-hydra-job-id'));
  });
});

describe('OpenAI API with API keys', () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({ API_KEYS: 'right-key-0123456789' });
  });
  afterAll(async () => c?.stop());

  it('refuses a wrong key with AuthenticationError (invalid_api_key) and serves the right one', async () => {
    const wrong = new OpenAI({ baseURL: `${c.url}/v1`, apiKey: 'wrong-key-0123456789', maxRetries: 0 });
    const e = await wrong.models.list().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((e as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe('invalid_api_key');
    const right = new OpenAI({ baseURL: `${c.url}/v1`, apiKey: 'right-key-0123456789', maxRetries: 0 });
    expect((await right.models.list()).data).toEqual([]);
  });
});
