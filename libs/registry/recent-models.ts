// Which nodes recently had which models: heartbeats write it, submit reads it so a model whose only nodes are restarting stays routable.
import type { NodeRecord } from '../core/index.js';
import type { HydraKeys, RedisClient } from '../queue/index.js';
import type { RecentNode } from '../scheduling/index.js';

/** One hash per cluster: field = node id, value = what that node last said it had and when (JSON, below). */
export const recentModelsKey = (keys: HydraKeys): string => `${keys.prefix}:recent-models`;

interface Stored {
  /** Heartbeat time (ms). */
  at: number;
  type: NodeRecord['type'];
  vram_total_mb: number;
  models: string[];
}

/** The HSET arguments (key, field, value) a heartbeat adds to its write: one field per node, so the hash is as small as the fleet. */
export function recentModelsEntry(keys: HydraKeys, rec: NodeRecord): [string, string, string] {
  const v: Stored = { at: rec.last_heartbeat, type: rec.type, vram_total_mb: rec.vram_total_mb, models: rec.models_available.map((m) => m.name) };
  return [recentModelsKey(keys), rec.id, JSON.stringify(v)];
}

/**
 * The nodes seen within `graceMs` of `now`, as routing facts (planRoute leaves out the ones still live). Fields older
 * than the grace are deleted here, so nodes that left for good do not accumulate. Read only when routing found no
 * live node for a model, so it costs nothing on the common path.
 */
export async function readRecentNodes(redis: RedisClient, keys: HydraKeys, now: number, graceMs: number): Promise<RecentNode[]> {
  if (graceMs <= 0) return [];
  const all = await redis.hgetall(recentModelsKey(keys));
  const out: RecentNode[] = [];
  const stale: string[] = [];
  for (const [id, raw] of Object.entries(all)) {
    let v: Stored;
    try {
      v = JSON.parse(raw) as Stored;
    } catch {
      stale.push(id);
      continue;
    }
    const age = now - v.at;
    if (age > graceMs) stale.push(id);
    else out.push({ id, type: v.type, vram_total_mb: v.vram_total_mb, models: v.models, age_ms: Math.max(0, age) });
  }
  if (stale.length) await redis.hdel(recentModelsKey(keys), ...stale);
  return out;
}
