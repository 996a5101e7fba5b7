// The history's embedder over a real SQLite file, with a scripted embedder: a failure is retried from the same
// watermark (no row skipped), a text the model refuses for good is split out and left alone, embed jobs are batched.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, HydraError } from '../core/index.js';
import { silentLogger } from '../logger/index.js';
import type { Embedder } from './embedder.js';
import { EMBED_BATCH, EMBED_PRIORITY, HistoryEmbedder } from './history-embedder.js';
import type { HistoryRecord } from './record.js';
import { SqliteHistoryStore } from './sqlite-store.js';
import { openSqliteVectors } from './vectors-sqlite.js';
import type { VectorIndex } from './vectors.js';

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

/** Embeds as [length, 1]; fails the next `failNext` calls (retryable), refuses for good any batch holding "REFUSE". */
class ScriptedEmbedder implements Embedder {
  readonly model = 'emb';
  calls: { texts: readonly string[]; priority: number }[] = [];
  failNext = 0;
  async embed(texts: readonly string[], opts: { priority: number }): Promise<number[][]> {
    this.calls.push({ texts, priority: opts.priority });
    if (this.failNext > 0) {
      this.failNext--;
      throw new HydraError(ErrorCode.Unsatisfiable, 'no node has emb', { retryable: true });
    }
    if (texts.some((t) => t.includes('REFUSE'))) throw new HydraError(ErrorCode.BadRequest, 'input refused');
    return texts.map((t) => [t.length, 1]);
  }
}

describe('HistoryEmbedder', () => {
  let dir: string;
  let history: SqliteHistoryStore;
  let vectors: VectorIndex;
  let embedder: ScriptedEmbedder;
  let e: HistoryEmbedder;
  let active = true;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'hydra-embedder-'));
    const path = join(dir, 'history.sqlite');
    history = new SqliteHistoryStore(path);
    vectors = openSqliteVectors(path);
    embedder = new ScriptedEmbedder();
    active = true;
    e = new HistoryEmbedder({ open: async () => vectors, embedder, logger: silentLogger(), active: () => active });
  });
  afterEach(async () => {
    await e.close();
    await history.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const until = async (cond: () => Promise<boolean> | boolean, what: string) => {
    const end = Date.now() + 10_000;
    while (!(await cond())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(e.status())}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  it('embeds prompts and answers of finished generate and chat jobs only, in batches at the lowest priority', async () => {
    await history.insert([
      ...Array.from({ length: 20 }, (_, i) => record(i)),
      record(100, { type: 'embed' }),
      record(101, { outcome: 'failed', answer: null }),
      record(102, { kind: 'workflow', type: 'dag' }),
      record(103, { type: 'chat', answer: '' }),
    ]);
    e.start();
    // 20 jobs × (prompt + answer) + the chat's prompt.
    await until(async () => (await vectors.count()) === 41, '41 vectors');
    expect(embedder.calls.every((c) => c.priority === EMBED_PRIORITY && c.texts.length <= EMBED_BATCH)).toBe(true);
    expect(embedder.calls).toHaveLength(Math.ceil(41 / EMBED_BATCH));
    const hit = await vectors.search({ vector: ['prompt 7'.length, 1], k: 50, filter: { kind: 'prompt' } });
    expect(hit.map((h) => h.source)).toContain('job:job-103:1');
    expect(hit.map((h) => h.source)).not.toContain('job:job-100:1');
    expect(await vectors.progress('history', 'emb')).toBe(24);
    expect(e.status()).toMatchObject({ open: true, embedded: 41, skipped: 0, watermark: 24, namespace: 'history', embed_model: 'emb' });
  });

  it('retries a failed scan from the same watermark, so no row is skipped', async () => {
    embedder.failNext = 2;
    await history.insert([record(1), record(2)]);
    e.start();
    await until(() => e.status().last_error !== null, 'the failure');
    expect(await vectors.count()).toBe(0);
    expect(await vectors.progress('history', 'emb')).toBe(0);
    await until(async () => (await vectors.count()) === 4, 'the retry');
    expect(embedder.calls.length).toBeGreaterThanOrEqual(3);
  });

  it('splits a batch the model refuses and leaves only the refused text without a vector', async () => {
    await history.insert([record(1), record(2, { prompt: 'REFUSE this one' }), record(3)]);
    e.start();
    await until(async () => (await vectors.progress('history', 'emb')) === 3, 'the scan');
    expect(await vectors.count()).toBe(5);
    expect(e.status().skipped).toBe(1);
  });

  it('does not index while another process holds the drain lock', async () => {
    active = false;
    await history.insert([record(1)]);
    e.start();
    await until(() => e.current !== null, 'the store to open');
    await new Promise((r) => setTimeout(r, 300));
    expect(embedder.calls).toHaveLength(0);
    active = true;
    await until(async () => (await vectors.count()) === 2, 'the vectors once active');
  });
});
