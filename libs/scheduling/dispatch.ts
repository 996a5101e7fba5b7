// Worker-side policy: which queues a node may pull from, and which waiting job to take next. Pure.
import type { NodeRecord } from '../core/index.js';
import { sameModel } from './models.js';
import { isServing, nodeQualifies, type QueueInfo } from './routing.js';

/** Queues this node can ever serve: its own node queue and every class it qualifies for. */
export function eligibleQueues(queues: readonly QueueInfo[], node: NodeRecord): QueueInfo[] {
  return queues.filter((q) => (q.kind === 'node' ? q.node === node.id : q.kind === 'class' && nodeQualifies(node, q.model, q.min_vram_mb).ok));
}

/** The head of one queue as peeked in Redis. `priority` is BullMQ's (1 = most urgent). */
export interface QueueHead {
  queue: string;
  jobId: string;
  model: string;
  priority: number;
  /** When the job was added (ms since epoch). */
  timestamp: number;
  /** Session affinity: the node that ran the previous job of this job's session (it holds the KV cache). */
  sessionNode?: string;
}

export interface DispatchChoice {
  head: QueueHead;
  warm: boolean;
  reason: string;
}

/**
 * Another node as the registry lists it: `active_jobs` counts reservations over all its processes (unknown = not
 * full), `inflight_by_model` those per model (unknown = none).
 */
export type PeerNode = NodeRecord & { active_jobs?: number; inflight_by_model?: Record<string, number> };

export interface DispatchContext {
  node: NodeRecord;
  /** Other nodes, to know whether a warm node that could take a model's job exists (delay scheduling). */
  others: readonly PeerNode[];
  now: number;
  localityWaitMs: number;
  /**
   * Best fit: another node that fits this (cold here) head better and could start it now, if any (`betterFit`).
   * A head younger than `bestFitWaitMs` is left to it, as a warm node's is left for `localityWaitMs`.
   */
  betterFit?: (head: QueueHead) => string | null;
  bestFitWaitMs?: number;
}

/** One node as best fit compares it for a job: whether the model is loaded there and the room it has now. */
export interface FitCandidate {
  id: string;
  warm: boolean;
  /** Memory (MB) not reserved by running jobs: capacity minus reservations. */
  freeMb: number;
  /** What the job's model needs there (MB). */
  needMb: number;
  /** Measured decode speed of the model there (tokens/s, EWMA), when known. */
  tokensPerS?: number;
}

/**
 * Best fit (the trade-off is in docs/scheduling.md): among nodes that could start a job now, prefer the one where the
 * model is loaded, then the one left with the least free memory after it (so big nodes stay free for big models),
 * then the faster one by measured speed. Returns the best candidate's id; candidates that cannot fit it now are
 * ignored; null when none can.
 */
export function bestFit(candidates: readonly FitCandidate[]): string | null {
  let best: FitCandidate | null = null;
  const key = (c: FitCandidate): [number, number, number] => [c.warm ? 0 : 1, c.warm ? 0 : c.freeMb - c.needMb, -(c.tokensPerS ?? 0)];
  for (const c of candidates) {
    if (!c.warm && c.freeMb < c.needMb) continue;
    if (!best) {
      best = c;
      continue;
    }
    const [a, b] = [key(c), key(best)];
    if (a[0] < b[0] || (a[0] === b[0] && (a[1] < b[1] || (a[1] === b[1] && a[2] < b[2])))) best = c;
  }
  return best?.id ?? null;
}

const isWarm = (n: NodeRecord, model: string): boolean => n.models_loaded.some((l) => sameModel(l.name, model));

/**
 * A warm node worth waiting for: it could start the job now (healthy, breaker not open, a free slot). Waiting for a
 * warm node that is full or sitting out a cooldown only adds the whole locality wait to the job's latency.
 */
export const canTakeNow = (n: PeerNode): boolean => isServing(n) && (n.active_jobs ?? 0) < n.slots;

