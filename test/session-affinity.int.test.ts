// Session affinity: the turns of one conversation go to the node that ran its last turn (it holds the KV cache), when
// that node can take them now; otherwise they run elsewhere rather than wait.
import { afterEach, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from './support/cluster.js';
import { waitFor } from './support/wait.js';

let c: TestCluster | undefined;
afterEach(async () => {
  await c?.stop();
  c = undefined;
});

const M = 'chat:1b';
const node = { vramGb: 16, models: [{ name: M, sizeGb: 1 }], tokensPerSecond: 1000, loadMsPerGb: 0, parallel: 1 };
const view = async (cl: TestCluster, id: string) => (await cl.get(`/v1/jobs/${id}`)).body;
const run = async (cl: TestCluster, body: Record<string, unknown>) => {
  const r = await cl.post('/v1/jobs', { type: 'generate', model: M, prompt: `p ${Math.random()}`, cache: false, wait: true, options: { num_predict: 5 }, ...body });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body as { id: string; result: { node_id: string } };
};

async function twoWarmNodes(): Promise<TestCluster> {
  const cl = await startCluster({ WORKER_CONCURRENCY: '2', NUM_CTX: '512' });
  await cl.simWorker('a', node);
  await cl.simWorker('b', node);
  // Both warm, so neither locality nor best fit prefers one: without affinity the node is whichever pulls first.
  await run(cl, { node_id: 'a' });
  await run(cl, { node_id: 'b' });
  await waitFor(async () => (await cl.nodes()).filter((n) => n.models_loaded.length > 0).length === 2, { what: 'both nodes warm' });
  return cl;
}

describe('session affinity (simulated nodes)', () => {
  it('keeps every turn of a session on one node while it can take them', async () => {
    c = await twoWarmNodes();
    for (const session of ['conv-1', 'conv-2']) {
      const nodes: string[] = [];
      for (let i = 0; i < 8; i++) nodes.push((await run(c, { session_id: session })).result.node_id);
      // 8 in a row on one node: by chance (two idle warm nodes racing) that is about 1 in 128.
      expect(new Set(nodes).size, `${session}: ${nodes.join(',')}`).toBe(1);
    }
  }, 90_000);

  it('derives a session from a chat that continues a conversation (Ollama /api/chat, no session field)', async () => {
    c = await twoWarmNodes();
    const history = [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Name a prime.' },
      { role: 'assistant', content: '7' },
    ];
    const nodes: string[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await fetch(`${c.url}/api/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: M, stream: false, messages: [...history, { role: 'user', content: `another ${i}` }], options: { num_predict: 5 } }) });
      expect(r.status).toBe(200);
      nodes.push(r.headers.get('x-hydra-node') ?? '');
    }
    expect(new Set(nodes).size, nodes.join(',')).toBe(1);
    expect(nodes[0]).toMatch(/^[ab]$/);
  }, 90_000);

  it("takes OpenAI's prompt_cache_key and the X-Hydra-Session header as the session", async () => {
    c = await twoWarmNodes();
    for (const [how, body, headers] of [
      ['prompt_cache_key', { prompt_cache_key: 'user-42' }, {}],
      ['X-Hydra-Session', {}, { 'x-hydra-session': 'user-43' }],
    ] as const) {
      const nodes: string[] = [];
      for (let i = 0; i < 8; i++) {
        const r = await fetch(`${c.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ model: M, max_tokens: 5, messages: [{ role: 'user', content: `q ${i}` }], ...body }) });
        expect(r.status).toBe(200);
        nodes.push(r.headers.get('x-hydra-node') ?? '');
      }
      expect(new Set(nodes).size, `${how}: ${nodes.join(',')}`).toBe(1);
    }
  }, 90_000);

  it('runs a turn elsewhere at once when the session node is busy (no waiting for affinity)', async () => {
    c = await twoWarmNodes();
    const home = (await run(c, { session_id: 'conv-busy' })).result.node_id;
    // A long turn of the same session occupies home's only slot for this model (parallel 1) for ~30 s (1,000 tokens/s),
    // long enough that it is still running when the next turn is answered on a loaded CI machine…
    const long = await c.post('/v1/jobs', { type: 'generate', model: M, prompt: 'long', cache: false, session_id: 'conv-busy', node_id: home, options: { num_predict: 30000, sim_answer_tokens: 30000 } });
    await waitFor(async () => (await view(c!, long.body.id)).state === 'active', { what: 'the long turn to start' });
    // …so the next turn goes to the other node rather than wait for it.
    const next = await run(c, { session_id: 'conv-busy' });
    expect(next.result.node_id).not.toBe(home);
    expect((await view(c, long.body.id)).state).toBe('active');
    expect((await c.del(`/v1/jobs/${long.body.id}`)).body.state).toBe('cancelling');
  }, 90_000);
});
