// What one finished job adds to the cluster-wide metrics: pure, from the job's facts (times, attempts, result, token timing).
import { bucketIndex } from './exposition.js';
import { STORED, type Increment, type StoredMetric } from './stored.js';
import type { TokenTiming } from './token-timing.js';

/** The facts of a job that ended for good, as its worker knows them. Times are ms since the epoch. */
export interface FinishedJob {
  type: string;
  node: string;
  state: 'completed' | 'failed';
  /** Error code of a failed job (`cancelled`, `poison_pill`, `timeout`, ...). */
  code?: string;
  /** When the API accepted it (the API's clock). */
  submittedAt: number;
  /** When its last attempt started (BullMQ processedOn, the worker's clock). */
  startedAt: number;
  finishedAt: number;
  /** Attempts made, the last included. */
  attemptsMade: number;
  /** Times BullMQ found it stalled (its worker died) and ran it again. */
  stalls: number;
  /** Whether the dispatcher took it with its model already loaded on the node (undefined: not known). */
  warm?: boolean;
  result?: { prompt_tokens: number; completion_tokens: number; eval_duration_ms: number; load_duration_ms: number };
  timing?: TokenTiming;
}

const outcomeOf = (j: Pick<FinishedJob, 'state' | 'code'>): 'completed' | 'failed' | 'cancelled' =>
  j.state === 'completed' ? 'completed' : j.code === 'cancelled' ? 'cancelled' : 'failed';

function observe(metric: StoredMetric, labels: Record<string, string>, seconds: number): Increment[] {
  const v = Math.max(0, seconds);
  return [
    { metric, labels, part: bucketIndex(metric.buckets ?? [], v), amount: 1 },
    { metric, labels, part: 'sum', amount: v },
  ];
}

/** The increments of one finished job (its model is added by the recording, capped). */
export function finishedJobIncrements(j: FinishedJob): Increment[] {
  const byType = { type: j.type };
  const outcome = outcomeOf(j);
  const out: Increment[] = [{ metric: STORED.jobsFinished, labels: { ...byType, node: j.node, outcome }, amount: 1 }];
  if (j.state === 'failed') out.push({ metric: STORED.jobFailures, labels: { ...byType, code: j.code ?? 'internal' }, amount: 1 });
  if (j.attemptsMade > 1) out.push({ metric: STORED.jobRetries, labels: byType, amount: j.attemptsMade - 1 });
  if (j.stalls > 0) out.push({ metric: STORED.jobStalls, labels: byType, amount: j.stalls });
  const r = j.result;
  if (j.state !== 'completed' || !r) return out;
  const byNode = { node: j.node };
  out.push(
    { metric: STORED.promptTokens, labels: byNode, amount: r.prompt_tokens },
    { metric: STORED.completionTokens, labels: byNode, amount: r.completion_tokens },
    { metric: STORED.decodeSeconds, labels: byNode, amount: r.eval_duration_ms / 1000 },
    ...observe(STORED.duration, byType, (j.finishedAt - j.submittedAt) / 1000),
    ...observe(STORED.queueWait, byType, (j.startedAt - j.submittedAt) / 1000),
  );
  const t = j.timing;
  if (t?.firstAt != null) {
    // Across two clocks (the API's submit, the worker's first token), like the queue wait: keep them in sync (NTP).
    out.push(...observe(STORED.ttft, byType, (t.firstAt - j.submittedAt) / 1000));
  }
  if (t && t.gaps > 0) {
    t.gapCounts.forEach((n, i) => n > 0 && out.push({ metric: STORED.interToken, labels: byType, part: i, amount: n }));
    out.push({ metric: STORED.interToken, labels: byType, part: 'sum', amount: t.gapSum });
  }
  if (j.warm === false && r.load_duration_ms > 0) out.push(...observe(STORED.loadDuration, byNode, r.load_duration_ms / 1000));
  return out;
}

/** The increments of a job cancelled before it ran (removed from its queue by the API): no node, no attempt. */
export const cancelledWaitingIncrements = (type: string): Increment[] => [
  { metric: STORED.jobsFinished, labels: { type, node: '', outcome: 'cancelled' }, amount: 1 },
  { metric: STORED.jobFailures, labels: { type, code: 'cancelled' }, amount: 1 },
];
