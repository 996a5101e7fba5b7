// The vector store on a real SQLite file and a real PostgreSQL server: upsert, exact cosine order, namespaces and
// filters, the incremental cache (a second connection sees new rows), the embedder's watermark over the history.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresMissing, startPrivatePostgres, type PrivatePostgres } from '../../test/support/postgres.js';
import { PostgresHistoryStore } from './postgres-store.js';
import type { HistoryRecord } from './record.js';
import { SqliteHistoryStore } from './sqlite-store.js';
import type { HistoryStore } from './store.js';
import { openPostgresVectors } from './vectors-postgres.js';
import { openSqliteVectors } from './vectors-sqlite.js';
import { decodeUnit, encodeVector, type VectorIndex, type VectorItem } from './vectors.js';

const pgMissing = postgresMissing();
const inCi = /^(1|true)$/i.test(process.env.CI ?? '');
if (pgMissing && !inCi) process.stderr.write(`libs/memory/vectors.test.ts: the PostgreSQL half is skipped: ${pgMissing}\n`);
const dialects = pgMissing && !inCi ? (['sqlite'] as const) : (['sqlite', 'postgres'] as const);

const item = (id: string, vector: number[], over: Partial<VectorItem> = {}): VectorItem => ({
  id,
  namespace: 'history',
  embed_model: 'emb',
  kind: 'prompt',
  source: `job:${id}:1`,
  model: 'm',
  text: `text of ${id}`,
  vector,
  ...over,
});

const record = (i: number, over: Partial<HistoryRecord> = {}): HistoryRecord => ({
  kind: 'job',
  id: `job-${i}`,
  attempt: 1,
  request_id: null,
  api_key_id: null,
  model: 'm',
  type: 'generate',
  node: 'gpu',
  queue: 'infer.m',
  priority: 5,
  outcome: 'completed',
  error_code: null,
  error_message: null,
  prompt: `prompt ${i}`,
  answer: `answer ${i}`,
  request: {},
  routing: null,
  prompt_tokens: 1,
  completion_tokens: 1,
  submitted_at: 1000 + i,
  started_at: 1000 + i,
  finished_at: 2000 + i,
  queued_ms: 0,
  total_ms: 1000,
  load_ms: 0,
  prompt_eval_ms: 0,
  eval_ms: 0,
  workflow_id: null,
  workflow_step: null,
  ...over,
});

describe('vector bytes', () => {
  it('round-trip as float32 and come back as unit vectors, also from an unaligned buffer', () => {
    const bytes = encodeVector([3, 4]);
    expect(bytes.byteLength).toBe(8);
    const unaligned = Buffer.alloc(9);
    bytes.copy(unaligned, 1);
    expect([...decodeUnit(unaligned.subarray(1), 2)!]).toEqual([expect.closeTo(0.6, 6), expect.closeTo(0.8, 6)]);
    expect(decodeUnit(encodeVector([0, 0]), 2)).toBeNull();
  });
});

