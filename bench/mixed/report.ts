// Per-router figures in real-time-equivalent seconds (wall × time scale), the common set, ratios against the best baseline, and the printed table.
import { BIG_MODEL } from './fleet-spec.js';
import type { Outcome } from './drive.js';
import type { RouterRun } from './run-router.js';

export interface Percentiles {
  n: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface RouterStats {
  name: string;
  kind: string;
  skipped?: string;
  requests: number;
  completed: number;
  failed: number;
  failed_by_cause: Record<string, number>;
  /** Submit → last token, s (real-time equivalent). */
  latency_s: Percentiles;
  latency_common_s: Percentiles;
  /** Submit → first token, s. */
  ttft_s: Percentiles;
  /** Completed output tokens / s and completed requests / s, over first submit → last answer. */
  tokens_per_s: number;
  requests_per_s: number;
  model_loads: number | null;
  evictions: number | null;
  oom_errors: number | null;
  /** null: the simulator does not report CPU-offloaded loads. */
  offloaded_loads: number | null;
  misplaced_requests: number;
  unplaced_requests: number;
  /** Longest submit → first token of a 70b request that got one, s; and how many never got one. */
  big_model_max_wait_s: number | null;
  big_model_never_started: number;
}

const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;

/** Nearest-rank percentile. */
export function percentile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

function percentiles(xs: number[]): Percentiles {
  const s = [...xs].sort((a, b) => a - b);
  const p = (q: number): number | null => {
    const v = percentile(s, q);
    return v === null ? null : round(v);
  };
  return { n: s.length, p50: p(0.5), p95: p(0.95), p99: p(0.99) };
}

/** Request indexes every run that ran completed. */
export function commonSet(runs: readonly RouterRun[]): Set<number> {
  const ran = runs.filter((r) => !r.skipped);
  if (ran.length === 0) return new Set();
  const sets = ran.map((r) => new Set(r.outcomes.filter((o) => o.ok).map((o) => o.i)));
  return new Set([...sets[0]!].filter((i) => sets.every((s) => s.has(i))));
}

export function routerStats(run: RouterRun, common: Set<number>, timeScale: number): RouterStats {
  const sec = (ms: number): number => (ms * timeScale) / 1000;
  const done = run.outcomes.filter((o) => o.ok);
  const failedBy: Record<string, number> = {};
  for (const o of run.outcomes.filter((x) => !x.ok)) failedBy[o.error ?? 'unknown'] = (failedBy[o.error ?? 'unknown'] ?? 0) + 1;
  const e2e = (o: Outcome): number => sec(o.endMs! - o.submitMs);
  const start = Math.min(...run.outcomes.map((o) => o.submitMs));
  const end = Math.max(...done.map((o) => o.endMs!));
  const spanS = done.length > 0 ? sec(end - start) : 0;
  const tokens = done.reduce((s, o) => s + (o.tokens ?? 0), 0);
  const big = run.outcomes.filter((o) => o.model === BIG_MODEL);
  const bigWaits = big.filter((o) => o.firstTokenMs !== undefined).map((o) => sec(o.firstTokenMs! - o.submitMs));
  const c = run.counters;
  return {
    name: run.name,
    kind: run.kind,
    ...(run.skipped ? { skipped: run.skipped } : {}),
    requests: run.outcomes.length,
    completed: done.length,
    failed: run.outcomes.length - done.length,
    failed_by_cause: failedBy,
    latency_s: percentiles(done.map(e2e)),
    latency_common_s: percentiles(done.filter((o) => common.has(o.i)).map(e2e)),
    ttft_s: percentiles(done.filter((o) => o.firstTokenMs !== undefined).map((o) => sec(o.firstTokenMs! - o.submitMs))),
    tokens_per_s: spanS > 0 ? round(tokens / spanS, 1) : 0,
    requests_per_s: spanS > 0 ? round(done.length / spanS, 3) : 0,
    model_loads: c?.loads ?? null,
    evictions: c?.evictions ?? null,
    oom_errors: c?.oom_errors ?? null,
    offloaded_loads: c?.offloaded_loads ?? null,
    misplaced_requests: run.misplaced,
    unplaced_requests: run.unplaced,
    big_model_max_wait_s: bigWaits.length > 0 ? round(Math.max(...bigWaits)) : null,
    big_model_never_started: big.length - bigWaits.length,
  };
}

export interface Ratio {
  hydra: number | null;
  best_baseline: number | null;
  baseline: string | null;
  ratio: number | null;
  target: string;
  met: boolean | null;
}

/** Hydra against the best baseline for each figure (lower is better except throughput). */
export function ratios(hydra: RouterStats, baselines: readonly RouterStats[]): Record<string, Ratio> {
  const ran = baselines.filter((b) => !b.skipped);
  const one = (get: (s: RouterStats) => number | null, higherIsBetter: boolean, target: string, ok: (ratio: number, h: number) => boolean): Ratio => {
    const h = get(hydra);
    const cands = ran.map((b) => [b, get(b)] as const).filter((x): x is readonly [RouterStats, number] => x[1] !== null);
    if (h === null || cands.length === 0) return { hydra: h, best_baseline: null, baseline: null, ratio: null, target, met: null };
    const [b, v] = cands.reduce((best, x) => ((higherIsBetter ? x[1] > best[1] : x[1] < best[1]) ? x : best));
    const ratio = v === 0 ? (h === 0 ? 1 : Infinity) : round(h / v, 3);
    return { hydra: h, best_baseline: v, baseline: b.name, ratio, target, met: ok(ratio, h) };
  };
  return {
    p95_common: one((s) => s.latency_common_s.p95, false, '≤ 0.5× best baseline', (r) => r <= 0.5),
    throughput_tokens: one((s) => s.tokens_per_s, true, '≥ 1.3× best baseline', (r) => r >= 1.3),
    model_loads: one((s) => s.model_loads, false, '≤ 0.3× best baseline', (r) => r <= 0.3),
    misplaced: one((s) => s.misplaced_requests, false, '0, and no OOM or offloaded load on the nodes', (_r, h) => h === 0 && (hydra.oom_errors ?? 0) === 0 && (hydra.offloaded_loads ?? 0) === 0),
  };
}

/** Run-to-run spread of Hydra's p95: (max − min) / median, over the repeats. */
export function spread(values: readonly (number | null)[]): number | null {
  const v = values.filter((x): x is number => x !== null).sort((a, b) => a - b);
  if (v.length < 2) return null;
  return round((v.at(-1)! - v[0]!) / percentile(v, 0.5)!, 3);
}

const cell = (x: number | null | undefined): string => (x === null || x === undefined ? '–' : String(x));

export function table(stats: readonly RouterStats[]): string {
  const rows = stats.map((s) =>
    s.skipped
      ? `| ${s.name} | ${s.skipped} |||||||||||||`
      : `| ${s.name} | ${s.completed}/${s.requests} | ${s.failed} | ${cell(s.latency_s.p50)} / ${cell(s.latency_s.p95)} / ${cell(s.latency_s.p99)} | ${cell(s.latency_common_s.p50)} / ${cell(s.latency_common_s.p95)} / ${cell(s.latency_common_s.p99)} | ${cell(s.ttft_s.p50)} / ${cell(s.ttft_s.p95)} | ${s.tokens_per_s} | ${s.requests_per_s} | ${cell(s.model_loads)} | ${s.misplaced_requests} | ${cell(s.oom_errors)} | ${cell(s.offloaded_loads)} | ${cell(s.big_model_max_wait_s)}${s.big_model_never_started ? ` (+${s.big_model_never_started} never)` : ''} |`,
  );
  return [
    '| router | completed | failed | latency p50/p95/p99 s | common-set p50/p95/p99 s | TTFT p50/p95 s | tokens/s | req/s | loads | misplaced | OOM | offloaded | 70b longest wait s |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
  ].join('\n');
}

export function failuresText(stats: readonly RouterStats[]): string {
  return stats
    .filter((s) => s.failed > 0)
    .map((s) => `${s.name} failures: ${Object.entries(s.failed_by_cause).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${n}× ${k}`).join('; ')}`)
    .join('\n');
}
