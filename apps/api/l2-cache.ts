// The L2 answer of an exact repeat: a cacheable request (deterministic, or cache: true) whose L1 entry aged out of
// Redis, or never reached it, is answered from the results history when a completed row of the same model, type,
// prompt and request (options, format, think, system) finished within CACHE_TTL_S: `"cached": true` with
// `cache.tier: "L2"`, no job. Not copied back into Redis (that would stretch the entry past its TTL). Like L1, not
// per API key; generate and chat only (an embedding's vectors are not kept in the history).
import type { CacheEntry } from '../../libs/cache/index.js';
import type { InferenceCall, InferResult } from '../../libs/core/index.js';
import { MAX_TEXT_CHARS, promptText, requestOf, type HistoryRow } from '../../libs/memory/index.js';
import type { ApiContext } from './context.js';
import { canonicalJson } from './idempotency.js';

/** A cache entry built from the newest fitting history row, or null. A store that fails is a miss, never an error. */
export async function l2Lookup(ctx: ApiContext, call: InferenceCall): Promise<CacheEntry<InferResult> | null> {
  const store = ctx.history?.current;
  if (!store || (call.type !== 'generate' && call.type !== 'chat')) return null;
  const prompt = promptText(call);
  if (prompt.length >= MAX_TEXT_CHARS) return null; // kept cut in the history: cannot be told apart
  let rows;
  try {
    rows = await store.findAnswers({ model: call.model, type: call.type, prompt, since: Date.now() - ctx.config.CACHE_TTL_S * 1000 });
  } catch {
    return null;
  }
  const want = canonicalJson(requestOf(call));
  const row = rows.find((r) => r.answer !== null && r.answer.length < MAX_TEXT_CHARS && canonicalJson(r.request) === want);
  return row ? entryOfRow(ctx, call, row) : null;
}

/** A stored answer as the cache entry (and so the job view) of `call`: the L2 answer, and a semantic hit's. */
export async function entryOfRow(ctx: ApiContext, call: InferenceCall, row: HistoryRow): Promise<CacheEntry<InferResult>> {
  const answer = row.answer ?? '';
  const value: InferResult = {
    model: call.model,
    ...(call.type === 'chat' ? { message: { role: 'assistant' as const, content: answer } } : { response: answer }),
    done_reason: 'stop',
    prompt_tokens: row.prompt_tokens ?? 0,
    completion_tokens: row.completion_tokens ?? 0,
    total_duration_ms: row.total_ms ?? 0,
    load_duration_ms: row.load_ms ?? 0,
    prompt_eval_duration_ms: row.prompt_eval_ms ?? 0,
    eval_duration_ms: row.eval_ms ?? 0,
    node_id: row.node ?? '',
    node_url: '',
    // Whether that node is simulated: as the registry says now (the history row does not keep it).
    simulated: (await ctx.nodes().catch(() => [])).some((n) => n.id === row.node && n.simulated),
    routing_decision: (row.routing ?? {}) as InferResult['routing_decision'],
  };
  return { value, stored_at: row.finished_at, source_job_id: row.id };
}
