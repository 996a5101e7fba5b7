// POST /v1/distribute: fan prompts out over models as one flow; each (prompt, model) pair is a routed child job.
import { Router, type Request, type Response } from 'express';
import { distributeSteps, parseDistributeRequest } from '../../../libs/workflows/index.js';
import type { ApiContext } from '../context.js';
import type { Drain } from '../drain.js';
import { badRequest, route, sendError } from '../errors.js';
import { startAndAnswer } from '../workflow-answer.js';

/** `drain`: this replica's shutdown; a `wait` still open at its deadline is answered 202 with the links. */
export function distributeRouter(ctx: ApiContext, drain: Drain): Router {
  const r = Router();
  r.post(
    '/v1/distribute',
    route(async (req: Request, res: Response) => {
      const parsed = parseDistributeRequest(req.body);
      if (!parsed.ok) return sendError(res, badRequest(parsed.problems));
      const d = parsed.value;
      await startAndAnswer(ctx, res, { kind: 'distribute', priority: d.priority, cache: d.cache, steps: distributeSteps(d) }, d.wait, d.timeout_ms, drain.deadline);
    }),
  );
  return r;
}
