// The results history's costs: what one record costs the worker (one XADD, awaited one at a time and in a burst, and
// its bytes in Redis), and how fast the drainer moves a backlog from the Redis stream into SQLite and into PostgreSQL
// (batches of 500, one transaction each) — the catch-up rate after an outage of the store.
//
//   npm run bench:history -- [--records 20000] [--answer-chars 1000]
//
// A private redis-server and (when installed) a private PostgreSQL (test/support/postgres.ts); SQLite in a temp dir.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { silentLogger } from '../libs/logger/index.js';
import { createHistoryStore, HistoryDrainer, HistoryWriter, type HistoryRecord, type HistoryStore } from '../libs/memory/index.js';
import { hydraKeys } from '../libs/queue/index.js';
import { postgresMissing, startPrivatePostgres } from '../test/support/postgres.js';
import { round, runBench, startRedis, until } from './support.js';

const { values } = parseArgs({ options: { records: { type: 'string', default: '20000' }, 'answer-chars': { type: 'string', default: '1000' } } });
const N = Number(values.records);
const ANSWER = 'lorem ipsum dolor sit amet '.repeat(Math.ceil(Number(values['answer-chars']) / 27)).slice(0, Number(values['answer-chars']));

const record = (i: number): HistoryRecord => ({
  kind: 'job',
  id: `bench-${i}`,
  attempt: 1,
  request_id: `req-${i}`,
  api_key_id: 'k_0123456789abcdef',
  model: i % 3 ? 'qwen3:14b' : 'llama3.1:8b',
  type: 'generate',
  node: `gpu-${i % 4}`,
  queue: 'infer.qwen3_14b.0',
  priority: 5,
  outcome: i % 50 ? 'completed' : 'failed',
  error_code: null,
  error_message: null,
  prompt: `Explain item ${i} of the inventory in two paragraphs, with one example and no lists.`,
  answer: ANSWER,
  request: { options: { temperature: 0, num_predict: 256 } },
  routing: { queue: 'infer.qwen3_14b.0', requested_node: null, reason: 'warm on gpu-1', selected_node: 'gpu-1', queued_ms: 12, candidates: [{ id: 'gpu-1', healthy: true, warm: true, need_mb: 9000, capacity_mb: 24000 }], attempts: [] },
  prompt_tokens: 20,
  completion_tokens: 256,
  submitted_at: 1_700_000_000_000 + i,
  started_at: 1_700_000_000_010 + i,
  finished_at: 1_700_000_000_900 + i,
  queued_ms: 10,
  total_ms: 900,
  load_ms: 0,
  prompt_eval_ms: 30,
  eval_ms: 850,
  workflow_id: null,
  workflow_step: null,
});

async function drainRate(redis: Redis, prefix: string, store: HistoryStore): Promise<{ rowsPerS: number; ms: number }> {
  const keys = hydraKeys(prefix);
  const p = redis.pipeline();
  for (let i = 0; i < N; i++) p.xadd(keys.history, '*', 'r', JSON.stringify(record(i)));
  await p.exec();
  const t0 = performance.now();
  const drainer = new HistoryDrainer({ redis, keys, logger: silentLogger(), open: () => Promise.resolve(store) }).start();
  await until('the backlog drained', async () => (await redis.xlen(keys.history)) === 0 && (await store.count()) >= N, 600_000);
  const ms = performance.now() - t0;
  await drainer.close();
  return { rowsPerS: Math.round((N / ms) * 1000), ms: Math.round(ms) };
}

runBench(async () => {
  const redis = new Redis(await startRedis());
  const keys = hydraKeys('{bench}');
  const writer = new HistoryWriter(redis, keys.history, N * 2);
  const rec = record(0);
  const bytes = Buffer.byteLength(JSON.stringify(rec));
  // Worker path: one XADD awaited at a time (the worst case: nothing else shares the round trip), then a burst.
  let t = performance.now();
  for (let i = 0; i < 2000; i++) await writer.record({ ...rec, id: `w-${i}` });
  const awaitedUs = ((performance.now() - t) / 2000) * 1000;
  t = performance.now();
  await Promise.all(Array.from({ length: N }, (_, i) => writer.record({ ...rec, id: `b-${i}` })));
  const burstUs = ((performance.now() - t) / N) * 1000;
  const memory = Number(await redis.call('MEMORY', 'USAGE', keys.history, 'SAMPLES', '0'));
  const perEntry = memory / (await redis.xlen(keys.history));
  await redis.del(keys.history);
  process.stdout.write(`record JSON: ${bytes} B; in Redis: ~${Math.round(perEntry)} B per entry\n`);
  process.stdout.write(`worker XADD: ${round(awaitedUs, 1)} µs awaited one at a time (a round trip), ${round(burstUs, 1)} µs each in a burst of ${N}\n`);

  const dir = mkdtempSync(join(tmpdir(), 'hydra-history-bench-'));
  const sqlite = (await createHistoryStore({ MEMORY_URL: `sqlite:${join(dir, 'history.sqlite')}`, HYDRA_DATA_DIR: dir }, silentLogger()))!;
  const s = await drainRate(redis, '{bench-sqlite}', sqlite);
  process.stdout.write(`drain into SQLite: ${N} records in ${s.ms} ms = ${s.rowsPerS} rows/s\n`);
  rmSync(dir, { recursive: true, force: true });

  const missing = postgresMissing();
  if (missing) process.stdout.write(`PostgreSQL skipped: ${missing}\n`);
  else {
    const pg = await startPrivatePostgres();
    try {
      const store = (await createHistoryStore({ MEMORY_URL: pg.url, HYDRA_DATA_DIR: dir }, silentLogger()))!;
      const r = await drainRate(redis, '{bench-pg}', store);
      process.stdout.write(`drain into PostgreSQL: ${N} records in ${r.ms} ms = ${r.rowsPerS} rows/s (test server: fsync off)\n`);
    } finally {
      await pg.destroy();
    }
  }
  redis.disconnect();
});
