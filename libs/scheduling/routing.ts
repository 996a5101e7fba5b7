// Submit-time routing: which queue a request goes to, why, and which nodes could serve it. Pure.
import { ErrorCode, HydraError, type NodeRecord, type Route, type RoutingCandidate, type RoutingFields } from '../core/index.js';
import { classQueueName, minVramBucketGb, nodeQueueName, sameModel } from './models.js';

export interface RouteRequest extends RoutingFields {
  model: string;
}

/** The submit-time route plus the queue's capability class (recorded in the queue registry). */
export interface RoutePlan extends Route {
  queueInfo: QueueInfo;
}

/** A node that had models recently but may not heartbeat now (libs/registry/recent-models.ts), `age_ms` since it was seen. */
export interface RecentNode {
  id: string;
  type: NodeRecord['type'];
  vram_total_mb: number;
  models: string[];
  age_ms: number;
}

export type QueueInfo =
  | { kind: 'class'; name: string; model: string; min_vram_mb: number }
  | { kind: 'node'; name: string; node: string }
  /** Workflow parents (libs/workflows): listed for Bull Board and stats, never pulled as inference. */
  | { kind: 'workflow'; name: string };

const gbToMb = (gb: number): number => Math.ceil(gb * 1024);

/** The memory floor (MB) a request's `min_vram_gb` is served under: its bucket (minVramBucketGb), 0 when none. */
export const minVramMbOf = (minVramGb: number | undefined): number => gbToMb(minVramBucketGb(minVramGb ?? 0));

/** Whether `node` could ever run `model` under `minVramMb` (ignores what is busy right now). */
export function nodeQualifies(node: NodeRecord, model: string, minVramMb: number): { ok: true; need_mb: number } | { ok: false; why: string } {
  const m = node.models_available.find((x) => sameModel(x.name, model));
  if (!m) return { ok: false, why: `does not have model ${model}` };
  if (minVramMb > 0 && node.type !== 'gpu') return { ok: false, why: 'is a CPU node (min_vram_gb needs a GPU)' };
  if (minVramMb > 0 && node.vram_total_mb < minVramMb) return { ok: false, why: `has ${mbToGb(node.vram_total_mb)} GB VRAM, less than min_vram_gb` };
  if (m.need_mb > node.capacity_mb) return { ok: false, why: `cannot fit it (needs ${mbToGb(m.need_mb)} GB, has ${mbToGb(node.capacity_mb)} GB usable)` };
  return { ok: true, need_mb: m.need_mb };
}

const mbToGb = (mb: number): string => (mb / 1024).toFixed(1);

/** Healthy and not sitting out a circuit-breaker cooldown. */
export const isServing = (n: NodeRecord): boolean => n.healthy && n.breaker?.state !== 'open';

function candidatesFor(nodes: NodeRecord[], model: string, minVramMb: number): RoutingCandidate[] {
  const out: RoutingCandidate[] = [];
  for (const n of nodes) {
    const q = nodeQualifies(n, model, minVramMb);
    if (!q.ok) continue;
    out.push({
      id: n.id,
      healthy: isServing(n),
      warm: n.models_loaded.some((l) => sameModel(l.name, model)),
      need_mb: q.need_mb,
      capacity_mb: n.capacity_mb,
    });
  }
  // Healthy and warm first: the order a reader of the routing decision expects.
  return out.sort((a, b) => Number(b.healthy) - Number(a.healthy) || Number(b.warm) - Number(a.warm) || b.capacity_mb - a.capacity_mb);
}

