// Measured speed per node × model as pure policy: one job's sample, the EWMA step, and what dispatch and the job view read from it. No Redis.
import type { InferenceOutput, ModelPerf, NodeRecord } from '../core/index.js';
import { canonicalModel, sameModel } from './models.js';

/** Weight of a new sample in the EWMAs once a model has 1/PERF_ALPHA samples; before that they are plain means. */
export const PERF_ALPHA = 0.2;

/** What one completed inference job measured. Durations in ms. */
export interface PerfSample {
  tokens_per_s: number;
  ttft_ms: number;
  job_ms: number;
  /** Only when the job had to load the model. */
  load_ms?: number;
}

/**
 * The sample a completed job gives, or null when it decoded nothing (embeddings, an empty answer): there is no decode
 * speed to learn from it. `callMs` is the backend call's wall time, `firstTokenMs` when its first piece (text or
 * reasoning) arrived, both from the call's start; `loaded` says the job was dispatched to a node that did not have
 * the model loaded. The backend's load_duration is taken out of the first-token and job times (it is `load_ms`).
 */
export function perfSampleOf(out: InferenceOutput, m: { callMs: number; firstTokenMs?: number; loaded: boolean }): PerfSample | null {
  if (!(out.completion_tokens > 0) || !(out.eval_duration_ms > 0)) return null;
  const load = out.load_duration_ms > 0 ? out.load_duration_ms : 0;
  const first = m.firstTokenMs ?? load + out.prompt_eval_duration_ms;
  const ttft = Math.max(0, first - load);
  return {
    tokens_per_s: out.completion_tokens / (out.eval_duration_ms / 1000),
    ttft_ms: ttft,
    job_ms: Math.max(ttft, m.callMs - load),
    ...(m.loaded && load > 0 ? { load_ms: load } : {}),
  };
}

/** One EWMA step: the n-th sample (n ≥ 1) weighs max(alpha, 1/n), so the first 1/alpha samples are averaged. */
export const ewmaStep = (prev: number, sample: number, n: number, alpha = PERF_ALPHA): number => prev + Math.max(alpha, 1 / n) * (sample - prev);

/** Folds a sample into a model's figures, the same arithmetic as libs/registry/scripts/perf.lua (tested against it). */
export function foldSample(prev: ModelPerf | undefined, s: PerfSample, now: number, alpha = PERF_ALPHA): ModelPerf {
  const n = (prev?.samples ?? 0) + 1;
  const loadPrev = prev?.load_samples ?? 0;
  const loads = s.load_ms === undefined ? loadPrev : loadPrev + 1;
  const load = s.load_ms === undefined ? prev?.load_ms : ewmaStep(prev?.load_ms ?? 0, s.load_ms, loads, alpha);
  return {
    tokens_per_s: ewmaStep(prev?.tokens_per_s ?? 0, s.tokens_per_s, n, alpha),
    ttft_ms: ewmaStep(prev?.ttft_ms ?? 0, s.ttft_ms, n, alpha),
    job_ms: ewmaStep(prev?.job_ms ?? 0, s.job_ms, n, alpha),
    ...(load === undefined ? {} : { load_ms: load }),
    samples: n,
    load_samples: loads,
    updated_at: now,
  };
}

/** A node's figures for `model` (`llama3` and `llama3:latest` are one model), if measured. */
export function perfFor(view: Pick<NodeRecord, 'perf'>, model: string): ModelPerf | undefined {
  if (!view.perf) return undefined;
  const exact = view.perf[canonicalModel(model)];
  if (exact) return exact;
  const key = Object.keys(view.perf).find((k) => sameModel(k, model));
  return key === undefined ? undefined : view.perf[key];
}

/** Measured decode speed of `model` on the node (tokens/s), or undefined when it has not run there yet. */
export function expectedTokensPerS(view: Pick<NodeRecord, 'perf'>, model: string): number | undefined {
  const p = perfFor(view, model);
  return p && p.samples > 0 && p.tokens_per_s > 0 ? p.tokens_per_s : undefined;
}

/** A node as the start estimate reads it: its record, and its jobs running now (registry NodeView). */
export type PerfNode = NodeRecord & { active_jobs?: number };

/**
 * What the measured speeds say about a queue of `model` (docs/scheduling.md, "Place in line"):
 * - `perSecond`: jobs per second the serving nodes finish, Σ slots / job_ms over the live nodes that have the model
 *   and a measured job time for it (slots = the node's per-model parallel, at most its worker slots); null when none.
 * - `firstFreeMs`: how long until one of them can start another job: 0 when one has a free slot, else half its
 *   measured job time (a running job is on average half done: its real progress is not tracked), the soonest node;
 *   a model load is added for a node without the model loaded. null when nothing is measured.
 */
export function measuredLine(nodes: readonly PerfNode[], model: string): { perSecond: number | null; firstFreeMs: number | null } {
  let perSecond = 0;
  let firstFree: number | null = null;
  for (const n of nodes) {
    if (!n.healthy || n.breaker?.state === 'open' || !n.models_available.some((m) => sameModel(m.name, model))) continue;
    const p = perfFor(n, model);
    if (!p?.job_ms || p.job_ms <= 0) continue;
    const slots = Math.max(1, Math.min(n.parallel ?? 1, n.slots));
    perSecond += (slots * 1000) / p.job_ms;
    const busy = (n.active_jobs ?? 0) >= n.slots;
    const warm = n.models_loaded.some((l) => sameModel(l.name, model));
    const free = (busy ? p.job_ms / 2 : 0) + (warm ? 0 : (p.load_ms ?? 0));
    firstFree = firstFree === null ? free : Math.min(firstFree, free);
  }
  return { perSecond: perSecond > 0 ? perSecond : null, firstFreeMs: firstFree };
}
