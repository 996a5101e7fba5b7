// Recall (`memory: {recall: k, namespace?}` on POST /v1/jobs and /v1/orchestrate): the k earlier completed jobs whose
// stored prompt or answer is nearest to this request's prompt (the history's vectors, MEMORY_EMBED_MODEL) are put in
// front of it as context, and named in the job (or workflow) view as `recalled`, so a user sees what the model was
// shown. Only the caller's own API key's history (unless SEMANTIC_CACHE_SHARED), only completed answers.
import type { Request, Response } from 'express';
import { ErrorCode, HydraError, type InferenceCall, type JobRequest } from '../../libs/core/index.js';
import { MAX_TEXT_CHARS } from '../../libs/memory/index.js';
import { keyIdOf } from './auth.js';
import type { ApiContext } from './context.js';
import { embedQuery } from './services/embed-query.js';

/** `memory` of a job or orchestrate request. */
export type RecallRequest = NonNullable<JobRequest['memory']>;

/** One recalled item as the view shows it. Texts cut to RECALL_CHARS. */
export interface Recalled {
  source_job_id: string;
  score: number;
  prompt: string;
  answer: string;
}

/** Each recalled prompt and answer is cut to this many characters in the context. */
const RECALL_CHARS = 2000;
const cut = (s: string) => (s.length > RECALL_CHARS ? `${s.slice(0, RECALL_CHARS - 1)}…` : s);

export async function recallFor(ctx: ApiContext, req: Request, res: Response, text: string, r: RecallRequest): Promise<Recalled[]> {
  const model = ctx.config.MEMORY_EMBED_MODEL;
  const vectors = ctx.history?.vectors?.current;
  const history = ctx.history?.current;
  if (!ctx.history || !model || !ctx.history.vectors) {
    throw new HydraError(ErrorCode.BadRequest, 'memory.recall needs the results history and its vectors: set MEMORY_EMBED_MODEL to an embed model a node has (and MEMORY_URL not off), or leave memory out');
  }
  if (!vectors || !history) throw new HydraError(ErrorCode.Unavailable, 'the history store is not open yet; retry shortly', { retryable: true, details: { retry_after_s: 2 } });
  const vector = await embedQuery(ctx, req, res, model, text.slice(0, MAX_TEXT_CHARS));
  // Prompts and answers both point at their row: more hits than k, one item per row.
  const hits = await vectors.search({ vector, k: Math.min(100, r.recall * 4), namespace: r.namespace ?? 'history', filter: { embed_model: model } });
  const keyId = keyIdOf(req, ctx.config.API_KEYS) ?? null;
  const out: Recalled[] = [];
  const seen = new Set<string>();
  for (const hit of hits) {
    if (out.length >= r.recall) break;
    if (!hit.source || seen.has(hit.source)) continue;
    seen.add(hit.source);
    const row = await history.get(hit.source);
    if (!row || row.outcome !== 'completed' || !row.answer) continue;
    if (!ctx.config.SEMANTIC_CACHE_SHARED && row.api_key_id !== keyId) continue;
    out.push({ source_job_id: row.id, score: Math.round(hit.score * 10_000) / 10_000, prompt: cut(row.prompt), answer: cut(row.answer) });
  }
  return out;
}

/** The context block the recalled items become, or '' for none. */
export function recallContext(items: readonly Recalled[]): string {
  if (items.length === 0) return '';
  return `Relevant earlier work, recalled from memory (use it if it helps):\n${items.map((r, i) => `[${i + 1}] Q: ${r.prompt}\nA: ${r.answer}`).join('\n\n')}`;
}

/** The request with the recalled context in front: a generate prompt gets it prepended, a chat a system message first. */
export function withRecall<T extends InferenceCall | JobRequest>(call: T, items: readonly Recalled[]): T {
  const context = recallContext(items);
  if (!context) return call;
  if (call.type === 'generate') return { ...call, prompt: `${context}\n\n${call.prompt}` };
  if (call.type === 'chat') return { ...call, messages: [{ role: 'system', content: context }, ...call.messages] };
  return call;
}
