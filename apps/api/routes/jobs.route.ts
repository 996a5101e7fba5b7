// /v1/jobs: submit (optionally waiting for the answer), inspect, stream tokens over SSE, cancel. Parses, calls the job
// service, frames the answer in Hydra's own JSON.
import { randomUUID } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import { ErrorCode, HydraError, parseJobRequest, type InferenceCall } from '../../../libs/core/index.js';
import type { InferJob } from '../../../libs/queue/index.js';
import { requestIdOf } from '../access-log.js';
import { keyIdOf } from '../auth.js';
import type { ApiContext } from '../context.js';
import { badRequest, route, sendError, STATUS } from '../errors.js';
import { cancelJob, cancelOnDisconnect, findJob, submitJob, waitForEnd, waitLimitMs } from '../services/jobs.js';
import { readJobStream, resumeFrom } from '../services/stream-reader.js';
import { listJobs, parseJobListQuery } from '../services/job-list.js';
import { sendSse } from '../sse.js';
import { clientGone } from '../client-gone.js';
import type { Drain } from '../drain.js';
import { claimIdempotency } from '../idempotency.js';
import { replayJob } from '../replay.js';
import { semanticByKey, semanticJobView, semanticLookup } from '../semantic-cache.js';
import { recallFor, withRecall } from '../recall.js';
import { promptText } from '../../../libs/memory/index.js';
import { toCall } from '../../../libs/queue/index.js';
import { withDeliveries } from '../job-view.js';
import { requireCallbackAllowed } from '../webhook-allow.js';

const links = (id: string) => ({ id, status_url: `/v1/jobs/${id}`, stream_url: `/v1/jobs/${id}/stream` });

