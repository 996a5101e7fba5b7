// `hydra memory prune` on a real SQLite file and a real PostgreSQL server: rows older than the age go with the vectors
// made of them, newer ones stay; usage errors exit 2; the drainer's MEMORY_RETENTION_DAYS prune does the same.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../libs/config/index.js';
import { createHistoryStore, createVectorStore, HistoryDrainer, type HistoryStore, type VectorIndex } from '../libs/memory/index.js';
import { sampleRecord } from '../libs/memory/sqlite-store.test.js';
import { silentLogger } from '../libs/logger/index.js';
import { hydraKeys } from '../libs/queue/index.js';
import { HYDRA_BIN } from './support/cluster.js';
import { waitFor } from './support/wait.js';
import { historyDialects, postgresFor, type PrivatePostgres } from './support/postgres.js';

const stores = historyDialects('test/memory-prune.int.test.ts');
const DAY = 86_400_000;

describe.each(stores)('hydra memory prune (%s)', (dialect) => {
  let pg: PrivatePostgres | null = null;
  let dir: string;
  let url: string;
  let history: HistoryStore;
  let vectors: VectorIndex;
  const env = () => ({ ...process.env, MEMORY_URL: url, MEMORY_EMBED_MODEL: 'e' });
  const hydra = (args: string[]) => spawnSync(process.execPath, [HYDRA_BIN, 'memory', ...args], { env: env(), encoding: 'utf8', timeout: 30_000 });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hydra-prune-'));
    pg = await postgresFor(dialect);
    url = pg ? pg.url : `sqlite:${join(dir, 'history.sqlite')}`;
    const config = loadConfig({ MEMORY_URL: url, MEMORY_EMBED_MODEL: 'e' });
    history = (await createHistoryStore(config, silentLogger()))!;
    await history.migrate();
    vectors = (await createVectorStore(config, silentLogger()))!;
  }, 60_000);
  afterAll(async () => {
    await history?.close();
    await vectors?.close();
    await pg?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Rows finished `days` ago, each with a prompt and an answer vector. */
  const seed = async (prefix: string, n: number, days: number) => {
    const at = Date.now() - days * DAY;
    const recs = Array.from({ length: n }, (_, i) => sampleRecord(i, { id: `${prefix}-${i}`, outcome: 'completed', answer: 'a', submitted_at: at - 10, started_at: at - 5, finished_at: at }));
    await history.insert(recs);
    await vectors.upsert(recs.flatMap((r) => ['prompt', 'answer'].map((kind) => ({ id: `${r.kind}:${r.id}:${r.attempt}:${kind}`, namespace: 'history', embed_model: 'e', kind, source: `${r.kind}:${r.id}:${r.attempt}`, model: r.model, text: 't', vector: [1, 0, 0] }))));
  };

  it('deletes the rows older than the age and their vectors, keeps the rest, and says how many', async () => {
    await seed('old', 7, 40);
    await seed('new', 3, 1);
    const r = hydra(['prune', '--older-than', '30d', '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ store: dialect, deleted_rows: 7, deleted_vectors: 14, left_rows: 3 });
    expect(await history.count()).toBe(3);
    expect(await vectors.count('history')).toBe(6);
    const text = hydra(['prune', '--older-than', '30d']);
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/^pruned .*: 0 row\(s\) finished before \S+ and 0 vector\(s\) made of them; 3 row\(s\) left\n$/);
  });

  it('refuses without --older-than, with a bad age, or an unknown subcommand (exit 2, usage)', () => {
    for (const args of [['prune'], ['prune', '--older-than', 'a month'], ['prune', '--older-than', '0d'], ['purge']]) {
      const r = hydra(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toContain('usage: hydra memory prune --older-than AGE');
    }
    expect(hydra(['prune']).stderr).toContain('--older-than is required');
  });

  it('MEMORY_RETENTION_DAYS: the draining process prunes what is older, soon after it starts and then on a timer', async () => {
    await seed('aged', 4, 10);
    const before = await history.count();
    const redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
    const keys = hydraKeys(`{prune${randomBytes(4).toString('hex')}}`);
    // A store whose close is left to this test (the drainer closes what it opened).
    const open = async () => Object.assign(Object.create(history) as HistoryStore, { close: async () => {} });
    const drainer = new HistoryDrainer({ redis, keys, logger: silentLogger(), open, retentionMs: 7 * DAY, pruneEveryMs: 200 }).start();
    try {
      await waitFor(async () => (await history.count()) === before - 4, { what: 'the drainer to prune the rows past 7 days', timeoutMs: 10_000 });
      expect(await vectors.count('history')).toBe(6);
    } finally {
      await drainer.close();
      redis.disconnect();
    }
  });
});
