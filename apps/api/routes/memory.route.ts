// POST /v1/memory/search: the stored texts (L4 vectors of the history) nearest to a query. The query is embedded by
// the cluster with MEMORY_EMBED_MODEL (an embed job at high priority, through the job service), then searched exactly.
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { ErrorCode, HydraError, zodProblems } from '../../../libs/core/index.js';
import type { VectorStore } from '../../../libs/memory/index.js';
import type { ApiContext } from '../context.js';
import { badRequest, route } from '../errors.js';
import { embedQuery } from '../services/embed-query.js';

export const SearchSchema = z
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
