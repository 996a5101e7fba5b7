// /v1/jobs: submit (optionally waiting for the answer), inspect, stream tokens over SSE, cancel.
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { Router, type Request, type Response } from 'express';
import { ErrorCode, HydraError, parseJobRequest, type InferResult } from '../../../libs/core/index.js';
import { buildInferJob, toCall, type InferJob } from '../../../libs/queue/index.js';
import type { ApiContext } from '../context.js';
import { badRequest, isRedisDown, route, sendError, STATUS } from '../errors.js';
import { viewFromMessage, viewJob } from '../job-view.js';
import type { Watch } from '../waiters.js';
import { cachedJobView, workflowParts } from '../workflow-context.js';
import { cacheDecision, cacheKeyOf } from '../../../libs/cache/index.js';
import { cancelJob } from '../cancel.js';
import { serveStreamAsSse } from '../sse.js';

const LOCAL_HOSTS = [os.hostname(), 'localhost', '127.0.0.1'];

export function jobsRouter(ctx: ApiContext): Router {
  const r = Router();

  const links = (id: string) => ({ id, status_url: `/v1/jobs/${id}`, stream_url: `/v1/jobs/${id}/stream` });

  /**
   * Wait until the job ends or `ms` pass: 200 with the result, the failure's status, or 202 when still running.
   * The done message usually carries the result, so the common path reads nothing back from Redis.
   */
  async function answerWhenDone(res: Response, id: string, payload: InferJob, queueName: string, watch: Watch, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    const gone = new AbortController();
    res.on('close', () => {
      if (res.writableFinished) return;
      gone.abort();
      // The client left before the answer: the job goes with it unless it was submitted with detach.
      if (!payload.detach) {
        cancelJob(ctx, id, 'the client disconnected from its wait request').catch(() => undefined);
      }
    });
    try {
      for (;;) {
        const msg = await watch.next(Math.min(1000, Math.max(1, deadline - Date.now())), gone.signal);
        if (msg?.state === 'completed' && msg.result) return void res.status(200).json(viewFromMessage(id, payload, queueName, msg, ctx.config.JOB_ATTEMPTS));
        if (msg?.state === 'cancelled') return sendError(res, new HydraError(ErrorCode.Cancelled, `job ${id} was cancelled`));
        const queue = ctx.producer.queue(queueName);
        let job: Awaited<ReturnType<typeof queue.getJob>>;
        let view: Awaited<ReturnType<typeof viewJob>> | null = null;
        try {
          job = await queue.getJob(id);
          if (job) view = await viewJob(queue, job);
        } catch (e) {
          // Redis is down: the job was accepted and is safe there, so keep waiting for its end (the done
          // subscription comes back with Redis); at the deadline answer 202 with its id rather than a 503.
          if (!isRedisDown(e as Error)) throw e;
          if (Date.now() < deadline && !gone.signal.aborted) continue;
          return void res.status(202).json({ ...links(id), state: 'unknown', note: 'the queue store (Redis) is unavailable; the job was accepted: poll status_url once it is back' });
        }
        if (!job || !view) {
          if (await ctx.redis.exists(ctx.keys.cancelFlag(id))) return sendError(res, new HydraError(ErrorCode.Cancelled, `job ${id} was cancelled`));
          return sendError(res, new HydraError(ErrorCode.NotFound, `job ${id} no longer exists`));
        }
        if (view.state === 'completed') return void res.status(200).json(view);
        if (view.state === 'failed') return void res.status(STATUS[view.error!.code as ErrorCode] ?? 502).json(view);
        if (Date.now() >= deadline || gone.signal.aborted) {
          return void res.status(202).json({ ...links(id), state: view.state, note: 'still running after the wait limit; poll status_url or read stream_url' });
        }
      }
    } finally {
      watch.close();
    }
  }

  r.post(
    '/v1/jobs',
    route(async (req: Request, res: Response) => {
      const parsed = parseJobRequest(req.body);
      if (!parsed.ok) return sendError(res, badRequest(parsed.problems));
      const body = parsed.value;
      const call = toCall(body);
      // L1 cache: a hit answers now, without a job; a miss carries the key so the worker stores the answer.
      const { cache } = workflowParts(ctx);
      const cacheKey = cacheDecision(call, body.cache).use ? cacheKeyOf(call) : undefined;
      const hit = cacheKey ? await cache.get<InferResult>(cacheKey) : null;
      if (cacheKey && hit) return void res.status(200).json(cachedJobView(call, body.priority, cacheKey, hit));
      const { plan, payload } = buildInferJob(call, body, await ctx.nodes(), LOCAL_HOSTS, Date.now());
      if (cacheKey) payload.cache_key = cacheKey;
      const id = randomUUID();
      const watch = body.wait ? ctx.waiters.watch(id) : null;
      try {
        await ctx.producer.addInference(id, payload, plan.queueInfo);
      } catch (e) {
        watch?.close();
        throw e;
      }
      // With timeout_ms the job ends by itself by then: wait a little longer than that for its final answer.
      if (!watch) return void res.status(202).json({ ...links(id), state: 'waiting', queue: plan.queue, reason: plan.reason });
      await answerWhenDone(res, id, payload, plan.queue, watch, Math.min(body.timeout_ms ? body.timeout_ms + 2000 : ctx.config.WAIT_MAX_MS, ctx.config.WAIT_MAX_MS));
    }),
  );

  r.get(
    '/v1/jobs/:id',
    route(async (req: Request, res: Response) => {
      const id = String(req.params.id);
      const queue = await ctx.producer.queueOfJob(id);
      const job = queue ? await queue.getJob(id) : undefined;
      if (!queue || !job) {
        if (await ctx.redis.exists(ctx.keys.cancelFlag(id))) return void res.json({ id, state: 'cancelled' });
        return sendError(res, new HydraError(ErrorCode.NotFound, `no job with id ${id} (unknown, or removed after JOB_RETENTION_S)`));
      }
      res.json(await viewJob(queue, job));
    }),
  );

  r.get(
    '/v1/jobs/:id/stream',
    route(async (req: Request, res: Response) => {
      const id = String(req.params.id);
      const queue = await ctx.producer.queueOfJob(id);
      if (!queue) return sendError(res, new HydraError(ErrorCode.NotFound, `no job with id ${id}`));
      const detached = ((await queue.getJob(id))?.data as InferJob | undefined)?.detach === true;
      const readers = ctx.keys.streamReaders(id);
      await ctx.redis.multi().incr(readers).expire(readers, ctx.config.JOB_RETENTION_S).exec();
      const key = ctx.keys.stream(id);
      await serveStreamAsSse(ctx, req, res, {
        key,
        blockMs: 10_000,
        defaultEvent: 'token',
        format: (event, data) => (event === 'token' ? JSON.stringify({ text: data }) : data),
        onIdle: async () => {
          // Nothing new: if the job ended and its stream expired, answer from the job itself.
          const job = await queue.getJob(id);
          if (!job) return { event: 'error', data: { code: 'not_found', message: `job ${id} no longer exists` } };
          const state = await job.getState();
          if ((state === 'completed' || state === 'failed') && !(await ctx.redis.exists(key))) {
            const view = await viewJob(queue, job);
            return state === 'completed' ? { event: 'done', data: view.result } : { event: 'error', data: view.error };
          }
          return null;
        },
        onClose: (ended) => {
          void ctx.redis.decr(readers).then((left) => {
            if (ended || detached || left > 0) return;
            // Nobody reads this job any more: cancel it unless a reader comes back (Last-Event-ID) within the grace.
            setTimeout(() => {
              void ctx.redis
                .get(readers)
                .then((n) => (Number(n ?? 0) <= 0 ? cancelJob(ctx, id, 'the client disconnected from its stream and did not come back') : undefined))
                .catch(() => undefined);
            }, ctx.config.STREAM_RECONNECT_GRACE_MS).unref();
          }, () => undefined);
        },
      });
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
