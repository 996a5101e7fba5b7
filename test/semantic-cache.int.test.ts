// cache: "semantic" end to end (SQLite and a real PostgreSQL): deterministic answers to the paraphrase fixture's
// originals are stored and embedded; a paraphrase asked with cache: "semantic" is answered from memory (no job), and
// never a negative, another model, a sampled request, other options or another API key's answer. The embeddings
// are the simulated node's (hashed bag of words), so the rates say how the mechanism behaves, not a real model.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from './support/cluster.js';
import { historyDialects, postgresFor, type PrivatePostgres } from './support/postgres.js';
import { waitFor } from './support/wait.js';

const stores = historyDialects('test/semantic-cache.int.test.ts');

interface Group {
  original: string;
  paraphrases: string[];
  negatives: string[];
}
const FIXTURE: { groups: Group[] } = JSON.parse(readFileSync(new URL('./fixtures/paraphrases.json', import.meta.url), 'utf8'));
const EMBED = 'nomic-embed-text';
const KEY_A = 'semantic-key-a-0123456789';
const KEY_B = 'semantic-key-b-0123456789';
const OPTIONS = { temperature: 0, num_predict: 6 };
const keyId = (key: string) => `k_${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;

describe.each(stores)('semantic cache (%s)', (dialect) => {
  let pg: PrivatePostgres | null = null;
  let dir: string;
  let c: TestCluster;
  const originals: string[] = [];
  const as = (key: string) => ({ authorization: `Bearer ${key}` });
  const ask = (prompt: string, extra: Record<string, unknown> = {}, key = KEY_A) => c.post('/v1/jobs', { type: 'generate', model: 'm', prompt, options: OPTIONS, cache: 'semantic', wait: true, ...extra }, as(key));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hydra-semantic-cache-'));
    pg = await postgresFor(dialect);
    // KEY_A opts in by configuration (SEMANTIC_CACHE_KEYS): its requests without a cache field use the semantic cache.
    c = await startCluster({ MEMORY_URL: pg ? pg.url : `sqlite:${join(dir, 'history.sqlite')}`, MEMORY_EMBED_MODEL: EMBED, API_KEYS: `${KEY_A},${KEY_B}`, SEMANTIC_CACHE_KEYS: keyId(KEY_A) });
    await c.simWorker('gpu', { vramGb: 24, models: [{ name: 'm', sizeGb: 1 }, { name: 'm2', sizeGb: 1 }, { name: EMBED, sizeGb: 0.27, embeddingLength: 768 }], tokensPerSecond: 5000, loadMsPerGb: 0 });
    // The originals' deterministic answers, stored and embedded (cache: false: no exact L1 entry to hide behind).
    for (let i = 0; i < FIXTURE.groups.length; i += 8) {
      const ids = await Promise.all(FIXTURE.groups.slice(i, i + 8).map(async (g) => (await c.post('/v1/jobs', { type: 'generate', model: 'm', prompt: g.original, options: OPTIONS, cache: false, wait: true }, as(KEY_A))).body.id as string));
      originals.push(...ids);
    }
    const vectors = c.ctx.history!.vectors!;
    await waitFor(async () => ((await vectors.current?.count('history')) ?? 0) >= 2 * originals.length, { what: 'the originals embedded', timeoutMs: 60_000 });
  }, 120_000);
  afterAll(async () => {
    await c?.stop();
    await pg?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('answers paraphrases from memory and never a similar-topic negative: hit rate and false hits over the fixture', async () => {
    // The curve first, from the scores alone (POST /v1/memory/search runs no job, so it changes nothing): at each
    // threshold, the paraphrases whose nearest stored prompt is their own original, and the negatives with any stored
    // prompt that close. A semantic miss below then runs a job, whose answer is stored too: so the curve comes first.
    const top = async (q: string) => ((await c.post('/v1/memory/search', { query: q, k: 1, filter: { model: 'm', kind: 'prompt' } }, as(KEY_A))).body.items[0] ?? null) as { score: number; source: string } | null;
    const para = await Promise.all(FIXTURE.groups.flatMap((g, gi) => g.paraphrases.map(async (p) => ({ gi, hit: await top(p) }))));
    const neg = await Promise.all(FIXTURE.groups.flatMap((g) => g.negatives.map(top)));
    const own = (gi: number, h: { source: string } | null) => h?.source.startsWith(`job:${originals[gi]}:`) === true;
    const curve = [0.95, 0.9, 0.85, 0.8, 0.75, 0.7].map((t) => ({
      t,
      hits: para.filter((p) => own(p.gi, p.hit) && p.hit!.score >= t).length,
      wrong: para.filter((p) => !own(p.gi, p.hit) && (p.hit?.score ?? 0) >= t).length,
      falseHits: neg.filter((h) => (h?.score ?? 0) >= t).length,
    }));
    process.stderr.write(
      `semantic cache (${dialect}, simulated embeddings): ${para.length} paraphrases, ${neg.length} negatives; by threshold: ` +
        curve.map((x) => `${x.t}: ${x.hits} answered by their original (${((100 * x.hits) / para.length).toFixed(1)} %), ${x.wrong} by another, ${x.falseHits} negatives`).join('; ') +
        '\n',
    );

    // Then as users meet it, at the default threshold (SEMANTIC_CACHE_THRESHOLD 0.9).
    let hits = 0;
    let wrong = 0;
    const ms: number[] = [];
    for (const [gi, g] of FIXTURE.groups.entries()) {
      for (const p of g.paraphrases) {
        const t0 = performance.now();
        const a = await ask(p);
        ms.push(performance.now() - t0);
        expect(a.status, JSON.stringify(a.body)).toBe(200);
        if (a.body.cached !== 'semantic') continue;
        expect(a.body.cache.score).toBeGreaterThanOrEqual(0.9);
        if (a.body.cache.source_job_id === originals[gi]) hits++;
        else wrong++;
      }
    }
    let falseHits = 0;
    for (const g of FIXTURE.groups) for (const n of g.negatives) if ((await ask(n)).body.cached === 'semantic') falseHits++;
    ms.sort((a, b) => a - b);
    process.stderr.write(`semantic cache (${dialect}, threshold 0.9, as served): ${hits}/${para.length} paraphrases from memory, ${wrong} by another original, ${falseHits}/${neg.length} negatives; request p50 ${ms[Math.floor(ms.length / 2)]!.toFixed(1)} ms\n`);
    const at = curve.find((x) => x.t === 0.9)!;
    // Served as the scores say (a paraphrase answered before by its own job can only add hits of its group)...
    expect(hits).toBeGreaterThanOrEqual(at.hits);
    // ...never by another question's answer, never for a negative; and a good share served from memory.
    expect(wrong).toBe(0);
    expect(falseHits).toBe(0);
    expect(at.falseHits).toBe(0);
    expect(hits / para.length).toBeGreaterThanOrEqual(0.35);
  }, 180_000);

  it('a hit names the stored answer it used, ran no job, and is the original answer', async () => {
    const g = FIXTURE.groups[0]!;
    const original = (await c.get(`/v1/jobs/${originals[0]}`, as(KEY_A))).body;
    // Reworded (an exact repeat is the L1 / L2 cache's: test/l2-cache.int.test.ts).
    const r = await ask(`${g.original} please`, { semantic_threshold: 0.5 });
    expect(r.body).toMatchObject({ state: 'completed', cached: 'semantic', queue: null, result: { response: original.result.response, cached: 'semantic' } });
    expect(r.body.cache).toMatchObject({ hit: true, kind: 'semantic', source_job_id: originals[0], matched_prompt: g.original });
  });

  it('never for another model, a sampled request, other options, or another API key', async () => {
    // A near copy (one word added: an exact repeat is the L1 / L2 cache's), so only the rule can be what refuses it.
    const p = `${FIXTURE.groups[0]!.original} please`;
    expect((await ask(p)).body.cached).toBe('semantic');
    expect((await ask(p, { model: 'm2' })).body.cached).toBeUndefined();
    expect((await ask(p, { options: { temperature: 0.7, num_predict: 6 } })).body.cached).toBeUndefined();
    expect((await ask(p, { options: { temperature: 0, num_predict: 7 } })).body.cached).toBeUndefined();
    expect((await ask(p, {}, KEY_B)).body.cached).toBeUndefined();
  });

  it('per API key: a key in SEMANTIC_CACHE_KEYS gets it without asking; another key does not; cache: false opts out', async () => {
    const p = `${FIXTURE.groups[1]!.original} please`;
    const plain = (key: string, extra: Record<string, unknown> = {}) => c.post('/v1/jobs', { type: 'generate', model: 'm', prompt: p, options: OPTIONS, wait: true, ...extra }, as(key));
    const a = await plain(KEY_A);
    expect(a.body.cached).toBe('semantic');
    expect(a.body.cache.source_job_id).toBe(originals[1]);
    expect((await plain(KEY_B)).body.cached).toBeUndefined();
    expect((await plain(KEY_A, { cache: false })).body.cached).toBeUndefined();
    expect((await startCluster({ SEMANTIC_CACHE_KEYS: 'not-a-key-id' }).catch((e: Error) => e)).toString()).toMatch(/SEMANTIC_CACHE_KEYS.*must be API key ids/);
  });

  it('says why it cannot when the history has no vectors; a bad threshold is a 400', async () => {
    const bad = await ask('x', { semantic_threshold: 2 });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('semantic_threshold');
    const other = await startCluster({ MEMORY_URL: 'off' });
    try {
      const r = await other.post('/v1/jobs', { type: 'generate', model: 'm', prompt: 'x', options: OPTIONS, cache: 'semantic' });
      expect(r.status).toBe(400);
      expect(r.body.error.message).toContain('MEMORY_EMBED_MODEL');
    } finally {
      await other.stop();
    }
  });
});