/** `drain`: this replica's shutdown, which ends waits at its deadline and hands streams over to another replica. */
export function jobsRouter(ctx: ApiContext, drain: Drain): Router {
  const r = Router();

  r.post(
    '/v1/jobs',
    route(async (req: Request, res: Response) => {
      const parsed = parseJobRequest(req.body);
      if (!parsed.ok) return sendError(res, badRequest(parsed.problems));
      let body = parsed.value;
      // Webhook: a callback to a loopback, private or metadata address is refused here (webhook-allow.ts).
      if (body.callback_url) await requireCallbackAllowed(body.callback_url, 'callback_url', ctx.config.WEBHOOK_ALLOW);
      // Idempotency-Key: a repeat of an earlier request answers with that request's job (idempotency.ts, replay.ts).
      const claim = await claimIdempotency(ctx, req, 'job', randomUUID);
      if (claim.kind === 'replay') return replayJob(ctx, res, claim.id, claim.at, body.wait === true, waitLimitMs(ctx, body.timeout_ms), AbortSignal.any([clientGone(res), drain.deadline]));
      let out: Awaited<ReturnType<typeof submitJob>>;
      try {
        // cache: "semantic": a close enough stored answer (same model and options) answers after an exact miss.
        // Also for an API key in SEMANTIC_CACHE_KEYS when the request sets no cache (then quietly off without vectors).
        const asked = body.cache === 'semantic';
        const byKey = body.cache === undefined && semanticByKey(ctx, keyIdOf(req, ctx.config.API_KEYS));
        const semantic = asked || byKey ? async (call: InferenceCall) => {
          const m = await semanticLookup(ctx, req, res, call, body, { quiet: !asked });
          return m ? semanticJobView(ctx, call, body.priority, m) : null;
        } : undefined;
        // memory.recall: the nearest earlier answers go in front of the prompt, and into the job's view.
        const recalled = body.memory ? await recallFor(ctx, req, res, promptText(toCall(body)), body.memory) : undefined;
        if (recalled) body = withRecall(body, recalled);
        out = await submitJob(ctx, body, { watch: body.wait === true, requestId: requestIdOf(req), keyId: keyIdOf(req, ctx.config.API_KEYS), ...(claim.kind === 'new' ? { id: claim.id } : {}), semantic, ...(recalled ? { recalled } : {}) });
      } catch (e) {
        // Refused before anything was added (or withdrawn): the key is free for the corrected retry.
        if (claim.kind === 'new') await claim.release();
        throw e;
      }
      if (out.kind === 'cached' || out.kind === 'semantic') {
        if (claim.kind === 'new') await claim.release(); // no job was made: a repeat is answered from the cache again
        return void res.status(200).json(out.view);
      }
      const { job } = out;
      if (!job.watch) return void res.status(202).json({ ...links(job.id), state: 'waiting', queue: job.plan.queue, reason: job.plan.reason });
      // A client that sent an Idempotency-Key may come back for the answer: its disconnect does not cancel the job.
      const gone = clientGone(res, claim.kind === 'new' ? undefined : () => cancelOnDisconnect(ctx, job.id, job.payload, 'the client disconnected from its wait request'));
      // A replica at the end of its drain answers what it knows (202 with the links) rather than cut the connection.
      const end = await waitForEnd(ctx, { ...job, watch: job.watch }, waitLimitMs(ctx, body.timeout_ms), AbortSignal.any([gone, drain.deadline]));
      switch (end.kind) {
        case 'completed':
          return void res.status(200).json(end.view);
        case 'failed':
          return void res.status(STATUS[end.error.code] ?? 502).json(end.view);
        case 'cancelled':
        case 'gone':
          return sendError(res, end.error);
        case 'running':
          return void res.status(202).json({
            ...links(job.id),
            state: end.state,
            note: drain.deadline.aborted
              ? 'this API replica shut down before the job ended (SHUTDOWN_GRACE_MS); the job goes on: poll status_url or read stream_url'
              : 'still running after the wait limit; poll status_url or read stream_url',
          });
        case 'unknown':
          return void res.status(202).json({ ...links(job.id), state: 'unknown', note: 'the queue store (Redis) is unavailable; the job was accepted: poll status_url once it is back' });
      }
    }),
  );

  // Recent jobs, newest first (services/job-list.ts): ?limit=1..200&state=&model=
  r.get(
    '/v1/jobs',
    route(async (req: Request, res: Response) => {
      res.json({ jobs: await listJobs(ctx, parseJobListQuery(req.query)) });
    }),
  );

  r.get(
    '/v1/jobs/:id',
    route(async (req: Request, res: Response) => {
      const id = String(req.params.id);
      const found = await findJob(ctx, id);
      if (found.kind === 'found') return void res.json(await withDeliveries(ctx.redis, ctx.keys, found.view));
      if (found.kind === 'cancelled') return void res.json({ id, state: 'cancelled' });
      sendError(res, new HydraError(ErrorCode.NotFound, `no job with id ${id} (unknown, or removed after JOB_RETENTION_S)`));
    }),
  );

  r.get(
    '/v1/jobs/:id/stream',
    route(async (req: Request, res: Response) => {
      const id = String(req.params.id);
      // A job removed by a cancel before it ran still has its stream (ending in the cancelled error).
      const found = await ctx.lifecycle.find(id);
      if (!found) return sendError(res, new HydraError(ErrorCode.NotFound, `no job with id ${id}`));
      const detach = (found.job?.data as InferJob | undefined)?.detach === true;
      const reader = await readJobStream(ctx, id, resumeFrom(req.header('last-event-id') ?? req.query.last_event_id), detach);
      await sendSse(res, reader, { format: (event, data) => (event === 'token' || event === 'thinking' ? JSON.stringify({ text: data }) : data), handoff: drain.handoff });
    }),
  );

  r.delete(
    '/v1/jobs/:id',
    route(async (req: Request, res: Response) => {
      const id = String(req.params.id);
      const out = await cancelJob(ctx, id, 'DELETE /v1/jobs/:id');
      if (out.state === 'cancelled') return void res.json({ id, state: 'cancelled' });
      res.status(202).json({ id, state: 'cancelling', note: 'the node running it is aborting the request' });
    }),
  );

  return r;
}
