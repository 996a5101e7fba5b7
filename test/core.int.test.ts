// End to end through real processes: API in-process, workers as child processes, simulated Ollama nodes, a real Redis.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulatedAnswer } from '../apps/node-sim/sim-server.js';
import { readSse, startCluster, type TestCluster } from './support/cluster.js';

describe('submit → a node that fits pulls it → the answer comes back', () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster();
    await c.simWorker('gpu24', { vramGb: 24, models: [{ name: 'qwen3:14b', sizeGb: 9.3 }, { name: 'llama3.1:70b', sizeGb: 43 }], tokensPerSecond: 2000, loadMsPerGb: 1 });
  });
  afterAll(async () => c?.stop());

  it('answers a generate job with wait: true, with the routing decision', async () => {
    const r = await c.post('/v1/jobs', { type: 'generate', model: 'qwen3:14b', prompt: 'why is the sky blue', wait: true });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.state).toBe('completed');
    const res = r.body.result;
    expect(res.response).toBe(simulatedAnswer({ model: 'qwen3:14b', prompt: 'why is the sky blue' }));
    expect(res.node_id).toBe('gpu24');
    expect(res.node_url).toBe(c.sims[0]!.url);
    expect(res.completion_tokens).toBe(16);
    expect(res.simulated).toBe(true);
    expect(res.routing_decision).toMatchObject({ requested_node: null, selected_node: 'gpu24', queue: 'infer.qwen3_14b' });
    expect(res.routing_decision.candidates.map((x: { id: string }) => x.id)).toEqual(['gpu24']);
    expect(res.routing_decision.queued_ms).toBeGreaterThanOrEqual(0);
  });

  it('answers chat and embed jobs', async () => {
    const chat = await c.post('/v1/jobs', { type: 'chat', model: 'qwen3:14b', messages: [{ role: 'user', content: 'hello there' }], wait: true });
    expect(chat.status).toBe(200);
    expect(chat.body.result.message.content).toBe(simulatedAnswer({ model: 'qwen3:14b', prompt: 'hello there' }));
    const emb = await c.post('/v1/jobs', { type: 'embed', model: 'qwen3:14b', input: ['a', 'b'], wait: true });
    expect(emb.status).toBe(200);
    expect(emb.body.result.embeddings).toHaveLength(2);
    expect(emb.body.result.embeddings[0]).toHaveLength(384);
  });

  it('streams the tokens in order over SSE, then one done event; resumable with Last-Event-ID', async () => {
    const r = await c.post('/v1/jobs', { type: 'generate', model: 'qwen3:14b', prompt: 'count to ten', options: { sim_answer_tokens: 40 } });
    expect(r.status).toBe(202);
    expect(r.body.stream_url).toBe(`/v1/jobs/${r.body.id}/stream`);
    const events = await readSse(`${c.url}${r.body.stream_url}`);
    const last = events.at(-1)!;
    expect(last.event).toBe('done');
    const tokens = events.filter((e) => e.event === 'token');
    expect(tokens.length).toBeGreaterThan(0);
    const text = tokens.map((e) => e.data.text).join('');
    expect(text).toBe(last.data.response);
    expect(text).toBe(simulatedAnswer({ model: 'qwen3:14b', prompt: 'count to ten', answerTokens: 40 }));
    // Resume after the first event: the rest, without the first.
    const again = await readSse(`${c.url}${r.body.stream_url}`, { 'last-event-id': events[0]!.id });
    expect(again.map((e) => e.id)).toEqual(events.slice(1).map((e) => e.id));
    // GET shows the same result.
    const g = await c.get(`/v1/jobs/${r.body.id}`);
    expect(g.body).toMatchObject({ state: 'completed', attempts_made: 1, model: 'qwen3:14b' });
    expect(g.body.result.response).toBe(text);
  });

  it('404s an unknown job', async () => {
    const g = await c.get('/v1/jobs/00000000-0000-4000-8000-000000000000');
    expect(g.status).toBe(404);
    expect(g.body.error.message).toMatch(/no job with id/);
  });
});

describe('a worker in front of an OpenAI-compatible server', () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster();
    const sim = await c.sim({ vramGb: 24, models: [{ name: 'qwen3:4b', sizeGb: 2.5 }], tokensPerSecond: 2000, loadMsPerGb: 0 });
    await c.worker({ BACKEND: 'openai', OPENAI_BASE_URL: `${sim.url}/v1`, NODE_ID: 'oai', NODE_VRAM_GB: '24' });
    await c.waitForNode('oai', (n) => n.healthy);
  });
  afterAll(async () => c?.stop());

  it('answers chat through /v1/chat/completions and streams it', async () => {
    const r = await c.post('/v1/jobs', { type: 'chat', model: 'qwen3:4b', messages: [{ role: 'user', content: 'hello openai' }] });
    const events = await readSse(`${c.url}${r.body.stream_url}`);
    const done = events.at(-1)!;
    expect(done.event).toBe('done');
    expect(done.data.message.content).toBe(simulatedAnswer({ model: 'qwen3:4b', prompt: 'hello openai' }));
    expect(events.filter((e) => e.event === 'token').map((e) => e.data.text).join('')).toBe(done.data.message.content);
    expect(done.data.node_id).toBe('oai');
    const n = (await c.nodes()).find((x) => x.id === 'oai');
    expect(n.backend).toBe('openai');
  });
});