/** Explain why no registered node can ever take this request. */
function unsatisfiable(nodes: NodeRecord[], model: string, minVramMb: number, minVramGb: number | undefined): HydraError {
  if (nodes.length === 0) {
    return new HydraError(ErrorCode.Unsatisfiable, 'no inference node is registered: start a worker (hydra worker) and retry');
  }
  const withModel = nodes.filter((n) => n.models_available.some((m) => sameModel(m.name, model)));
  if (withModel.length === 0) {
    const known = [...new Set(nodes.flatMap((n) => n.models_available.map((m) => m.name)))].sort();
    return new HydraError(ErrorCode.Unsatisfiable, `no registered node has model "${model}"; models available: ${known.join(', ') || 'none'}`, {
      details: { model, models_available: known },
    });
  }
  if (minVramMb > 0) {
    const bucket = minVramMb / 1024;
    const asked = bucket === minVramGb ? `min_vram_gb ${minVramGb}` : `min_vram_gb ${minVramGb} (the ${bucket} GB bucket)`;
    const gpus = withModel.filter((n) => n.type === 'gpu');
    const largest = Math.max(0, ...gpus.map((n) => n.vram_total_mb));
    if (largest < minVramMb) {
      return new HydraError(
        ErrorCode.Unsatisfiable,
        `${asked}: no registered GPU node with model "${model}" has that much VRAM (largest: ${mbToGb(largest)} GB)`,
        { details: { model, min_vram_gb: minVramGb, min_vram_bucket_gb: bucket, largest_vram_gb: Number(mbToGb(largest)) } },
      );
    }
  }
  const reasons = withModel.map((n) => `${n.id} ${(nodeQualifies(n, model, minVramMb) as { why: string }).why}`);
  return new HydraError(ErrorCode.Unsatisfiable, `no registered node can run "${model}": ${reasons.join('; ')}`, { details: { model } });
}

/**
 * Decide the queue for a request. Throws `unsatisfiable` when no registered node could ever serve it;
 * a request that only waits for capacity or health is queued.
 */
export function planRoute(req: RouteRequest, nodes: NodeRecord[], localHosts: readonly string[], recent: readonly RecentNode[] = []): RoutePlan {
  // Served under its bucket (rounded up): one class queue per bucket, and every node of the queue has ≥ the bucket.
  const bucketGb = minVramBucketGb(req.min_vram_gb ?? 0);
  const minVramMb = minVramMbOf(bucketGb);
  const vramNote = !bucketGb ? '' : bucketGb === req.min_vram_gb ? ` with ≥ ${bucketGb} GB VRAM` : ` with ≥ ${bucketGb} GB VRAM (min_vram_gb ${req.min_vram_gb} rounded up to its bucket)`;
  const candidates = candidatesFor(nodes, req.model, minVramMb);
  const requested = req.node_id ?? null;
  const klass = (): QueueInfo => ({ kind: 'class', name: classQueueName(req.model, minVramMb), model: req.model, min_vram_mb: minVramMb });
  const toNode = (id: string): QueueInfo => ({ kind: 'node', name: nodeQueueName(id), node: id });
  /**
   * No live node qualifies, but one that has stopped heartbeating had the model within MODEL_GRACE_MS (a restart, a
   * redeploy): queue for the class rather than answer 422. Live nodes are judged by their current record instead.
   */
  const comingBack = (why: string): string | null => {
    const back = recent.filter(
      (r) =>
        !nodes.some((n) => n.id === r.id) &&
        r.models.some((m) => sameModel(m, req.model)) &&
        (minVramMb === 0 || (r.type === 'gpu' && r.vram_total_mb >= minVramMb)),
    );
    if (back.length === 0) return null;
    const seen = back.map((r) => `${r.id} (${Math.round(r.age_ms / 1000)} s ago)`).join(', ');
    return `${why}; node(s) that had it stopped heartbeating within MODEL_GRACE_MS: ${seen}; queued until one comes back${vramNote}`;
  };

  if (requested) {
    const node = nodes.find((n) => n.id === requested);
    const q = node ? nodeQualifies(node, req.model, minVramMb) : undefined;
    if (node && q?.ok && isServing(node)) {
      const info = toNode(node.id);
      return { queue: info.name, queueInfo: info, requested_node: requested, reason: `pinned to requested node ${requested}`, candidates };
    }
    if (candidates.length === 0) {
      const info = klass();
      const back = comingBack(`requested node ${requested} is not registered`);
      if (back) return { queue: info.name, queueInfo: info, requested_node: requested, reason: back, candidates };
      throw unsatisfiable(nodes, req.model, minVramMb, req.min_vram_gb);
    }
    const why = !node
      ? `requested node ${requested} is not registered`
      : !node.healthy
        ? `requested node ${requested} is unhealthy (${node.error ?? 'backend not answering'})`
        : node.breaker?.state === 'open'
          ? `requested node ${requested} has its circuit breaker open after repeated backend failures`
        : `requested node ${requested} ${(q as { why: string }).why}`;
    const info = klass();
    return { queue: info.name, queueInfo: info, requested_node: requested, reason: `${why}; fell back to any qualifying node`, candidates };
  }

  if (candidates.length === 0) {
    const info = klass();
    const back = comingBack(`no live node has model "${req.model}"`);
    if (back) return { queue: info.name, queueInfo: info, requested_node: null, reason: back, candidates };
    throw unsatisfiable(nodes, req.model, minVramMb, req.min_vram_gb);
  }

  if (req.prefer_local) {
    const local = candidates.find((c) => c.healthy && localHosts.includes(nodes.find((n) => n.id === c.id)?.host ?? ''));
    if (local) {
      const info = toNode(local.id);
      return { queue: info.name, queueInfo: info, requested_node: null, reason: `prefer_local: local node ${local.id} qualifies`, candidates };
    }
  }
  const info = klass();
  const healthy = candidates.filter((c) => c.healthy).length;
  const reason =
    (req.prefer_local ? 'prefer_local: no healthy local node qualifies; ' : '') +
    (healthy > 0
      ? `queued for ${healthy} qualifying node(s)${vramNote}`
      : 'every qualifying node is unhealthy right now; queued until one recovers');
  return { queue: info.name, queueInfo: info, requested_node: null, reason, candidates };
}