/** `canTakeNow`, and a free backend slot for `model` there (its per-model `parallel`). */
export function canTakeModelNow(n: PeerNode, model: string): boolean {
  if (!canTakeNow(n)) return false;
  if (n.parallel === undefined || !n.inflight_by_model) return true;
  let inFlight = 0;
  for (const [m, c] of Object.entries(n.inflight_by_model)) if (sameModel(m, model)) inFlight += c;
  return inFlight < n.parallel;
}

/**
 * Order the heads to try: most urgent priority first, then oldest. A head whose model is cold here
 * while another healthy node that serves it has it loaded is held back for `localityWaitMs` (delay
 * scheduling), so models are not reloaded needlessly — but only while that node could take it now (`canTakeNow`);
 * `retryInMs` says when to look again.
 */
export function orderHeads(heads: readonly QueueHead[], ctx: DispatchContext): { choices: DispatchChoice[]; retryInMs: number | null } {
  const sorted = [...heads].sort((a, b) => a.priority - b.priority || a.timestamp - b.timestamp);
  const choices: DispatchChoice[] = [];
  let retryInMs: number | null = null;
  for (const head of sorted) {
    const age = ctx.now - head.timestamp;
    // Session affinity first: another node holds this conversation's KV cache and could start it now.
    const home = head.sessionNode && head.sessionNode !== ctx.node.id ? ctx.others.find((o) => o.id === head.sessionNode) : undefined;
    if (home && isWarm(home, head.model) && canTakeNow(home) && age < ctx.localityWaitMs) {
      const wait = ctx.localityWaitMs - age;
      retryInMs = retryInMs === null ? wait : Math.min(retryInMs, wait);
      continue;
    }
    if (isWarm(ctx.node, head.model)) {
      const own = head.sessionNode === ctx.node.id;
      choices.push({ head, warm: true, reason: own ? `session affinity: ${ctx.node.id} ran this session's last turn (model loaded)` : `model ${head.model} already loaded on ${ctx.node.id}` });
      continue;
    }
    const better = ctx.betterFit && ctx.bestFitWaitMs && age < ctx.bestFitWaitMs && head.sessionNode !== ctx.node.id ? ctx.betterFit(head) : null;
    if (better) {
      const wait = ctx.bestFitWaitMs! - age;
      retryInMs = retryInMs === null ? wait : Math.min(retryInMs, wait);
      continue;
    }
    const warmOthers = ctx.others.filter((o) => o.id !== ctx.node.id && isWarm(o, head.model));
    const warmElsewhere = warmOthers.find((o) => canTakeModelNow(o, head.model));
    const busyWarm = warmElsewhere ? undefined : (warmOthers.find(isServing) ?? warmOthers[0]);
    if (warmElsewhere && age < ctx.localityWaitMs) {
      const wait = ctx.localityWaitMs - age;
      retryInMs = retryInMs === null ? wait : Math.min(retryInMs, wait);
      continue;
    }
    choices.push({
      head,
      warm: false,
      reason: warmElsewhere
        ? `cold load of ${head.model}: warm node ${warmElsewhere.id} did not take it within ${ctx.localityWaitMs} ms`
        : busyWarm
          ? `cold load of ${head.model}: warm node ${busyWarm.id} cannot take it now (${!isServing(busyWarm) ? 'unhealthy or breaker open' : 'all slots busy'})`
          : `cold load of ${head.model}: no node has it loaded`,
    });
  }
  return { choices, retryInMs };
}

/** Priority 1-10 (10 most urgent) ↔ BullMQ priority (1 most urgent; 0 would jump every queue, never used). */
export const toBullPriority = (p: number): number => 11 - p;
export const fromBullPriority = (bp: number): number => 11 - bp;

/** Aging: a waiting job gains one priority level per `stepMs` waited, up to 10, so nothing starves. */
export function agedPriority(original: number, waitedMs: number, stepMs: number): number {
  return Math.min(10, original + Math.floor(Math.max(0, waitedMs) / stepMs));
}
