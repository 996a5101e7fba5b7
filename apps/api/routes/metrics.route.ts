// GET /metrics: Prometheus text of this process (Node, HTTP, Redis commands) and of the cluster (read from Redis, the
// same on every replica). `?scope=process` or `?scope=cluster` serves one half (docs/metrics.md).
import { Router, type Request, type Response } from 'express';
import { processMetrics, renderFamilies, type Family } from '../../../libs/metrics/index.js';
import type { ApiContext } from '../context.js';
import { requireKey } from '../auth.js';
import { route } from '../errors.js';

const SCOPES = new Set(['all', 'process', 'cluster']);

export function metricsRouter(ctx: ApiContext): Router {
  const r = Router();
  let redisDown = false;
  r.get(
    '/metrics',
    requireKey(ctx.config.API_KEYS),
    route(async (req: Request, res: Response) => {
      const scope = typeof req.query.scope === 'string' && SCOPES.has(req.query.scope) ? req.query.scope : 'all';
      const { registry } = ctx.metrics;
      const parts: string[] = [];
      if (scope !== 'process') {
        // Without Redis the process half still answers (that is when it matters most); the cluster half says it is out.
        let families: Family[];
        let up = 1;
        try {
          families = (await ctx.metrics.cluster()).families;
          if (redisDown) ctx.logger.info('cluster metrics readable again');
          redisDown = false;
        } catch (e) {
          if (!redisDown) ctx.logger.warn({ err: (e as Error).message }, 'cluster metrics unavailable (Redis); serving process metrics only');
          redisDown = true;
          families = [];
          up = 0;
        }
        families.push({ name: 'hydra_cluster_metrics_up', help: 'Whether the cluster-wide metrics could be read from Redis for this scrape.', type: 'gauge', samples: [{ labels: {}, value: up }] });
        parts.push(renderFamilies(families));
      }
      if (scope !== 'cluster') parts.push(await processMetrics().metrics(), await registry.metrics());
      res.setHeader('Content-Type', registry.contentType);
      res.setHeader('Cache-Control', 'no-store');
      res.send(parts.join(''));
    }),
  );
  return r;
}
