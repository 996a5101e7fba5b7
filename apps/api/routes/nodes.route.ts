// /v1/nodes and /v1/cluster/stats: the registry and queue counts as users see them.
import { Router, type Request, type Response } from 'express';
import { prioritizedOldest, readJobFields } from '../../../libs/queue/index.js';
import type { NodeView } from '../../../libs/registry/index.js';
import { BOARD_PATH } from '../board.js';
import type { ApiContext } from '../context.js';
import { queueCounts, viewQueue } from '../dashboard/state.js';
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

/** BullMQ priorities of the `prioritized` bands (Hydra 10..1), and the jobs read from the head of each. */
const BANDS = Array.from({ length: 10 }, (_, i) => i + 1);
const OLDEST_SAMPLE = 8;

/**
 * How long the queue's oldest waiting job has waited (ms), or null when none waits. Each band is in add order, but
 * aging re-adds a promoted job at the end of its new band, so the oldest is near a band's head, not always at it:
 * the first few of each band are read (two pipelined reads). Hydra's jobs all carry a priority, so `wait` is empty.
 */
async function oldestWaitingMs(ctx: ApiContext, queue: string, now: number): Promise<number | null> {
  const heads = await prioritizedOldest(ctx.redis, ctx.keys, queue, BANDS, OLDEST_SAMPLE);
  const added = (await readJobFields(ctx.redis, ctx.keys, queue, heads.map((h) => h.id))).flatMap((f) => (f ? [f.timestamp] : []));
  return added.length === 0 ? null : Math.max(0, now - Math.min(...added));
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
      type Counts = { waiting: number; active: number; delayed: number; completed: number; failed: number };
      const perQueue: Record<string, Counts & { by_priority: { priority: number; count: number }[]; oldest_waiting_ms: number | null }> = {};
      const now = Date.now();
      await Promise.all(
        queues.map(async (q) => {
          // The dashboard's counts (waiting per priority band): one reading of a queue for both.
          const v = viewQueue(await queueCounts(ctx.producer, q), BOARD_PATH);
          const oldest = v.waiting > 0 ? await oldestWaitingMs(ctx, q.name, now) : null;
          perQueue[q.name] = { waiting: v.waiting, active: v.active, delayed: v.delayed, completed: v.completed, failed: v.failed, by_priority: v.by_priority, oldest_waiting_ms: oldest };
        }),
      );
      const sum = (k: keyof Counts) => Object.values(perQueue).reduce((a, q) => a + q[k], 0);
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
