// Which of a process's node agents a new job's wake message wakes: on a class queue, a few with a free slot (warm
// for the model first, in turns), not all of them; one job needs one taker, and each woken agent runs a round.

/** How many agents of one process a wake for a class queue wakes (a few, so a race or a refusal still has a taker). */
export const WAKE_FANOUT = 4;

export interface WakeCandidate {
  /** The model of the job's queue is loaded on this node. */
  warm: boolean;
  /** Inference slots free now. */
  free: number;
}

/**
 * Indices of the candidates to wake: every one when there are at most `fanout`; else up to `fanout` with a free
 * slot, the warm ones first, each group rotated by `turn` so repeated wakes spread over the nodes. Agents not woken
 * still look at their queues every POLL_MS and after each job they finish, so no job waits for a wake that skipped
 * it for longer than that; a node with no free slot would take nothing now anyway.
 */
export function wakeTargets(cands: readonly WakeCandidate[], fanout: number, turn: number): number[] {
  if (cands.length <= fanout) return cands.map((_, i) => i);
  const rotate = (xs: number[]) => (xs.length === 0 ? xs : [...xs.slice(turn % xs.length), ...xs.slice(0, turn % xs.length)]);
  const free = cands.map((c, i) => ({ c, i })).filter((x) => x.c.free > 0);
  const warm = rotate(free.filter((x) => x.c.warm).map((x) => x.i));
  const cold = rotate(free.filter((x) => !x.c.warm).map((x) => x.i));
  return [...warm, ...cold].slice(0, fanout);
}
