// /v1/nodes and /v1/cluster/stats: the registry and queue counts as users see them.
import { Router, type Request, type Response } from 'express';
import type { NodeView } from '../../../libs/registry/index.js';
import type { ApiContext } from '../context.js';
import { route } from '../errors.js';

const gb = (mb: number): number => Math.round((mb / 1024) * 100) / 100;

function viewNode(n: NodeView) {
  return {
    id: n.id,
    url: n.url,
    type: n.type,
    backend: n.backend,
    simulated: n.simulated,
    healthy: n.healthy,
    ...(n.error ? { error: n.error } : {}),
    vram_total_mb: n.vram_total_mb,
    vram_available_mb: n.vram_available_mb,
    vram_available_gb: gb(n.vram_available_mb),
    ram_total_mb: n.ram_total_mb,
    ram_available_mb: n.ram_available_mb,
    capacity_mb: n.capacity_mb,
    reserved_mb: n.reserved_mb,
    models_available: n.models_available.map((m) => m.name),
    models: n.models_available,
    models_loaded: n.models_loaded.map((m) => m.name),
    models_loaded_count: n.models_loaded.length,
    active_jobs: n.active_jobs,
    slots: n.slots,
    // Measured speed per model (EWMAs over completed jobs: tokens/s, first token, load), {} until a job ran.
    perf: n.perf ?? {},
    breaker: n.breaker ?? { state: 'closed', recent_failures: 0, open_until: null },
    last_heartbeat: new Date(n.last_heartbeat).toISOString(),
  };
}

export function nodesRouter(ctx: ApiContext): Router {
  const r = Router();
  r.get(
    '/v1/nodes',
    route(async (_req: Request, res: Response) => {
      const nodes = await ctx.registry.list(Date.now());
      res.json({ nodes: nodes.map(viewNode) });
    }),
  );
  r.get(
    '/v1/cluster/stats',
    route(async (_req: Request, res: Response) => {
      const [nodes, queues, cache] = await Promise.all([ctx.registry.list(Date.now()), ctx.producer.listQueues(), ctx.cache.stats()]);
      const perQueue: Record<string, { waiting: number; active: number; delayed: number; completed: number; failed: number }> = {};
      await Promise.all(
        queues.map(async (q) => {
          const c = await ctx.producer.queue(q.name).getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed');
          perQueue[q.name] = { waiting: (c.waiting ?? 0) + (c.prioritized ?? 0), active: c.active ?? 0, delayed: c.delayed ?? 0, completed: c.completed ?? 0, failed: c.failed ?? 0 };
        }),
      );
      const sum = (k: keyof (typeof perQueue)[string]) => Object.values(perQueue).reduce((a, q) => a + q[k], 0);
      res.json({
        total_nodes: nodes.length,
        healthy_nodes: nodes.filter((n) => n.healthy).length,
        gpu_nodes: nodes.filter((n) => n.type === 'gpu').length,
        cpu_nodes: nodes.filter((n) => n.type === 'cpu').length,
        simulated_nodes: nodes.filter((n) => n.simulated).length,
        active_jobs: nodes.reduce((a, n) => a + n.active_jobs, 0),
        totals: { waiting: sum('waiting'), active: sum('active'), delayed: sum('delayed'), completed: sum('completed'), failed: sum('failed') },
        queues: perQueue,
        // L1 cache counters (hits were answered without a job).
        cache,
      });
    }),
  );
  return r;
}
