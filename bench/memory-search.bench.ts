// What exact semantic search costs: upsert rate into the vector store, the first search (filling the in-memory cache
// from the database) and warm search latency p50/p99 at each size (default 10k and 100k vectors of 768 dims), on
// SQLite and on PostgreSQL. Vectors are the simulated node's embeddings (hashed bag of words) of synthetic texts.
//
//   npm run bench:memory-search -- [--sizes 10000,100000] [--dims 768] [--queries 200] [--k 10]
//
// SQLite in a temp dir; a private PostgreSQL (test/support/postgres.ts) when installed.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { embeddingFor } from '../apps/node-sim/sim-text.js';
import { silentLogger } from '../libs/logger/index.js';
import { createVectorStore, type VectorIndex, type VectorItem } from '../libs/memory/index.js';
import { postgresMissing, startPrivatePostgres } from '../test/support/postgres.js';
import { round, runBench } from './support.js';

const { values } = parseArgs({ options: { sizes: { type: 'string', default: '10000,100000' }, dims: { type: 'string', default: '768' }, queries: { type: 'string', default: '200' }, k: { type: 'string', default: '10' } } });
const SIZES = values.sizes.split(',').map(Number);
const DIMS = Number(values.dims);
const QUERIES = Number(values.queries);
const K = Number(values.k);
const BATCH = 500;

const WORDS = 'model token cache queue node worker redis vector prompt answer python rust kernel memory latency batch stream search index shard replica backup router schema query table column graph tensor layer weight train loss epoch gradient'.split(' ');
/** A deterministic synthetic prompt: 8-16 words drawn by a small LCG. */
function text(i: number): string {
  let x = (i * 2654435761) >>> 0;
  const next = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0);
  const n = 8 + (next() % 9);
  return Array.from({ length: n }, () => `${WORDS[next() % WORDS.length]}${next() % 50}`).join(' ') + ` #${i}`;
}

/** The store as the API opens it (createVectorStore: migrated, vectors on). */
const open = async (url: string): Promise<VectorIndex> => (await createVectorStore({ MEMORY_URL: url, HYDRA_DATA_DIR: tmpdir(), MEMORY_EMBED_MODEL: 'sim-embed' }, silentLogger()))!;

const item = (i: number): VectorItem => ({ id: `bench:${i}`, namespace: 'history', embed_model: 'sim-embed', kind: 'prompt', source: `job:bench-${i}:1`, model: 'm', text: text(i), vector: embeddingFor(text(i), DIMS) });

function stats(ms: number[]): { p50: number; p99: number } {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
  return { p50: round(q(0.5)), p99: round(q(0.99)) };
}

async function measure(name: string, open: () => Promise<VectorIndex>, size: () => Promise<string>): Promise<void> {
  const store = await open();
  let stored = 0;
  for (const target of SIZES) {
    let upsertMs = 0;
    let embedMs = 0;
    const added = target - stored;
    for (let i = stored; i < target; i += BATCH) {
      const t0 = performance.now();
      const items = Array.from({ length: Math.min(BATCH, target - i) }, (_, j) => item(i + j));
      const t1 = performance.now();
      await store.upsert(items);
      upsertMs += performance.now() - t1;
      embedMs += t1 - t0;
    }
    stored = target;
    // A fresh reader for the cold first search: a replica that just started (its cache empty).
    const reader = await open();
    const t0 = performance.now();
    await reader.search({ vector: embeddingFor(text(0), DIMS), k: K });
    const firstMs = performance.now() - t0;
    const lat: number[] = [];
    let top1 = 0;
    for (let q = 0; q < QUERIES; q++) {
      const i = (q * 7919) % target;
      // The stored text with its last word changed: the nearest should be the original.
      const query = text(i).replace(/#\d+$/, 'changed');
      const vector = embeddingFor(query, DIMS);
      const s = performance.now();
      const hits = await reader.search({ vector, k: K, namespace: 'history', filter: { embed_model: 'sim-embed' } });
      lat.push(performance.now() - s);
      if (hits[0]?.id === `bench:${i}`) top1++;
    }
    const { p50, p99 } = stats(lat);
    const c = reader.cached();
    const rss = process.memoryUsage().rss;
    await reader.close();
    process.stdout.write(
      `${name} ${target} vectors × ${DIMS} dims: upsert ${round(added / (upsertMs / 1000), 0)} vectors/s (batches of ${BATCH}; embedding them took ${round(embedMs / 1000, 1)} s more); ` +
        `first search (cache fill) ${round(firstMs, 0)} ms; search k=${K} p50 ${p50} ms p99 ${p99} ms over ${QUERIES} queries (top-1 = source ${top1}/${QUERIES}); ` +
        `cache ${round(c.bytes / 2 ** 20, 0)} MiB of vectors; store ${await size()}; rss ${round(rss / 2 ** 20, 0)} MiB\n`,
    );
  }
  await store.close();
}

runBench(async () => {
  process.stdout.write(`memory-search bench, ${new Date().toISOString()}, node ${process.version}, sizes ${SIZES.join(', ')}, ${DIMS} dims\n`);
  const dir = mkdtempSync(join(tmpdir(), 'hydra-vectors-bench-'));
  try {
    const path = join(dir, 'history.sqlite');
    await measure('SQLite', () => open(`sqlite:${path}`), async () => `${round(statSync(path).size / 2 ** 20, 0)} MiB file`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const missing = postgresMissing();
  if (missing) return void process.stdout.write(`PostgreSQL skipped: ${missing}\n`);
  const server = await startPrivatePostgres();
  try {
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    const size = async () => `${round(Number((await admin.query<{ n: string }>("SELECT pg_total_relation_size('vectors') AS n")).rows[0]!.n) / 2 ** 20, 0)} MiB table (test server, fsync off)`;
    await measure('PostgreSQL', () => open(server.url), size);
    await admin.end();
  } finally {
    await server.destroy();
  }
});
