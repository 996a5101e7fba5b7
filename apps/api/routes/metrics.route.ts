// GET /metrics: Prometheus text of this process (Node, HTTP, Redis commands) and of the cluster (read from Redis, the
// same on every replica, shared by scrapes within half a second). `?scope=process` or `?scope=cluster` serves one half
// (docs/metrics.md).
import { Router, type Request, type Response } from 'express';
import { EXPOSITION_CONTENT_TYPE, processMetrics, renderFamilies, type ClusterSnapshot } from '../../../libs/metrics/index.js';
import type { ApiContext } from '../context.js';
import { requireKey } from '../auth.js';
import { route } from '../errors.js';

const SCOPES = new Set(['all', 'process', 'cluster']);

export function metricsRouter(ctx: ApiContext): Router {
  const r = Router();
  let redisDown = false;
  const rendered = new WeakMap<ClusterSnapshot, string>();
  r.get(
    '/metrics',
    requireKey(ctx.config.API_KEYS),
    route(async (req: Request, res: Response) => {
      const scope = typeof req.query.scope === 'string' && SCOPES.has(req.query.scope) ? req.query.scope : 'all';
      const { registry } = ctx.metrics;
      const parts: string[] = [];
      if (scope !== 'process') {
        // Without Redis the process half still answers (that is when it matters most); the cluster half says it is out.
        let up = 1;
        try {
          // `Cache-Control: no-cache` asks for a read of its own (Prometheus does not send it; a person or a bench may).
          const snap = await ctx.metrics.cluster({ fresh: /\bno-cache\b/i.test(req.headers['cache-control'] ?? '') });
          // Scrapes that share a snapshot (ctx.metrics.cluster) share its text too.
          let text = rendered.get(snap);
          if (text === undefined) rendered.set(snap, (text = renderFamilies(snap.families)));
          parts.push(text);
          if (redisDown) ctx.logger.info('cluster metrics readable again');
          redisDown = false;
        } catch (e) {
          if (!redisDown) ctx.logger.warn({ err: (e as Error).message }, 'cluster metrics unavailable (Redis); serving process metrics only');
          redisDown = true;
          up = 0;
        }
        parts.push(renderFamilies([{ name: 'hydra_cluster_metrics_up', help: 'Whether the cluster-wide metrics could be read from Redis for this scrape.', type: 'gauge', samples: [{ labels: {}, value: up }] }]));
      }
      if (scope !== 'cluster') parts.push(await processMetrics().metrics(), registry.text());
      res.setHeader('Content-Type', EXPOSITION_CONTENT_TYPE);
      res.setHeader('Cache-Control', 'no-store');
      res.send(parts.join(''));
    }),
  );
  return r;
}
