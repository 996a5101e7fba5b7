// Hydra's JSON answer to a started workflow, shared by /v1/workflows, /v1/distribute and /v1/orchestrate: 202 with
// links, or with `wait` the final view (200, the failing step's status, 409 when cancelled), or 202 past the wait limit.
import type { Request, Response } from 'express';
import type { ErrorCode } from '../../libs/core/index.js';
import { newWorkflowId, type StartInput, type WorkflowView } from '../../libs/workflows/index.js';
import { requestIdOf } from './access-log.js';
import { keyIdOf } from './auth.js';
import { clientGone } from './client-gone.js';
import type { ApiContext } from './context.js';
import { STATUS } from './errors.js';
import { claimIdempotency } from './idempotency.js';
import { replayWorkflow } from './replay.js';
import { startWorkflow, waitForWorkflow } from './services/workflows.js';

export const workflowLinks = (id: string) => ({ id, status_url: `/v1/workflows/${id}`, stream_url: `/v1/workflows/${id}/stream` });

/** HTTP status of a finished workflow's view: 200, the failing step's error status, or 409 when cancelled. */
function statusOf(view: WorkflowView): number {
  if (view.state === 'completed') return 200;
  if (view.state === 'cancelled') return STATUS.cancelled;
  return STATUS[view.error?.code as ErrorCode] ?? 502;
}

/**
 * `deadline`: this replica's drain deadline (Drain.deadline): a `wait` still open shortly before SHUTDOWN_GRACE_MS ends
 * is answered 202 with the links (the workflow goes on), not cut off when the process exits.
 */
export async function startAndAnswer(
  ctx: ApiContext,
  res: Response,
  input: StartInput,
  wait: boolean | undefined,
  timeoutMs: number | undefined,
  deadline: AbortSignal,
): Promise<void> {
  // The access log's request id goes with the workflow: its view shows it and every step job (later ones too) carries it.
  // So does the API key's id (never the key), for the results history's rows of the workflow and its steps.
  const keyId = keyIdOf(res.req, ctx.config.API_KEYS);
  const waitMs = Math.min(timeoutMs ?? ctx.config.WAIT_MAX_MS, ctx.config.WAIT_MAX_MS);
  // Idempotency-Key: a repeat of an earlier request answers with that request's workflow (idempotency.ts, replay.ts).
  const claim = await claimIdempotency(ctx, res.req as Request, 'workflow', newWorkflowId);
  if (claim.kind === 'replay') return replayWorkflow(ctx, res, claim.id, wait === true, waitMs, AbortSignal.any([clientGone(res), deadline]), statusOf);
  let started: Awaited<ReturnType<typeof startWorkflow>>;
  try {
    started = await startWorkflow(ctx, { ...input, request_id: requestIdOf(res.req), ...(keyId ? { api_key_id: keyId } : {}), ...(claim.kind === 'new' ? { id: claim.id } : {}) }, { watch: wait === true });
  } catch (e) {
    if (claim.kind === 'new') await claim.release();
    throw e;
  }
  if (started.kind === 'started') return void res.status(202).json({ ...workflowLinks(started.id), state: 'running', kind: input.kind, steps: input.steps.length });
  const end = await waitForWorkflow(ctx, started.id, started.watch, waitMs, AbortSignal.any([clientGone(res), deadline]));
  if (end.kind === 'ended') return void res.status(statusOf(end.view)).json(end.view);
  const note = deadline.aborted
    ? 'this API replica shut down before the workflow ended (SHUTDOWN_GRACE_MS); the workflow goes on: poll status_url or read stream_url'
    : 'still running after the wait limit; poll status_url or read stream_url';
  res.status(202).json({ ...workflowLinks(started.id), state: end.state, progress: end.progress, note });
}
