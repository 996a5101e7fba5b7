// POST /v1/orchestrate: the Hydra pipeline (analyze → decompose → multi-model subtasks → synthesize) as one workflow.
import { Router, type Request, type Response } from 'express';
import { cachePolicy, hashKey } from '../../../libs/cache/index.js';
import { catalogPools, orchestrateSteps, orchestratorModels, parseOrchestrateRequest, type StepDef } from '../../../libs/workflows/index.js';
import type { ApiContext } from '../context.js';
import type { Drain } from '../drain.js';
import { badRequest, route, sendError } from '../errors.js';
import { recallContext, recallFor } from '../recall.js';
import { startAndAnswer } from '../workflow-answer.js';

/** `drain`: this replica's shutdown; a `wait` still open at its deadline is answered 202 with the links. */
export function orchestrateRouter(ctx: ApiContext, drain: Drain): Router {
  const r = Router();
  const { config } = ctx;
  const defaults = {
    light_model: config.ORCH_LIGHT_MODEL,
    heavy_model: config.ORCH_HEAVY_MODEL,
    // Each type's pool: ORCH_MODELS_<TYPE> when set, else the catalog's models with that capability (ORCH_CATALOG).
    pools: catalogPools(config.ORCH_CATALOG, { code: config.ORCH_MODELS_CODE, math: config.ORCH_MODELS_MATH, reasoning: config.ORCH_MODELS_REASONING, general: config.ORCH_MODELS_GENERAL }),
  };
  r.post(
    '/v1/orchestrate',
    route(async (req: Request, res: Response) => {
      const parsed = parseOrchestrateRequest(req.body, defaults);
      if (!parsed.ok) return sendError(res, badRequest(parsed.problems));
      const { request: q } = parsed.value;
      let { settings } = parsed.value;
      const { coordinator, cache } = ctx;
      // Every model the pipeline may use must exist somewhere, or the request fails now rather than mid-way.
      const probes: StepDef[] = orchestratorModels(settings).map((model) => ({ id: model, call: { type: 'generate', model, prompt: '' }, depends_on: [], optional: false, routing: {} }));
      coordinator.checkRoutable(probes, await ctx.nodes(), () => 'orchestrator');
      // Memory: a deterministic orchestration (or cache: true) answers from the L1 cache, and stores its result there.
      const deterministic = q.options?.temperature === 0 || q.options?.seed !== undefined;
      // With recall the prompt depends on what memory holds now: not cached.
      const key = !q.memory && cachePolicy(deterministic, q.cache).use ? hashKey({ kind: 'orchestrate', settings }) : undefined;
      const hit = key ? await cache.get(key) : null;
      if (key && hit) {
        return void res.status(200).json({
          id: hit.source_job_id ?? null,
          kind: 'orchestrate',
          state: 'completed',
          cached: true,
          result: hit.value,
          cache: { hit: true, key, stored_at: new Date(hit.stored_at).toISOString(), source_workflow_id: hit.source_job_id ?? null },
        });
      }
      // memory.recall: the nearest earlier answers go in front of the prompt every stage sees, and into the view.
      const recalled = q.memory ? await recallFor(ctx, req, res, q.prompt, q.memory) : [];
      if (recalled.length) settings = { ...settings, prompt: `${recallContext(recalled)}\n\n${settings.prompt}` };
      const stored = { ...settings, ...(key ? { result_cache_key: key } : {}), ...(q.memory ? { recalled } : {}) } as unknown as Record<string, unknown>;
      await startAndAnswer(ctx, res, { kind: 'orchestrate', priority: q.priority, settings: stored, steps: orchestrateSteps(settings) }, q.wait, q.timeout_ms, drain.deadline);
    }),
  );
  return r;
}
