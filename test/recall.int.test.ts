// Recall (memory.recall) against a real cluster with the history and its vectors on (SQLite; simulated embeddings):
// the nearest earlier answers are put in front of a job's prompt (a chat: a system message) and of every orchestrator
// stage, named in the view as `recalled`; only the caller's own API key's history; bad input is a 400.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from './support/cluster.js';
import { waitFor } from './support/wait.js';

const EMBED = 'nomic-embed-text';
const KEY_A = 'recall-key-a-0123456789ab';
const KEY_B = 'recall-key-b-0123456789ab';

describe('recall: memory.recall on /v1/jobs and /v1/orchestrate', () => {
  let c: TestCluster;
  let dir: string;
  const ids: Record<string, string> = {};
  const as = (key: string) => ({ authorization: `Bearer ${key}` });
  const rowsOf = async (q: string) => (await c.get(`/v1/history?${q}&limit=100`, as(KEY_A))).body.items as any[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hydra-recall-'));
    c = await startCluster({ MEMORY_URL: `sqlite:${join(dir, 'history.sqlite')}`, MEMORY_EMBED_MODEL: EMBED, API_KEYS: `${KEY_A},${KEY_B}`, ORCH_LIGHT_MODEL: 'm', ORCH_HEAVY_MODEL: 'm' });
    await c.simWorker('gpu', { vramGb: 24, models: [{ name: 'm', sizeGb: 1 }, { name: EMBED, sizeGb: 0.27, embeddingLength: 768 }], tokensPerSecond: 5000, loadMsPerGb: 0 });
    const earlier: [string, string, string][] = [
      ['tokio', KEY_A, 'how do I spawn a tokio task in rust and wait for its result'],
      ['sourdough', KEY_A, 'what hydration should a sourdough bread dough have'],
      ['kubernetes', KEY_A, 'how do I roll back a kubernetes deployment to the previous revision'],
      ['tokio-b', KEY_B, 'how do I spawn a tokio task in rust and join its handle'],
    ];
    for (const [name, key, prompt] of earlier) ids[name] = (await c.post('/v1/jobs', { type: 'generate', model: 'm', prompt, options: { num_predict: 6 }, wait: true }, as(key))).body.id;
    const vectors = c.ctx.history!.vectors!;
    await waitFor(async () => ((await vectors.current?.count('history')) ?? 0) >= 2 * earlier.length, { what: 'the earlier jobs embedded', timeoutMs: 30_000 });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('puts the nearest earlier answers in front of a job prompt and names them in the view; only the same key', async () => {
    const r = await c.post('/v1/jobs', { type: 'generate', model: 'm', prompt: 'spawn a tokio task in rust and get the result', memory: { recall: 2 }, wait: true }, as(KEY_A));
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const recalled = r.body.recalled as any[];
    expect(recalled.length).toBeGreaterThanOrEqual(1);
    expect(recalled.length).toBeLessThanOrEqual(2);
    expect(recalled[0]).toMatchObject({ source_job_id: ids.tokio, prompt: 'how do I spawn a tokio task in rust and wait for its result' });
    expect(recalled[0].score).toBeGreaterThan(recalled[1]?.score ?? -1);
    // Never another key's job, though KEY_B's is as close.
    expect(recalled.map((x) => x.source_job_id)).not.toContain(ids['tokio-b']);
    // The view of the job later says the same, and the model saw the context (the history keeps the prompt it ran).
    expect((await c.get(`/v1/jobs/${r.body.id}`, as(KEY_A))).body.recalled).toEqual(recalled);
    const row = await waitFor(async () => (await rowsOf('q=tokio')).find((x) => x.id === r.body.id), { what: 'the job in the history' });
    expect(row.prompt).toMatch(/^Relevant earlier work, recalled from memory/);
    expect(row.prompt).toContain(`[1] Q: how do I spawn a tokio task in rust and wait for its result\nA: ${recalled[0].answer}`);
    expect(row.prompt.endsWith('\n\nspawn a tokio task in rust and get the result')).toBe(true);
  });

  it('a chat gets the context as a first system message', async () => {
    const r = await c.post('/v1/jobs', { type: 'chat', model: 'm', messages: [{ role: 'user', content: 'roll back my kubernetes deployment' }], memory: { recall: 1 }, wait: true }, as(KEY_A));
    expect(r.status).toBe(200);
    expect(r.body.recalled).toEqual([expect.objectContaining({ source_job_id: ids.kubernetes })]);
    const row = await waitFor(async () => (await rowsOf('q=kubernetes')).find((x) => x.id === r.body.id), { what: 'the chat in the history' });
    expect(row.prompt).toMatch(/^system: Relevant earlier work, recalled from memory/);
    expect(row.prompt).toContain('\nuser: roll back my kubernetes deployment');
  });

  it('the orchestrator: every stage sees the recalled context, and the workflow view names it', async () => {
    const r = await c.post('/v1/orchestrate', { prompt: 'what hydration for my sourdough bread dough', memory: { recall: 1 }, options: { temperature: 0 }, wait: true }, as(KEY_A));
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.recalled).toEqual([expect.objectContaining({ source_job_id: ids.sourdough })]);
    const steps = await waitFor(async () => {
      const rows = (await rowsOf(`workflow_id=${r.body.id}`)).filter((x) => x.kind === 'job');
      return rows.length >= r.body.steps.filter((s: any) => s.state === 'completed').length && rows.length > 0 ? rows : null;
    }, { what: 'the orchestration steps in the history' });
    const analyze = steps.find((s) => s.workflow_step === 'analyze');
    expect(analyze.prompt).toContain('Relevant earlier work, recalled from memory');
    expect(analyze.prompt).toContain('what hydration should a sourdough bread dough have');
  });

  it('bad memory is a 400 naming the field; without vectors it says what to set', async () => {
    const bad = await c.post('/v1/jobs', { type: 'generate', model: 'm', prompt: 'x', memory: { recall: 0 } }, as(KEY_A));
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('memory.recall');
    expect((await c.post('/v1/orchestrate', { prompt: 'x', memory: { recall: 99 } }, as(KEY_A))).status).toBe(400);
    const other = await startCluster({ MEMORY_URL: 'off' });
    try {
      const r = await other.post('/v1/jobs', { type: 'generate', model: 'm', prompt: 'x', memory: { recall: 2 } });
      expect(r.status).toBe(400);
      expect(r.body.error.message).toContain('MEMORY_EMBED_MODEL');
    } finally {
      await other.stop();
    }
  });
});
