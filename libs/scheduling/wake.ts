// Which nodes a new job's wake-up wakes: on a class queue, a few with a free slot (warm for the model first, in turns),
// not all of them; one job needs one taker, and each woken node runs a dispatch round (1-4 Redis round trips). The API
// picks them at submit from its view of the registry and wakes each on its own channel (`wakeNodesFor`), the first at
// once and the rest WAKE_STAGGER_MS later (libs/queue/producer.ts), so they do not race the first for it; a wake for
// every node (a workflow step, a requeue) is narrowed the same way inside each worker process over its own agents.
import type { RoutePlan } from './routing.js';

/** How many nodes a wake for a class queue wakes (a few, so a race or a refusal still has a taker). */
export const WAKE_FANOUT = 4;

export interface WakeCandidate {
  /** The model of the job's queue is loaded on this node. */
  warm: boolean;
  /** Inference slots free now. */
  free: number;
}

/**
 * Indices of the candidates to wake: up to `fanout` with a free slot, the warm ones first, each group rotated by
 * `turn` so repeated wakes spread over the nodes. Nodes not woken still look at their queues every POLL_MS; a node with
 * no free slot would take nothing from a class queue now anyway (a full node's round looks only at its own queue), and
 * when no candidate has one, each is told a job waits (worker-process.ts: NodeAgent.slotWanted), so it looks again as
 * soon as its next job ends rather than at its next poll.
 */
export function wakeTargets(cands: readonly WakeCandidate[], fanout: number, turn: number): number[] {
  const rotate = (xs: number[]) => (xs.length === 0 ? xs : [...xs.slice(turn % xs.length), ...xs.slice(0, turn % xs.length)]);
  const free = cands.map((c, i) => ({ c, i })).filter((x) => x.c.free > 0);
  const warm = rotate(free.filter((x) => x.c.warm).map((x) => x.i));
  const cold = rotate(free.filter((x) => !x.c.warm).map((x) => x.i));
  return [...warm, ...cold].slice(0, fanout);
}

/** A node as the API's registry view shows it (NodeView): its id and worker slots in use. */
export interface WakeView {
  id: string;
  slots: number;
  active_jobs?: number;
}

/**
 * The nodes to wake for a job routed by `plan`, from the submitting process's view of the registry: the node of a
 * node queue; for a class queue up to `WAKE_FANOUT` healthy candidates with a free slot (warm first, in turns).
 * Undefined when the view shows none free: the wake then goes to every worker process, each waking its own agents
 * that have a free slot now (the view may be stale by up to a refresh, the agents' counts are not).
 */
export function wakeNodesFor(plan: Pick<RoutePlan, 'queueInfo' | 'candidates'>, view: readonly WakeView[], turn: number): string[] | undefined {
  const info = plan.queueInfo;
  if (info.kind === 'node') return [info.node];
  if (info.kind !== 'class') return undefined;
  const byId = new Map(view.map((n) => [n.id, n]));
  const healthy = plan.candidates.filter((c) => c.healthy && byId.has(c.id));
  const cands = healthy.map((c) => {
    const n = byId.get(c.id)!;
    return { warm: c.warm, free: n.slots - (n.active_jobs ?? 0) };
  });
  const picked = wakeTargets(cands, WAKE_FANOUT, turn).map((i) => healthy[i]!.id);
  return picked.length > 0 ? picked : undefined;
}
