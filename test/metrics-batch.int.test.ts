// A worker's job metrics are recorded in batches (METRICS_FLUSH_MS), not inside each job's end call: the end call of a
// job carries no metrics script, the jobs' counts arrive together, and a worker stopped cleanly records what it still
// holds. Real worker child process on a simulated node, real Redis (MONITOR).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORED } from '../libs/metrics/index.js';
import { startCluster, type TestCluster } from './support/cluster.js';
import { monitorRedis } from './support/redis-server.js';

describe('job metrics batched by the worker', () => {
  let c: TestCluster;

  beforeAll(async () => {
    c = await startCluster();
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
  });

  const completed = async () => {
    const h = await c.ctx.redis.hgetall(c.ctx.keys.metric(STORED.jobsFinished.key));
    return Object.entries(h)
      .filter(([f]) => f.endsWith('|completed'))
      .reduce((n, [, v]) => n + Number(v), 0);
  };

  it('holds them for the interval, sends none inside the end calls, and records them on a clean stop', async () => {
    // An interval longer than the test: whatever is recorded was recorded by the stop.
    const { worker } = await c.simWorker('mb1', { vramGb: 24, models: [{ name: 'm', sizeGb: 1 }], tokensPerSecond: 4000, loadMsPerGb: 0 }, { METRICS_FLUSH_MS: '60000' });
    let insideEnds = 0;
    let hincrs = 0;
    const metricsPrefix = c.ctx.keys.metric('');
    const mon = await monitorRedis(c.redisUrl, (args, source) => {
      if (source === 'lua' && /^hincrby(float)?$/i.test(String(args[0])) && String(args[1]).startsWith(metricsPrefix)) hincrs++;
      // job-end.lua's first key is the queue's wait list; its job metrics would be HINCRBYs inside it.
      if (source !== 'lua' && /^eval(sha)?$/i.test(String(args[0])) && String(args[3]).startsWith(`${c.prefix}:`) && String(args[3]).endsWith(':wait') && Number(args[2]) > 14) insideEnds++;
    });
    try {
      for (let i = 0; i < 3; i++) {
        const r = await c.post('/v1/jobs', { type: 'generate', model: 'm', prompt: `batched ${i}`, options: { num_predict: 2 }, wait: true });
        expect(r.status, JSON.stringify(r.body)).toBe(200);
      }
      await new Promise((r) => setTimeout(r, 300));
      expect(insideEnds, 'job end calls seen').toBeGreaterThanOrEqual(3);
      // Before: each end call ran the metrics script inside it.
      expect(hincrs, 'metrics increments while the jobs ended').toBe(0);
      expect(await completed()).toBe(0);
      await worker.stop('SIGTERM');
    } finally {
      mon.close();
    }
    expect(await completed()).toBe(3);
  }, 60_000);
});
