// /v1/workflows: submit a DAG of steps (optionally waiting for the end), inspect it, stream its step events, cancel it.
import { Router, type Request, type Response } from 'express';
import { ErrorCode, HydraError } from '../../../libs/core/index.js';
import { FINAL_STATUSES, newWorkflowId, parseWorkflowRequest, stepDefOf, type StartInput, type WorkflowView } from '../../../libs/workflows/index.js';
import type { ApiContext } from '../context.js';
import { badRequest, route, sendError, STATUS } from '../errors.js';
import { serveStreamAsSse } from '../sse.js';
import { workflowParts } from '../workflow-context.js';

const links = (id: string) => ({ id, status_url: `/v1/workflows/${id}`, stream_url: `/v1/workflows/${id}/stream` });

/** HTTP status of a finished workflow's view: 200, the failing step's error status, or 409 when cancelled. */
function statusOf(view: WorkflowView): number {
  if (view.state === 'completed') return 200;
  if (view.state === 'cancelled') return STATUS.cancelled;
  return STATUS[view.error?.code as ErrorCode] ?? 502;
}

/**
 * Start a workflow and answer: 202 with links, or with `wait` the final view (200, or the failure's status) once it
 * ends, or 202 when `waitMs` passed first. The watch starts before the flow is added so the end cannot be missed.
 */
export async function startAndRespond(ctx: ApiContext, res: Response, input: StartInput, wait: boolean | undefined, timeoutMs: number | undefined): Promise<void> {
  const { coordinator } = workflowParts(ctx);
  coordinator.checkRoutable(input.steps, await ctx.nodes());
  if (!wait) {
    const { id } = await coordinator.start(input);
    return void res.status(202).json({ ...links(id), state: 'running', kind: input.kind, steps: input.steps.length });
  }
  const started = { id: newWorkflowId() };
  const watch = ctx.waiters.watch(started.id);
  try {
    await coordinator.start({ ...input, id: started.id });
  } catch (e) {
    watch.close();
    throw e;
  }
  const deadline = Date.now() + Math.min(timeoutMs ?? ctx.config.WAIT_MAX_MS, ctx.config.WAIT_MAX_MS);
  const gone = new AbortController();
  res.on('close', () => gone.abort());
  try {
    for (;;) {
      await watch.next(Math.min(1000, Math.max(1, deadline - Date.now())), gone.signal);
      const st = await coordinator.store.status(started.id);
      if (!st) return sendError(res, new HydraError(ErrorCode.NotFound, `workflow ${started.id} no longer exists`));
      if (FINAL_STATUSES.includes(st.status)) {
        const view = (await coordinator.view(started.id))!;
        return void res.status(statusOf(view)).json(view);
      }
      if (Date.now() >= deadline || gone.signal.aborted) {
        const view = await coordinator.view(started.id);
        return void res.status(202).json({ ...links(started.id), state: st.status, progress: view?.progress, note: 'still running after the wait limit; poll status_url or read stream_url' });
      }
    }
  } finally {
    watch.close();
  }
}

export function workflowsRouter(ctx: ApiContext): Router {
  const r = Router();

  r.post(
    '/v1/workflows',
    route(async (req: Request, res: Response) => {
      const parsed = parseWorkflowRequest(req.body);
      if (!parsed.ok) return sendError(res, badRequest(parsed.problems));
      const w = parsed.value;
      await startAndRespond(ctx, res, { kind: 'dag', name: w.name, priority: w.priority, cache: w.cache, input: w.input, steps: w.steps.map(stepDefOf) }, w.wait, w.timeout_ms);
    }),
  );

  r.get(
    '/v1/workflows/:id',
    route(async (req: Request, res: Response) => {
      const id = String(req.params.id);
      const view = await workflowParts(ctx).coordinator.view(id);
      if (!view) return sendError(res, new HydraError(ErrorCode.NotFound, `no workflow with id ${id} (unknown, or removed after JOB_RETENTION_S)`));
      res.json(view);
    }),
  );

  r.get(
    '/v1/workflows/:id/stream',
    route(async (req: Request, res: Response) => {
      const id = String(req.params.id);
      const { coordinator } = workflowParts(ctx);
      if (!(await coordinator.store.exists(id))) return sendError(res, new HydraError(ErrorCode.NotFound, `no workflow with id ${id}`));
      await serveStreamAsSse(ctx, req, res, {
        key: ctx.keys.stream(id),
        blockMs: 5000,
        defaultEvent: 'step',
        onIdle: async () => {
          // A finished workflow whose terminal entry is missing (expired, or its announcer died) answers from its state.
          const st = await coordinator.store.status(id);
          if (st && !FINAL_STATUSES.includes(st.status)) return null;
          const view = st ? await coordinator.view(id) : null;
          if (!view) return { event: 'error', data: { code: 'not_found', message: `workflow ${id} no longer exists` } };
          return { event: view.state === 'completed' ? 'done' : 'error', data: { id, state: view.state, ...(view.result !== undefined ? { result: view.result } : { error: view.error }) } };
        },
      });
    }),
  );

  r.delete(
    '/v1/workflows/:id',
    route(async (req: Request, res: Response) => {
      const id = String(req.params.id);
      const { status } = await workflowParts(ctx).coordinator.cancel(id);
      res.status(202).json({ ...links(id), state: status, note: 'steps not started were removed; running steps are being aborted' });
    }),
  );

  return r;
}
