// Latency summaries over recent activity (pure): p50/p95 of total time and time to first token, per model.
import type { ActivityEntry } from './entry.js';

/** Nearest-rank percentile (`p` in 0-100) of ascending `sorted`; null when empty. Always an observed value. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((Math.min(100, Math.max(0, p)) / 100) * sorted.length);
  return sorted[Math.max(0, rank - 1)]!;
}

export interface Quantiles {
  p50: number;
  p95: number;
}

export interface ModelLatency {
  model: string;
  /** Jobs that ended in the window, completed or failed. */
  jobs: number;
  failed: number;
  /** Over completed jobs; null when none completed. */
  total_ms: Quantiles | null;
  /** Over completed jobs whose time to first token is known; null when none. */
  ttft_ms: Quantiles | null;
}

export interface LatencySummary {
  /** The window asked for, ms. */
  window_ms: number;
  /**
   * The span the samples cover, ms: less than the window when the capped log holds fewer minutes than that (a busy
   * cluster), or when nothing older happened.
   */
  covered_ms: number;
  /** True when the log was full and its oldest entry is inside the window: older jobs of the window are not counted. */
  truncated: boolean;
  /** Busiest model first. */
  models: ModelLatency[];
}

function quantiles(values: number[]): Quantiles | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50)!, p95: percentile(sorted, 95)! };
}

/**
 * Per-model latency over the entries that ended in (now - windowMs, now]. `entries` is the log newest first, as read;
 * `full` says whether it holds as many entries as its cap (then its oldest entry bounds what can be seen).
 */
export function summarizeLatency(entries: readonly ActivityEntry[], now: number, windowMs: number, full = false): LatencySummary {
  const from = now - windowMs;
  const inWindow = entries.filter((e) => e.at > from && e.at <= now);
  const byModel = new Map<string, ActivityEntry[]>();
  for (const e of inWindow) byModel.set(e.model, [...(byModel.get(e.model) ?? []), e]);
  const models: ModelLatency[] = [...byModel].map(([model, list]) => {
    const done = list.filter((e) => e.outcome === 'completed');
    return {
      model,
      jobs: list.length,
      failed: list.length - done.length,
      total_ms: quantiles(done.map((e) => e.total_ms)),
      ttft_ms: quantiles(done.flatMap((e) => (e.ttft_ms === undefined ? [] : [e.ttft_ms]))),
    };
  });
  models.sort((a, b) => b.jobs - a.jobs || a.model.localeCompare(b.model));
  const oldest = inWindow.reduce((m, e) => Math.min(m, e.at), now);
  const oldestOfLog = entries.at(-1);
  return {
    window_ms: windowMs,
    covered_ms: now - oldest,
    truncated: full && oldestOfLog !== undefined && oldestOfLog.at > from,
    models,
  };
}
