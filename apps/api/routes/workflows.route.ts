// /v1/workflows: submit a DAG of steps (optionally waiting for the end), inspect it, stream its step events, cancel it.
import { Router, type Request, type Response } from 'express';
import { ErrorCode, HydraError } from '../../../libs/core/index.js';
import { parseWorkflowRequest, stepDefOf } from '../../../libs/workflows/index.js';
import type { ApiContext } from '../context.js';
import type { Drain } from '../drain.js';
import { badRequest, route, sendError } from '../errors.js';
import { readWorkflowStream } from '../services/workflows.js';
import { resumeFrom } from '../services/stream-reader.js';
import { sendSse } from '../sse.js';
import { startAndAnswer, workflowLinks } from '../workflow-answer.js';
import { requireCallbackAllowed } from '../webhook-allow.js';

/** `drain`: this replica's shutdown, which hands workflow streams over to another replica. */
export function workflowsRouter(ctx: ApiContext, drain: Drain): Router {
  const r = Router();

  r.post(
    '/v1/workflows',
    route(async (req: Request, res: Response) => {
      const parsed = parseWorkflowRequest(req.body);
      if (!parsed.ok) return sendError(res, badRequest(parsed.problems));
      const w = parsed.value;
      if (w.callback_url) await requireCallbackAllowed(w.callback_url, 'callback_url', ctx.config.WEBHOOK_ALLOW);
      await startAndAnswer(ctx, res, { kind: 'dag', name: w.name, priority: w.priority, cache: w.cache, input: w.input, steps: w.steps.map(stepDefOf), callback_url: w.callback_url }, w.wait, w.timeout_ms, drain.deadline);
    }),
  );

  r.get(
    '/v1/workflows/:id',
    route(async (req: Request, res: Response) => {
      const id = String(req.params.id);
      const view = await ctx.coordinator.view(id);
      if (!view) return sendError(res, new HydraError(ErrorCode.NotFound, `no workflow with id ${id} (unknown, or removed after JOB_RETENTION_S)`));
      res.json(view);
    }),
  );

  r.get(
    '/v1/workflows/:id/stream',
    route(async (req: Request, res: Response) => {
      const reader = await readWorkflowStream(ctx, String(req.params.id), resumeFrom(req.header('last-event-id') ?? req.query.last_event_id));
      await sendSse(res, reader, { handoff: drain.handoff });
    }),
  );

  r.delete(
    '/v1/workflows/:id',
    route(async (req: Request, res: Response) => {
      const id = String(req.params.id);
      const { status } = await ctx.coordinator.cancel(id);
      res.status(202).json({ ...workflowLinks(id), state: status, note: 'steps not started were removed; running steps are being aborted' });
    }),
  );

  return r;
}
