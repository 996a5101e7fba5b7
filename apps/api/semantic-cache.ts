// cache: "semantic" on POST /v1/jobs: after an exact (L1) miss, the request's prompt is embedded (MEMORY_EMBED_MODEL,
// the model whose vectors the history's prompts have) and the nearest stored prompts of the same model are looked
// at; the first whose history row is a completed deterministic answer to a request with the same options (and, unless
// SEMANTIC_CACHE_SHARED, from the same API key) within the similarity threshold answers it, without a GPU. Never for a
// sampled request, tools or images: those run as usual.
import type { Request, Response } from 'express';
import { isDeterministic } from '../../libs/cache/index.js';
import { ErrorCode, HydraError, type InferenceCall, type JobRequest } from '../../libs/core/index.js';
import { MAX_TEXT_CHARS, promptText, requestOf, type HistoryRow } from '../../libs/memory/index.js';
import { sameModel } from '../../libs/scheduling/index.js';
import { keyIdOf } from './auth.js';
import { canonicalJson } from './idempotency.js';
import type { ApiContext } from './context.js';
import { embedQuery } from './services/embed-query.js';
import { cachedJobView } from './job-view.js';
import { entryOfRow } from './l2-cache.js';

/** Stored prompts looked at per lookup (the nearest first). */
const CANDIDATES = 5;

export interface SemanticMatch {
  row: HistoryRow;
  score: number;
  threshold: number;
}

/** Whether the submitting key (its id; undefined without API_KEYS) has cache: "semantic" by default (SEMANTIC_CACHE_KEYS). */
export function semanticByKey(ctx: ApiContext, keyId: string | undefined): boolean {
  const keys = ctx.config.SEMANTIC_CACHE_KEYS;
  return keys.includes('*') || (keyId !== undefined && keys.includes(keyId));
}

/** Why a request gets no semantic lookup, or null when it may have one. */
export function semanticIneligible(call: InferenceCall): string | null {
  if (call.type !== 'generate' && call.type !== 'chat') return 'only generate and chat requests';
  if (!isDeterministic(call)) return 'the request samples (set options.temperature to 0 or a seed)';
  if (call.type === 'generate' && call.images?.length) return 'the request has images';
  if (call.type === 'chat' && (call.tools?.length || call.messages.some((m) => m.images?.length))) return 'the request has tools or images';
  return null;
}

/**
 * The stored answer that serves this request, or null (a miss: the job runs). Throws bad_request when semantic caching
 * cannot work here (no history or no MEMORY_EMBED_MODEL), so a caller that asked for it learns why.
 */
export async function semanticLookup(ctx: ApiContext, req: Request, res: Response, call: InferenceCall, request: JobRequest, opts: { quiet?: boolean } = {}): Promise<SemanticMatch | null> {
  const model = ctx.config.MEMORY_EMBED_MODEL;
  const vectors = ctx.history?.vectors?.current;
  const history = ctx.history?.current;
  if (!ctx.history || !model || !ctx.history.vectors) {
    if (opts.quiet) return null; // on by SEMANTIC_CACHE_KEYS, not asked for: no vectors, no lookup
    throw new HydraError(ErrorCode.BadRequest, 'cache: "semantic" needs the results history and its vectors: set MEMORY_EMBED_MODEL to an embed model a node has (and MEMORY_URL not off), or use cache: true / false');
  }
  if (semanticIneligible(call) || !vectors || !history) return null;
  const threshold = request.semantic_threshold ?? ctx.config.SEMANTIC_CACHE_THRESHOLD;
  const text = promptText(call);
  const vector = await embedQuery(ctx, req, res, model, text);
  const hits = await vectors.search({ vector, k: CANDIDATES, namespace: 'history', filter: { model: call.model, kind: 'prompt', embed_model: model } });
  const want = canonicalJson(requestOf(call));
  const keyId = keyIdOf(req, ctx.config.API_KEYS) ?? null;
  for (const hit of hits) {
    if (hit.score < threshold) break;
    if (!hit.source) continue;
    const row = await history.get(hit.source);
    if (!row || row.outcome !== 'completed' || row.answer === null || row.answer.length >= MAX_TEXT_CHARS) continue;
    if (row.type !== call.type || !row.model || !sameModel(row.model, call.model)) continue;
    if (canonicalJson(row.request) !== want) continue;
    if (!ctx.config.SEMANTIC_CACHE_SHARED && row.api_key_id !== keyId) continue;
    return { row, score: hit.score, threshold };
  }
  return null;
}

/** The job view of a semantic hit: the cached job view of the stored answer, `cached: "semantic"`, and what matched. */
export async function semanticJobView(ctx: ApiContext, call: InferenceCall, priority: number, m: SemanticMatch) {
  const entry = await entryOfRow(ctx, call, m.row);
  const view = cachedJobView(call, priority, '', entry);
  return {
    ...view,
    cached: 'semantic' as const,
    result: { ...view.result, cached: 'semantic' as const },
    cache: { hit: true, kind: 'semantic', source_job_id: m.row.id, score: Math.round(m.score * 10_000) / 10_000, threshold: m.threshold, matched_prompt: m.row.prompt },
  };
}
