// /v1/batches: submit up to BATCH_MAX_REQUESTS job requests at once (each what POST /v1/jobs takes), follow the batch's
// counts, page through its results or download them as NDJSON, cancel it.
import { randomUUID } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { CallbackUrlSchema, ErrorCode, HydraError, parseJobRequest, zodProblems, type FieldProblem, type JobRequest } from '../../../libs/core/index.js';
import { requestIdOf } from '../access-log.js';
import { keyIdOf } from '../auth.js';
import type { ApiContext } from '../context.js';
import { badRequest, route, sendError } from '../errors.js';
import { claimIdempotency, REPLAYED_HEADER } from '../idempotency.js';
import { batchResults, batchView, cancelBatch, submitBatch } from '../services/batches.js';
import { requireCallbackAllowed } from '../webhook-allow.js';

/** Batch ids are the prefix of their items' job ids: no ':' and never all digits (BullMQ). */
const newBatchId = (): string => `batch-${randomUUID()}`;

/** Field problems listed in a 400 at most (a batch of 1,000 bad items would otherwise answer with 1,000 of them). */
const MAX_PROBLEMS = 20;

/** Results per NDJSON read from Redis. */
const NDJSON_PAGE = 500;

const PageSchema = z.object({
  offset: z.coerce.number({ error: 'must be a whole number' }).int('must be a whole number').min(0, 'must be at least 0').default(0),
  limit: z.coerce.number({ error: 'must be a whole number from 1 to 1000' }).int('must be a whole number').min(1, 'must be at least 1').max(1000, 'must be at most 1000').default(100),
});

/** Fields a batch item may not use: they need a client waiting, or a lookup of their own before the job is made. */
function itemProblems(r: JobRequest, at: string): FieldProblem[] {
  const out: FieldProblem[] = [];
  if (r.wait !== undefined) out.push({ field: `${at}.wait`, problem: 'is not allowed in a batch (follow GET /v1/batches/:id, or set callback_url)' });
  if (r.memory !== undefined) out.push({ field: `${at}.memory`, problem: 'is not supported in a batch; submit the request to POST /v1/jobs' });
  if (r.cache === 'semantic') out.push({ field: `${at}.cache`, problem: '"semantic" is not supported in a batch; submit the request to POST /v1/jobs' });
  return out;
}

/** Parse a batch body: every item with POST /v1/jobs' parser, problems named `requests[i].field`. */
function parseBatch(body: unknown, max: number): { ok: true; requests: JobRequest[]; callbackUrl: string | undefined } | { ok: false; problems: FieldProblem[] } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { ok: false, problems: [{ field: '(body)', problem: 'must be a JSON object {requests: [...], callback_url?}' }] };
  const { requests, callback_url, ...rest } = body as Record<string, unknown>;
  const problems: FieldProblem[] = Object.keys(rest).map((k) => ({ field: k, problem: 'is not a known field (a batch holds requests and callback_url)' }));
  if (!Array.isArray(requests)) return { ok: false, problems: [...problems, { field: 'requests', problem: 'is required (an array of job requests, each what POST /v1/jobs takes)' }] };
  if (requests.length === 0) problems.push({ field: 'requests', problem: 'must hold at least one request' });
  if (requests.length > max) problems.push({ field: 'requests', problem: `holds ${requests.length} requests; at most ${max} per batch (BATCH_MAX_REQUESTS)` });
  let url: string | undefined;
  if (callback_url !== undefined) {
    const u = CallbackUrlSchema.safeParse(callback_url);
    if (u.success) url = u.data;
    else problems.push(...zodProblems(u.error).map((p) => ({ field: 'callback_url', problem: p.problem })));
  }
  if (problems.length > 0) return { ok: false, problems };
  const parsed: JobRequest[] = [];
  requests.forEach((item, i) => {
    if (problems.length >= MAX_PROBLEMS) return;
    const p = parseJobRequest(item);
    if (!p.ok) problems.push(...p.problems.map((x) => ({ field: x.field === '(body)' ? `requests[${i}]` : `requests[${i}].${x.field}`, problem: x.problem })));
    else {
      problems.push(...itemProblems(p.value, `requests[${i}]`));
      parsed.push(p.value);
    }
  });
  return problems.length > 0 ? { ok: false, problems: problems.slice(0, MAX_PROBLEMS) } : { ok: true, requests: parsed, callbackUrl: url };
}

