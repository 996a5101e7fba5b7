// A text's vector for a request that waits for it (POST /v1/memory/search, cache: "semantic"): an embed job for
// MEMORY_EMBED_MODEL at high priority through the job service (an L1 cache hit when the same text was embedded).
import type { Request, Response } from 'express';
import { ErrorCode, HydraError, parseJobRequest } from '../../../libs/core/index.js';
import { requestIdOf } from '../access-log.js';
import { keyIdOf } from '../auth.js';
import { clientGone } from '../client-gone.js';
import type { ApiContext } from '../context.js';
import { badRequest } from '../errors.js';
import { cancelOnDisconnect, submitJob, waitForEnd, waitLimitMs } from './jobs.js';

/** Priority of these embed jobs: high, a person waits for them (the history's own embed jobs run at 1). */
export const QUERY_EMBED_PRIORITY = 9;

/** The query's vector: an embed job for `model` at high priority (an L1 cache hit when the same query was embedded). */
export async function embedQuery(ctx: ApiContext, req: Request, res: Response, model: string, query: string): Promise<number[]> {
  const parsed = parseJobRequest({ type: 'embed', model, input: [query], priority: QUERY_EMBED_PRIORITY });
  if (!parsed.ok) throw badRequest(parsed.problems);
  const out = await submitJob(ctx, parsed.value, { watch: true, requestId: requestIdOf(req), keyId: keyIdOf(req, ctx.config.API_KEYS) });
  let vector: number[] | undefined;
  if (out.kind === 'cached') vector = out.view.result.embeddings?.[0];
  else {
    const { job } = out;
    const gone = clientGone(res, () => cancelOnDisconnect(ctx, job.id, job.payload, 'the client disconnected while its text was embedded'));
    const end = await waitForEnd(ctx, { ...job, watch: job.watch! }, waitLimitMs(ctx, undefined), gone);
    if (end.kind === 'failed' || end.kind === 'cancelled' || end.kind === 'gone') throw end.error;
    if (end.kind === 'running') throw new HydraError(ErrorCode.Timeout, `the query's embed job ${job.id} (${model}) did not end within the wait limit (WAIT_MAX_MS); retry`, { retryable: true });
    if (end.kind === 'unknown') throw new HydraError(ErrorCode.Unavailable, 'the queue store (Redis) became unavailable while the query was embedded; retry shortly', { retryable: true, details: { retry_after_s: 2 } });
    vector = end.view.result?.embeddings?.[0];
  }
  if (!vector?.length) throw new HydraError(ErrorCode.BackendError, `the embed model ${model} returned no vector for the query`, { retryable: true });
  return vector;
}

