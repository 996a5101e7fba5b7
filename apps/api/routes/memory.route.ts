// POST /v1/memory/search: the stored texts (L4 vectors of the history) nearest to a query. The query is embedded by
// the cluster with MEMORY_EMBED_MODEL (an embed job at high priority, through the job service), then searched exactly.
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { ErrorCode, HydraError, parseJobRequest, zodProblems } from '../../../libs/core/index.js';
import type { VectorStore } from '../../../libs/memory/index.js';
import { requestIdOf } from '../access-log.js';
import { keyIdOf } from '../auth.js';
import { clientGone } from '../client-gone.js';
import type { ApiContext } from '../context.js';
import { badRequest, route } from '../errors.js';
import { cancelOnDisconnect, submitJob, waitForEnd, waitLimitMs } from '../services/jobs.js';

/** Priority of a search's embed job: high, a person waits for it (the history's own embed jobs run at 1). */
const SEARCH_PRIORITY = 9;

const SearchSchema = z
  .object({
    query: z.string({ error: 'is required (the text to search for)' }).trim().min(1, 'must not be empty').max(8192, 'must be at most 8192 characters'),
    k: z.number({ error: 'must be a whole number from 1 to 100' }).int('must be a whole number from 1 to 100').min(1, 'must be at least 1').max(100, 'must be at most 100').default(5),
    namespace: z.string().min(1, 'must not be empty').max(200).optional(),
    filter: z
      .object({
        /** The model of the job whose text it is. */
        model: z.string().min(1, 'must not be empty').max(200).optional(),
        kind: z.enum(['prompt', 'answer'], { error: 'must be prompt or answer' }).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

/** The vector store, or why there is none (vectors off: 404; not open yet: 503, retryable). */
function vectorsOf(ctx: ApiContext): { store: VectorStore; model: string } {
  const model = ctx.config.MEMORY_EMBED_MODEL;
  if (!ctx.history) throw new HydraError(ErrorCode.NotFound, 'semantic search is off: the results history is off (MEMORY_URL=off); unset MEMORY_URL (or set postgres://...) and set MEMORY_EMBED_MODEL to an embed model a node has');
  if (!model || !ctx.history.vectors) throw new HydraError(ErrorCode.NotFound, 'semantic search is off: MEMORY_EMBED_MODEL is not set; set it to an embed model a node has (e.g. nomic-embed-text) and restart the API');
  const store = ctx.history.vectors.current;
  if (!store) {
    const why = ctx.history.vectors.status().last_error ?? 'still opening';
    throw new HydraError(ErrorCode.Unavailable, `the vector store (MEMORY_URL) is not open yet: ${why}; retry shortly`, { retryable: true, details: { retry_after_s: 2 } });
  }
  return { store, model };
}

/** The query's vector: an embed job for `model` at high priority (an L1 cache hit when the same query was embedded). */
async function embedQuery(ctx: ApiContext, req: Request, res: Response, model: string, query: string): Promise<number[]> {
  const parsed = parseJobRequest({ type: 'embed', model, input: [query], priority: SEARCH_PRIORITY });
  if (!parsed.ok) throw badRequest(parsed.problems);
  const out = await submitJob(ctx, parsed.value, { watch: true, requestId: requestIdOf(req), keyId: keyIdOf(req, ctx.config.API_KEYS) });
  let vector: number[] | undefined;
  if (out.kind === 'cached') vector = out.view.result.embeddings?.[0];
  else {
    const { job } = out;
    const gone = clientGone(res, () => cancelOnDisconnect(ctx, job.id, job.payload, 'the client disconnected from its search'));
    const end = await waitForEnd(ctx, { ...job, watch: job.watch! }, waitLimitMs(ctx, undefined), gone);
    if (end.kind === 'failed' || end.kind === 'cancelled' || end.kind === 'gone') throw end.error;
    if (end.kind === 'running') throw new HydraError(ErrorCode.Timeout, `the query's embed job ${job.id} (${model}) did not end within the wait limit (WAIT_MAX_MS); retry`, { retryable: true });
    if (end.kind === 'unknown') throw new HydraError(ErrorCode.Unavailable, 'the queue store (Redis) became unavailable while the query was embedded; retry shortly', { retryable: true, details: { retry_after_s: 2 } });
    vector = end.view.result?.embeddings?.[0];
  }
  if (!vector?.length) throw new HydraError(ErrorCode.BackendError, `the embed model ${model} returned no vector for the query`, { retryable: true });
  return vector;
}

export function memoryRouter(ctx: ApiContext): Router {
  const r = Router();
  r.post(
    '/v1/memory/search',
    route(async (req: Request, res: Response) => {
      const parsed = SearchSchema.safeParse(req.body);
      if (!parsed.success) throw badRequest(zodProblems(parsed.error));
      const q = parsed.data;
      const { store, model } = vectorsOf(ctx);
      const vector = await embedQuery(ctx, req, res, model, q.query);
      let hits;
      try {
        hits = await store.search({ vector, k: q.k, namespace: q.namespace, filter: { ...q.filter, embed_model: model } });
      } catch (e) {
        throw new HydraError(ErrorCode.Unavailable, `the vector store (MEMORY_URL) did not answer: ${(e as Error).message}; retry shortly`, { retryable: true, details: { retry_after_s: 2 } });
      }
      res.json({
        model,
        items: hits.map((h) => ({ id: h.id, score: h.score, text: h.text, namespace: h.namespace, kind: h.kind, source: h.source, model: h.model, created_at: h.created_at })),
      });
    }),
  );
  return r;
}
