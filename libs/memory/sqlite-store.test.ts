// The SQLite history store on a real file: migrations once, idempotent inserts, filters, text search, paging, stats.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HistoryRecord } from './record.js';
import { SqliteHistoryStore } from './sqlite-store.js';

export function sampleRecord(i: number, over: Partial<HistoryRecord> = {}): HistoryRecord {
  return {
    kind: 'job',
    id: `job-${i}`,
    attempt: 1,
    request_id: `req-${i}`,
    api_key_id: null,
    model: i % 2 ? 'llama3' : 'qwen3',
    type: 'generate',
    node: i % 3 ? 'gpu-a' : 'gpu-b',
    queue: 'infer.x',
    priority: 5,
    outcome: i % 5 === 0 ? 'failed' : 'completed',
    error_code: i % 5 === 0 ? 'backend_error' : null,
    error_message: null,
    prompt: `prompt number ${i} about ${i % 2 ? 'zebras' : 'penguins'}`,
    answer: i % 5 === 0 ? null : `answer ${i}`,
    request: { options: { temperature: 0 } },
    routing: { reason: 'warm', candidates: [] },
    prompt_tokens: 10,
    completion_tokens: i,
    submitted_at: 1_000_000 + i * 1000,
    started_at: 1_000_010 + i * 1000,
    finished_at: 1_000_100 + i * 1000,
    queued_ms: 10,
    total_ms: 100 + i,
    load_ms: 0,
    prompt_eval_ms: 1,
    eval_ms: 2,
    workflow_id: null,
    workflow_step: null,
    ...over,
  };
}

