// The answer to a request that repeats an earlier one's Idempotency-Key (idempotency.ts): the original job or
// workflow, in the shape the original request would have been answered, marked Idempotent-Replayed: with `wait`,
// its end (or, past the wait limit, its links); without, its links and current state.
import type { Response } from 'express';
import { ErrorCode, HydraError } from '../../libs/core/index.js';
import { FINAL_STATUSES, type WorkflowView } from '../../libs/workflows/index.js';
import type { ApiContext } from './context.js';
import { sendError, STATUS } from './errors.js';
import { REPLAYED_HEADER } from './idempotency.js';
import { findJob } from './services/jobs.js';

const jobLinks = (id: string) => ({ id, status_url: `/v1/jobs/${id}`, stream_url: `/v1/jobs/${id}/stream` });
const workflowLinks = (id: string) => ({ id, status_url: `/v1/workflows/${id}`, stream_url: `/v1/workflows/${id}/stream` });

/** How long a replay waits for the original request to finish adding its job (it claimed the key just before). */
const ADDING_MS = 5000;

const stillAdding = (what: string, id: string) =>
  new HydraError(ErrorCode.Conflict, `the first request with this Idempotency-Key is still adding ${what} ${id}, or failed to; retry shortly`, { retryable: true, details: { id, retry_after_s: 1 } });

/** `claimedAt`: when the first request claimed the key; a job missing long after that was removed, not being added. */
export async function replayJob(ctx: ApiContext, res: Response, id: string, claimedAt: number, wait: boolean, waitMs: number, signal: AbortSignal): Promise<void> {
  res.setHeader(REPLAYED_HEADER, 'true');
  const start = Date.now();
  const deadline = start + waitMs;
  const watch = wait ? ctx.waiters.watch(id) : null;
  try {
    for (;;) {
      const found = await findJob(ctx, id);
      if (found.kind === 'cancelled') return sendError(res, new HydraError(ErrorCode.Cancelled, `job ${id} was cancelled`));
      if (found.kind === 'unknown') {
        if (Date.now() - claimedAt > 30_000) return sendError(res, new HydraError(ErrorCode.NotFound, `the job this Idempotency-Key created (${id}) is no longer kept (JOB_RETENTION_S, JOB_RETENTION_COUNT)`));
        if (Date.now() - start > ADDING_MS) return sendError(res, stillAdding('job', id));
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      const v = found.view;
      if (!wait) return void res.status(202).json({ ...jobLinks(id), state: v.state, queue: v.queue });
      if (v.state === 'completed') return void res.status(200).json(v);
      if (v.state === 'failed') return void res.status(STATUS[(v.error?.code ?? ErrorCode.Internal) as ErrorCode] ?? 502).json(v);
      if (Date.now() >= deadline || signal.aborted) return void res.status(202).json({ ...jobLinks(id), state: v.state, note: 'still running after the wait limit; poll status_url or read stream_url' });
      await watch!.next(Math.min(1000, Math.max(1, deadline - Date.now())), signal);
    }
  } finally {
    watch?.close();
  }
}

export async function replayWorkflow(ctx: ApiContext, res: Response, id: string, wait: boolean, waitMs: number, signal: AbortSignal, statusOf: (v: WorkflowView) => number): Promise<void> {
  res.setHeader(REPLAYED_HEADER, 'true');
  const start = Date.now();
  const deadline = start + waitMs;
  const watch = wait ? ctx.waiters.watch(id) : null;
  try {
    for (;;) {
      const st = await ctx.coordinator.store.status(id);
      if (!st) {
        if (Date.now() - start > ADDING_MS) return sendError(res, stillAdding('workflow', id));
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      const final = FINAL_STATUSES.includes(st.status);
      if (!wait) return void res.status(202).json({ ...workflowLinks(id), state: st.status });
      const view = final ? await ctx.coordinator.view(id) : null;
      if (view) return void res.status(statusOf(view)).json(view);
      if (Date.now() >= deadline || signal.aborted) return void res.status(202).json({ ...workflowLinks(id), state: st.status, note: 'still running after the wait limit; poll status_url or read stream_url' });
      await watch!.next(Math.min(1000, Math.max(1, deadline - Date.now())), signal);
    }
  } finally {
    watch?.close();
  }
}