/** A queue's recent completion rate, from the finish times (ms) of its last completed jobs. */
export interface QueueRate {
  /** Jobs completed per second over the sample; null when the sample says nothing (fewer than 2, or stale). */
  perSecond: number | null;
  sample: number;
}

/** Older completions say nothing about how fast the queue moves now (ms). */
export const RATE_STALE_MS = 10 * 60_000;

/**
 * Completions per second of a queue: (n - 1) finishes over the span from the first to the last, counting only those
 * within RATE_STALE_MS of `now`. It is a measured service rate, so it includes however many nodes and slots serve the
 * queue; under a backlog it is the rate the line moves. When the queue was mostly idle it is the arrival rate, lower
 * than what the nodes could do: estimates from it then err late, never early.
 */
export function completionRate(finishedAtMs: readonly number[], now: number): QueueRate {
  const recent = finishedAtMs.filter((t) => t > 0 && now - t <= RATE_STALE_MS);
  if (recent.length < 2) return { perSecond: null, sample: recent.length };
  const spanMs = Math.max(...recent) - Math.min(...recent);
  return { perSecond: spanMs > 0 ? ((recent.length - 1) * 1000) / spanMs : null, sample: recent.length };
}

/** When the job at `position` (1 = next) should start at that rate: the `position - 1` ahead of it finish first (ms). */
export function estimatedStartMs(position: number, rate: QueueRate, now: number): number | null {
  if (rate.perSecond === null) return null;
  return now + Math.round(((position - 1) * 1000) / rate.perSecond);
}

/** Seconds until a full queue should have room for one more: one completion at its rate, 1-60 s (5 s when unknown). */
export function retryAfterS(rate: QueueRate): number {
  if (rate.perSecond === null) return 5;
  return Math.min(60, Math.max(1, Math.ceil(1 / rate.perSecond)));
}
