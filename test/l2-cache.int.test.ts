// L2 of the cache (SQLite and a real PostgreSQL): an exact repeat whose L1 entry is gone from Redis is answered from the
// results history within CACHE_TTL_S (cached: true, tier L2, no job); another option, a sampled request or an answer
// older than CACHE_TTL_S runs again.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from './support/cluster.js';
import { historyDialects, postgresFor, type PrivatePostgres } from './support/postgres.js';
import { waitFor } from './support/wait.js';

const stores = historyDialects('test/l2-cache.int.test.ts');

describe.each(stores)('L2 answers from the results history (%s)', (dialect) => {
  let pg: PrivatePostgres | null = null;
  let dir: string;
  let c: TestCluster;
  const generates = () => (c.sims[0]!.state().requests as Record<string, number>)['POST /api/generate'] ?? 0;
  const dropL1 = async () => {
    const keys = await c.ctx.redis.keys(`${c.ctx.keys.prefix}:cache:*`);
    if (keys.length) await c.ctx.redis.del(...keys);
  };
  const job = (prompt: string, options: Record<string, unknown> = { temperature: 0, num_predict: 6 }) => c.post('/v1/jobs', { type: 'generate', model: 'm', prompt, options, wait: true });
  const inHistory = (id: string) => waitFor(async () => ((await c.get(`/v1/history?limit=100`)).body.items as any[]).some((r) => r.id === id), { what: `job ${id} in the history` });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hydra-l2-'));
    pg = await postgresFor(dialect);
    c = await startCluster({ MEMORY_URL: pg ? pg.url : `sqlite:${join(dir, 'history.sqlite')}`, CACHE_TTL_S: '4' });
    await c.simWorker('gpu', { vramGb: 24, models: [{ name: 'm', sizeGb: 1 }], tokensPerSecond: 5000, loadMsPerGb: 0 });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
    await pg?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('answers an exact repeat from the history once the L1 entry is gone, without a job; not another option or a sampled request', async () => {
    const first = await job('what is the capital of portugal');
    expect(first.status).toBe(200);
    expect(first.body.cached).toBeUndefined();
    await inHistory(first.body.id);
    await dropL1();
    const before = generates();
    const again = await job('what is the capital of portugal');
    expect(again.body).toMatchObject({ state: 'completed', cached: true, id: first.body.id, result: { response: first.body.result.response } });
    expect(again.body.cache).toMatchObject({ hit: true, tier: 'L2', source_job_id: first.body.id });
    expect(generates()).toBe(before);
    // Same prompt, other options: runs. A sampled request: never cached, runs.
    expect((await job('what is the capital of portugal', { temperature: 0, num_predict: 7 })).body.cached).toBeUndefined();
    expect((await job('what is the capital of portugal', { temperature: 0.8, num_predict: 6 })).body.cached).toBeUndefined();
    expect(generates()).toBe(before + 2);
  });

  it('an answer older than CACHE_TTL_S is not served from L2', async () => {
    const first = await job('name a prime number above one hundred');
    await inHistory(first.body.id);
    await dropL1();
    await new Promise((r) => setTimeout(r, 4500));
    const before = generates();
    const again = await job('name a prime number above one hundred');
    expect(again.body.cached).toBeUndefined();
    expect(generates()).toBe(before + 1);
  }, 20_000);
});
