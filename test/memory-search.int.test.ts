// Semantic search end to end, on SQLite and on a real PostgreSQL server: a cluster whose simulated node has an embed
// model (MEMORY_EMBED_MODEL) embeds the stored history in batched lowest-priority embed jobs, and POST /v1/memory/search
// finds the original prompt for each paraphrase of test/fixtures/paraphrases.json above the similar-topic negatives.
// The embeddings are the simulated node's (hashed bag of words: docs/node-sim.md), not a language model's.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from './support/cluster.js';
import { historyDialects, postgresFor, type PrivatePostgres } from './support/postgres.js';
import { waitFor } from './support/wait.js';

const stores = historyDialects('test/memory-search.int.test.ts');

interface Group {
  original: string;
  paraphrases: string[];
  negatives: string[];
}
const FIXTURE: { groups: Group[] } = JSON.parse(readFileSync(new URL('./fixtures/paraphrases.json', import.meta.url), 'utf8'));
const EMBED = 'nomic-embed-text';
/** Top-1 hits over every paraphrase of the fixture, at least. */
const MIN_HIT_RATE = 0.9;

describe.each(stores)('semantic search over the history (%s)', (dialect) => {
  let pg: PrivatePostgres | null = null;
  let dir: string;
  let c: TestCluster;
  /** Job id of each group's original, and of its negatives. */
  const originals: string[] = [];
  const negatives: string[][] = [];
  const search = (body: unknown) => c.post('/v1/memory/search', body);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hydra-memory-search-'));
    pg = await postgresFor(dialect);
    c = await startCluster({ MEMORY_URL: pg ? pg.url : `sqlite:${join(dir, 'history.sqlite')}`, MEMORY_EMBED_MODEL: EMBED, JOB_ATTEMPTS: '2' });
    await c.simWorker('gpu', { vramGb: 24, models: [{ name: 'm', sizeGb: 1 }, { name: EMBED, sizeGb: 0.27, embeddingLength: 768 }], tokensPerSecond: 5000, loadMsPerGb: 0 });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
    await pg?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('embeds every stored prompt and answer, in batched embed jobs at the lowest priority', async () => {
    const run = async (prompt: string): Promise<string> => {
      const r = await c.post('/v1/jobs', { type: 'generate', model: 'm', prompt, options: { num_predict: 6 }, wait: true });
      if (r.body.state !== 'completed') throw new Error(`job for "${prompt}" answered ${r.status}: ${JSON.stringify(r.body)}`);
      return r.body.id as string;
    };
    // A few at a time, as clients would send them.
    for (let i = 0; i < FIXTURE.groups.length; i += 8) {
      const chunk = FIXTURE.groups.slice(i, i + 8);
      const ids = await Promise.all(chunk.map(async (g) => ({ o: await run(g.original), n: await Promise.all(g.negatives.map(run)) })));
      for (const { o, n } of ids) {
        originals.push(o);
        negatives.push(n);
      }
    }
    const texts = originals.length + negatives.flat().length;
    const vectors = c.ctx.history!.vectors!;
    await waitFor(async () => ((await vectors.current?.count('history')) ?? 0) >= 2 * texts, { what: `vectors of ${texts} prompts and answers`, timeoutMs: 60_000 }).catch((e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify(vectors.status())}`);
    });
    expect(await vectors.current!.count('history')).toBe(2 * texts);
    expect(vectors.status()).toMatchObject({ embed_model: EMBED, skipped: 0 });

    const embedJobs = (await c.get('/v1/history?request_id=memory-embed&limit=500')).body.items as any[];
    expect(embedJobs.length).toBeGreaterThan(0);
    for (const j of embedJobs) expect(j).toMatchObject({ type: 'embed', model: EMBED, priority: 1, outcome: 'completed' });
    // Batched: fewer jobs than texts, several inputs (one per line) in each.
    expect(embedJobs.length).toBeLessThan(texts);
    expect(Math.max(...embedJobs.map((j) => j.prompt.split('\n').length))).toBeGreaterThan(1);
  }, 120_000);

  it('ranks the original first for its paraphrases, above every similar-topic negative', async () => {
    let hits = 0;
    let total = 0;
    const misses: string[] = [];
    for (const [g, group] of FIXTURE.groups.entries()) {
      const origin = `job:${originals[g]}:1`;
      const negs = new Set(negatives[g]!.map((id) => `job:${id}:1`));
      for (const p of group.paraphrases) {
        total++;
        const r = await search({ query: p, k: 10 });
        expect(r.status).toBe(200);
        expect(r.body.model).toBe(EMBED);
        const items = r.body.items as any[];
        const best = (pred: (s: string) => boolean) => Math.max(-1, ...items.filter((i) => pred(i.source)).map((i) => i.score));
        if (items[0]?.source === origin && best((s) => s === origin) > best((s) => negs.has(s))) hits++;
        else misses.push(`"${p}" → "${items[0]?.text}" (${items[0]?.score})`);
      }
    }
    const rate = hits / total;
    process.stderr.write(`test/memory-search.int.test.ts (${dialect}): top-1 ${hits}/${total} = ${(rate * 100).toFixed(1)} % (simulated embeddings)${misses.length ? `; misses: ${misses.join('; ')}` : ''}\n`);
    expect(rate).toBeGreaterThanOrEqual(MIN_HIT_RATE);
  }, 120_000);

  it('answers with the item fields, best first, and applies k, namespace and filter', async () => {
    const g = FIXTURE.groups[0]!;
    const r = await search({ query: g.paraphrases[0], k: 3 });
    expect(r.body.items).toHaveLength(3);
    expect(r.body.items[0]).toEqual({
      id: expect.stringMatching(/^history:job:/),
      score: expect.any(Number),
      text: expect.any(String),
      namespace: 'history',
      kind: expect.stringMatching(/^(prompt|answer)$/),
      source: `job:${originals[0]}:1`,
      model: 'm',
      created_at: expect.any(Number),
    });
    const scores = (r.body.items as any[]).map((i) => i.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    expect((await search({ query: g.original, k: 1, filter: { kind: 'prompt' } })).body.items).toEqual([expect.objectContaining({ text: g.original, kind: 'prompt', score: expect.closeTo(1, 5) })]);
    expect((await search({ query: g.original, filter: { model: 'another-model' } })).body.items).toEqual([]);
    expect((await search({ query: g.original, namespace: 'elsewhere' })).body.items).toEqual([]);
    expect((await search({ query: g.original })).body.items).toHaveLength(5);
  });

  it.each([
    ['no query', {}, 'query'],
    ['an empty query', { query: '  ' }, 'query'],
    ['a query that is not text', { query: 42 }, 'query'],
    ['k of 0', { query: 'x', k: 0 }, 'k'],
    ['k above 100', { query: 'x', k: 101 }, 'k'],
    ['k not whole', { query: 'x', k: 2.5 }, 'k'],
    ['an unknown field', { query: 'x', limit: 3 }, 'limit'],
    ['an unknown filter', { query: 'x', filter: { node: 'gpu' } }, 'filter.node'],
    ['an empty namespace', { query: 'x', namespace: '' }, 'namespace'],
  ])('refuses %s with a 400 naming the field', async (_what, body, field) => {
    const r = await search(body);
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'bad_request', details: { fields: [expect.objectContaining({ field })] } });
  });
});

describe('semantic search while no node has the embed model', () => {
  let dir: string;
  let c: TestCluster;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hydra-memory-late-'));
    c = await startCluster({ MEMORY_URL: `sqlite:${join(dir, 'history.sqlite')}`, MEMORY_EMBED_MODEL: EMBED });
    await c.simWorker('gen', { vramGb: 24, models: [{ name: 'm', sizeGb: 1 }], tokensPerSecond: 5000, loadMsPerGb: 0 });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('stores the history anyway, says why vectors wait, and embeds the rows once a node with the model comes', async () => {
    const prompt = FIXTURE.groups[1]!.original;
    const job = await c.post('/v1/jobs', { type: 'generate', model: 'm', prompt, options: { num_predict: 4 }, wait: true });
    expect(job.body.state).toBe('completed');
    await waitFor(async () => ((await c.get('/v1/history')).body.items as any[]).some((r) => r.id === job.body.id), { what: 'the history row', timeoutMs: 20_000 });
    const vectors = c.ctx.history!.vectors!;
    await waitFor(() => vectors.status().last_error, { what: 'the embedder to report its failure', timeoutMs: 20_000 });
    expect(vectors.status().last_error).toMatch(new RegExp(EMBED));
    expect(await vectors.current!.count()).toBe(0);
    // The search itself cannot embed its query either: a clear error, not an empty answer.
    expect((await c.post('/v1/memory/search', { query: prompt })).status).toBe(422);

    await c.simWorker('emb', { vramGb: 8, models: [{ name: EMBED, sizeGb: 0.27, embeddingLength: 768 }], loadMsPerGb: 0 });
    await waitFor(async () => (await vectors.current!.count()) >= 2, { what: 'the vectors once the embed node registered', timeoutMs: 60_000 });
    const r = await c.post('/v1/memory/search', { query: FIXTURE.groups[1]!.paraphrases[0], k: 2 });
    expect(r.status).toBe(200);
    expect(r.body.items.map((i: any) => i.source)).toEqual([`job:${job.body.id}:1`, `job:${job.body.id}:1`]);
  }, 120_000);
});

describe('semantic search switched off', () => {
  let dir: string;
  const clusters: TestCluster[] = [];
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'hydra-memory-off-'));
  });
  afterAll(async () => {
    for (const c of clusters) await c.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('asks for the API key, and answers 404 naming MEMORY_EMBED_MODEL without an embed model, and MEMORY_URL with the history off', async () => {
    const noModel = await startCluster({ MEMORY_URL: `sqlite:${join(dir, 'history.sqlite')}`, API_KEYS: 'memory-search-test-key' });
    clusters.push(noModel);
    // Behind the API key like every /v1 route.
    expect((await noModel.post('/v1/memory/search', { query: 'anything' })).status).toBe(401);
    const r = await noModel.post('/v1/memory/search', { query: 'anything' }, { authorization: 'Bearer memory-search-test-key' });
    expect(r.status).toBe(404);
    expect(r.body.error.message).toMatch(/MEMORY_EMBED_MODEL/);
    const off = await startCluster({ MEMORY_URL: 'off', MEMORY_EMBED_MODEL: EMBED });
    clusters.push(off);
    const o = await off.post('/v1/memory/search', { query: 'anything' });
    expect(o.status).toBe(404);
    expect(o.body.error.message).toMatch(/MEMORY_URL=off/);
  });
});