describe('SqliteHistoryStore', () => {
  let dir: string;
  let store: SqliteHistoryStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'hydra-history-'));
    store = new SqliteHistoryStore(join(dir, 'sub', 'history.sqlite'));
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('records each migration once, and reopens an existing file', async () => {
    await store.insert([sampleRecord(1)]);
    await store.close();
    store = new SqliteHistoryStore(join(dir, 'sub', 'history.sqlite'));
    await store.migrate();
    expect(await store.count()).toBe(1);
    const db = new Database(join(dir, 'sub', 'history.sqlite'), { readonly: true });
    expect(db.prepare('SELECT version, name FROM schema_migrations').all()).toEqual([
      { version: 1, name: 'history' },
      { version: 2, name: 'vectors' },
      { version: 3, name: 'prompt_hash' },
    ]);
    db.close();
  });

  it('finds an exact repeat by the indexed prompt hash (one index probe, not a scan of the rows of the model)', async () => {
    await store.insert([sampleRecord(1), sampleRecord(3), sampleRecord(2), sampleRecord(1, { id: 'again', finished_at: 2_000_000 })]);
    const found = await store.findAnswers({ model: 'llama3', type: 'generate', prompt: sampleRecord(1).prompt, since: 0 });
    expect(found.map((r) => r.id)).toEqual(['again', 'job-1']);
    expect(await store.findAnswers({ model: 'llama3', type: 'generate', prompt: sampleRecord(1).prompt, since: 1_500_000 })).toHaveLength(1);
    expect(await store.findAnswers({ model: 'qwen3', type: 'generate', prompt: sampleRecord(1).prompt, since: 0 })).toEqual([]);
    const db = new Database(join(dir, 'sub', 'history.sqlite'), { readonly: true });
    const plan = db.prepare("EXPLAIN QUERY PLAN SELECT * FROM history WHERE prompt_hash = ? AND finished_at >= ? AND model = ? AND type = ? AND outcome = 'completed' AND prompt = ? ORDER BY finished_at DESC LIMIT 5").all('h', 0, 'm', 'generate', 'p') as { detail: string }[];
    db.close();
    expect(plan.map((p) => p.detail).join('; ')).toMatch(/USING INDEX history_prompt_hash/);
  });

  it('stores a redelivered record once (same kind, id, attempt); another attempt is another row', async () => {
    expect(await store.insert([sampleRecord(1), sampleRecord(2)])).toBe(2);
    expect(await store.insert([sampleRecord(1), sampleRecord(2), sampleRecord(3)])).toBe(1);
    expect(await store.insert([sampleRecord(1, { attempt: 2 })])).toBe(1);
    expect(await store.count()).toBe(4);
  });

  it('filters by model, node, outcome, time range and words, newest first, with JSON fields back as objects', async () => {
    await store.insert(Array.from({ length: 20 }, (_, i) => sampleRecord(i + 1)));
    const all = await store.query({ limit: 50 });
    expect(all.items).toHaveLength(20);
    expect(all.items[0]).toMatchObject({ id: 'job-20', request: { options: { temperature: 0 } }, routing: { reason: 'warm' } });
    expect(all.items.map((r) => r.finished_at)).toEqual([...all.items.map((r) => r.finished_at)].sort((a, b) => b - a));
    expect((await store.query({ model: 'llama3', limit: 50 })).items.every((r) => r.model === 'llama3')).toBe(true);
    expect((await store.query({ node: 'gpu-b', limit: 50 })).items.map((r) => r.id).sort()).toEqual(['job-12', 'job-15', 'job-18', 'job-3', 'job-6', 'job-9']);
    expect((await store.query({ outcome: 'failed', limit: 50 })).items.map((r) => r.id).sort()).toEqual(['job-10', 'job-15', 'job-20', 'job-5']);
    const ranged = await store.query({ since: 1_000_100 + 5000, until: 1_000_100 + 8000, limit: 50 });
    expect(ranged.items.map((r) => r.id)).toEqual(['job-7', 'job-6', 'job-5']);
    expect((await store.query({ q: 'Zebras number', limit: 50 })).items).toHaveLength(10);
    expect((await store.query({ q: 'answer 7', limit: 50 })).items.map((r) => r.id)).toEqual(['job-7']);
    expect((await store.query({ q: 'unicorns', limit: 50 })).items).toHaveLength(0);
    // Query syntax is not passed through: quotes and operators are words or nothing.
    expect((await store.query({ q: '"zebras" OR NEAR(', limit: 50 })).items).toHaveLength(0);
    expect((await store.query({ q: '%', limit: 50 })).items).toHaveLength(0);
  });

  it('pages with a cursor without gaps or repeats, rows with one finished_at included', async () => {
    await store.insert(Array.from({ length: 25 }, (_, i) => sampleRecord(i, { finished_at: 5000 + Math.floor(i / 4) })));
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const p = await store.query({ limit: 7, ...(cursor ? { cursor } : {}) });
      seen.push(...p.items.map((r) => r.id));
      if (!p.next_cursor) break;
      cursor = p.next_cursor;
    }
    expect(seen).toHaveLength(25);
    expect(new Set(seen).size).toBe(25);
    await expect(store.query({ limit: 5, cursor: 'nonsense' })).rejects.toThrow(/cursor/);
  });

  it('aggregates jobs per model, node and day with counts, tokens and nearest-rank percentiles', async () => {
    await store.insert(Array.from({ length: 20 }, (_, i) => sampleRecord(i + 1)));
    await store.insert([sampleRecord(99, { kind: 'workflow', model: null, node: null })]);
    const byModel = await store.stats({ by: 'model' });
    const llama = byModel.find((r) => r.key === 'llama3')!;
    // odd i in 1..19: 10 jobs, failed when i % 5 === 0: 5, 15
    expect(llama).toMatchObject({ jobs: 10, completed: 8, failed: 2, prompt_tokens: 100, completion_tokens: 100 });
    expect(llama.p50_total_ms).toBe(109); // totals 101,103,...,119: the 5th
    expect(llama.p95_total_ms).toBe(119);
    expect(byModel.reduce((n, r) => n + r.jobs, 0)).toBe(20); // the workflow is not counted
    expect((await store.stats({ by: 'node', since: 1_000_100 + 10_000 })).reduce((n, r) => n + r.jobs, 0)).toBe(11);
    expect(await store.stats({ by: 'day' })).toMatchObject([{ key: '1970-01-01', jobs: 20 }]);
  });
});