describe.each(dialects)('vector store (%s)', (dialect) => {
  let dir: string;
  let pg: PrivatePostgres | null = null;
  let open: () => Promise<VectorIndex>;
  let history: HistoryStore;
  const opened: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hydra-vectors-'));
    if (dialect === 'postgres') {
      if (pgMissing) throw new Error(`${pgMissing}; CI must install it (.ci/run: apt-get install -y postgresql)`);
      pg = await startPrivatePostgres();
      const url = pg.url;
      history = new PostgresHistoryStore(url);
      await history.migrate();
      open = async () => openPostgresVectors(url);
    } else {
      const path = join(dir, 'history.sqlite');
      history = new SqliteHistoryStore(path);
      open = async () => openSqliteVectors(path);
    }
    opened.push(history);
  }, 60_000);
  afterAll(async () => {
    for (const s of opened) await s.close().catch(() => undefined);
    await pg?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const fresh = async () => {
    const s = await open();
    opened.push(s);
    return s;
  };

  it('returns the k nearest by cosine, best first, with their text and source', async () => {
    const s = await fresh();
    await s.upsert([item('a', [1, 0, 0]), item('b', [0.8, 0.6, 0]), item('c', [0, 1, 0]), item('d', [-1, 0, 0])].map((v) => ({ ...v, namespace: 'order' })));
    const hits = await s.search({ vector: [2, 0, 0], k: 3, namespace: 'order' });
    expect(hits.map((h) => [h.id, h.score])).toEqual([
      ['a', 1],
      ['b', expect.closeTo(0.8, 5)],
      ['c', 0],
    ]);
    expect(hits[0]).toMatchObject({ text: 'text of a', namespace: 'order', kind: 'prompt', source: 'job:a:1', model: 'm', embed_model: 'emb', created_at: expect.any(Number) });
    expect((await s.search({ vector: [0, 0, 1], k: 10, namespace: 'order' })).map((h) => h.id).sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(await s.count('order')).toBe(4);
  });

  it('searches one namespace or all, and filters by job model, kind and embed model; other widths never match', async () => {
    const s = await fresh();
    await s.upsert([
      item('n1', [1, 0.1], { namespace: 'ns-a', model: 'qwen' }),
      item('n2', [1, 0.2], { namespace: 'ns-b', model: 'llama', kind: 'answer' }),
      item('n3', [1, 0.3], { namespace: 'ns-b', embed_model: 'other' }),
      item('n4', [1, 0.1, 0], { namespace: 'ns-a' }),
    ]);
    const ids = async (q: Parameters<VectorIndex['search']>[0]) => (await s.search(q)).map((h) => h.id);
    expect(await ids({ vector: [1, 0], k: 10, namespace: 'ns-a' })).toEqual(['n1']);
    expect((await ids({ vector: [1, 0], k: 10 })).filter((id) => id.startsWith('n'))).toEqual(['n1', 'n2', 'n3']);
    expect(await ids({ vector: [1, 0], k: 10, namespace: 'ns-b', filter: { model: 'llama' } })).toEqual(['n2']);
    expect(await ids({ vector: [1, 0], k: 10, namespace: 'ns-b', filter: { kind: 'answer' } })).toEqual(['n2']);
    expect(await ids({ vector: [1, 0], k: 10, namespace: 'ns-b', filter: { embed_model: 'other' } })).toEqual(['n3']);
    expect(await ids({ vector: [1, 0], k: 10, namespace: 'nowhere' })).toEqual([]);
  });

  it('replaces a row upserted again by id (also across namespaces), keeping one', async () => {
    const s = await fresh();
    await s.upsert([item('r1', [1, 0], { namespace: 'rep' })]);
    expect((await s.search({ vector: [1, 0], k: 5, namespace: 'rep' })).map((h) => h.text)).toEqual(['text of r1']);
    await s.upsert([item('r1', [0, 1], { namespace: 'rep', text: 'new text' })]);
    expect((await s.search({ vector: [0, 1], k: 5, namespace: 'rep' })).map((h) => [h.id, h.text, h.score])).toEqual([['r1', 'new text', 1]]);
    await s.upsert([item('r1', [0, 1], { namespace: 'rep-moved' })]);
    expect(await s.search({ vector: [0, 1], k: 5, namespace: 'rep' })).toEqual([]);
    expect((await s.search({ vector: [0, 1], k: 5, namespace: 'rep-moved' })).map((h) => h.id)).toEqual(['r1']);
    expect(await s.count('rep')).toBe(0);
  });

  it('keeps decoded vectors cached and reads only rows newer than its watermark, also rows another connection wrote', async () => {
    const reader = await fresh();
    const writer = await fresh();
    await writer.upsert([item('c1', [1, 0, 0, 0], { namespace: 'cache' })]);
    expect((await reader.search({ vector: [1, 0, 0, 0], k: 5, namespace: 'cache' })).map((h) => h.id)).toEqual(['c1']);
    const before = reader.cached();
    expect(before.vectors).toBe(await reader.count());
    await writer.upsert([item('c2', [0, 1, 0, 0], { namespace: 'cache' }), item('c3', [0, 0, 1, 0], { namespace: 'cache' })]);
    expect((await reader.search({ vector: [0, 1, 0, 0], k: 1, namespace: 'cache' })).map((h) => h.id)).toEqual(['c2']);
    const after = reader.cached();
    expect(after.vectors).toBe(before.vectors + 2);
    expect(after.watermark).toBeGreaterThan(before.watermark);
    expect(after.bytes - before.bytes).toBe(2 * 4 * 4);
  });

  it('hands the embedder the history after its watermark, and moves the watermark with the vectors in one transaction', async () => {
    const s = await fresh();
    expect(await s.progress('history', 'emb')).toBe(0);
    await history.insert([record(1), record(2, { type: 'embed' }), record(3)]);
    const rows = await s.historyAfter(0, 10);
    expect(rows.map((r) => [r.uid, r.type, r.prompt, r.answer])).toEqual([
      ['job:job-1:1', 'generate', 'prompt 1', 'answer 1'],
      ['job:job-2:1', 'embed', 'prompt 2', 'answer 2'],
      ['job:job-3:1', 'generate', 'prompt 3', 'answer 3'],
    ]);
    expect(rows[0]!.seq).toBeLessThan(rows[2]!.seq);
    await s.upsert([item('h1', [1, 0])], { namespace: 'history', embed_model: 'emb', seq: rows[1]!.seq });
    expect(await s.progress('history', 'emb')).toBe(rows[1]!.seq);
    expect(await s.progress('history', 'other-model')).toBe(0);
    expect((await s.historyAfter(rows[1]!.seq, 10)).map((r) => r.uid)).toEqual(['job:job-3:1']);
    // The watermark never goes back.
    await s.setProgress({ namespace: 'history', embed_model: 'emb', seq: 0 });
    expect(await s.progress('history', 'emb')).toBe(rows[1]!.seq);
  });
});