/** The callback URLs of a batch (its own and its items'), each distinct one checked once. */
async function checkCallbacks(ctx: ApiContext, callbackUrl: string | undefined, requests: readonly JobRequest[]): Promise<void> {
  const seen = new Set<string>();
  const check = async (url: string, field: string) => {
    if (seen.has(url)) return;
    await requireCallbackAllowed(url, field, ctx.config.WEBHOOK_ALLOW);
    seen.add(url);
  };
  if (callbackUrl) await check(callbackUrl, 'callback_url');
  for (const [i, r] of requests.entries()) if (r.callback_url) await check(r.callback_url, `requests[${i}].callback_url`);
}

const notFound = (id: string) => new HydraError(ErrorCode.NotFound, `no batch with id ${id} (unknown, or removed after JOB_RETENTION_S)`);

/** How long a replay waits for the first request with its Idempotency-Key to finish adding the batch. */
const ADDING_MS = 5000;

export function batchesRouter(ctx: ApiContext): Router {
  const r = Router();

  r.post(
    '/v1/batches',
    route(async (req: Request, res: Response) => {
      const parsed = parseBatch(req.body, ctx.config.BATCH_MAX_REQUESTS);
      if (!parsed.ok) return sendError(res, badRequest(parsed.problems));
      await checkCallbacks(ctx, parsed.callbackUrl, parsed.requests);
      // Idempotency-Key: a repeat answers with the batch the first request made (idempotency.ts).
      const claim = await claimIdempotency(ctx, req, 'batch', newBatchId);
      if (claim.kind === 'replay') {
        res.setHeader(REPLAYED_HEADER, 'true');
        const until = Date.now() + ADDING_MS;
        for (;;) {
          const view = await batchView(ctx, claim.id);
          if (view) return void res.status(202).json(view);
          if (Date.now() > until) {
            return sendError(res, new HydraError(ErrorCode.Conflict, `the first request with this Idempotency-Key is still adding batch ${claim.id}, or failed to; retry shortly`, { retryable: true, details: { id: claim.id, retry_after_s: 1 } }));
          }
          await new Promise((ok) => setTimeout(ok, 50));
        }
      }
      try {
        const view = await submitBatch(ctx, claim.kind === 'new' ? claim.id : newBatchId(), parsed.requests, {
          callbackUrl: parsed.callbackUrl,
          requestId: requestIdOf(req),
          keyId: keyIdOf(req, ctx.config.API_KEYS),
        });
        res.status(202).json(view);
      } catch (e) {
        // Refused before anything was added (or withdrawn): the key is free for the corrected retry.
        if (claim.kind === 'new') await claim.release();
        throw e;
      }
    }),
  );

  r.get(
    '/v1/batches/:id',
    route(async (req: Request, res: Response) => {
      const id = String(req.params.id);
      const page = PageSchema.safeParse(req.query);
      if (!page.success) return sendError(res, badRequest(zodProblems(page.error)));
      const view = await batchView(ctx, id);
      if (!view) return sendError(res, notFound(id));
      res.json({ ...view, ...(await batchResults(ctx, id, view.counts.total, page.data.offset, page.data.limit)) });
    }),
  );

  r.get(
    '/v1/batches/:id/results',
    route(async (req: Request, res: Response) => {
      const id = String(req.params.id);
      const view = await batchView(ctx, id);
      if (!view) return sendError(res, notFound(id));
      res.status(200).setHeader('content-type', 'application/x-ndjson');
      for (let offset = 0; offset < view.counts.total; offset += NDJSON_PAGE) {
        const { results } = await batchResults(ctx, id, view.counts.total, offset, NDJSON_PAGE);
        const chunk = results.map((x) => `${JSON.stringify(x)}\n`).join('');
        // Respect backpressure: a slow reader of a large batch does not make this process hold every page.
        if (!res.write(chunk)) await new Promise((ok) => res.once('drain', ok).once('close', ok));
        if (res.destroyed) return;
      }
      res.end();
    }),
  );

  r.post(
    '/v1/batches/:id/cancel',
    route(async (req: Request, res: Response) => {
      res.json(await cancelBatch(ctx, String(req.params.id)));
    }),
  );

  return r;
}
