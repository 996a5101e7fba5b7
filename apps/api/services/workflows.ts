// The workflow service behind /v1/workflows, /v1/distribute and /v1/orchestrate: check that every step can be routed,
// start the flow (watching for its end first when the caller waits), wait for the end, and read its stream.
import { ErrorCode, HydraError } from '../../../libs/core/index.js';
import { FINAL_STATUSES, newWorkflowId, type StartInput, type WorkflowStatus, type WorkflowView } from '../../../libs/workflows/index.js';
import type { ApiContext } from '../context.js';
import type { Watch } from '../waiters.js';
import { confirmDurable, withModelGrace, type Withdrawal } from './jobs.js';
import { readStream, type StreamReader } from './stream-reader.js';

export type StartOutcome = { kind: 'started'; id: string } | { kind: 'watching'; id: string; watch: Watch };

/**
 * Start a workflow. With `watch`, the end is watched from before the flow is added, so it cannot be missed. With
 * REDIS_MIN_REPLICAS_ACK it is started only once replicas hold it, as a job is (`confirmDurable`).
 */
export async function startWorkflow(ctx: ApiContext, input: StartInput, opts: { watch: boolean }): Promise<StartOutcome> {
  // As for a job: a model whose nodes are restarting (or re-registering after a Redis failover) is queued, not refused.
  await withModelGrace(ctx, (nodes, _now, recent) => ctx.coordinator.checkRoutable(input.steps, nodes, undefined, recent));
  const id = input.id ?? newWorkflowId();
  const watch = opts.watch ? ctx.waiters.watch(id) : null;
  const seal = ctx.replicaAck?.seal();
  try {
    await ctx.coordinator.start({ ...input, id });
    if (seal) await confirmDurable(ctx, seal, { kind: 'workflow', id, withdraw: () => withdrawWorkflow(ctx, id) });
  } catch (e) {
    watch?.close();
    throw e;
  }
  return watch ? { kind: 'watching', id, watch } : { kind: 'started', id };
}

/** Cancel a workflow that was added but not confirmed; a conflict means it has ended already. */
const withdrawWorkflow = (ctx: ApiContext, id: string): Promise<Withdrawal> =>
  ctx.coordinator.cancel(id).then(
    () => 'withdrawn',
    (e: unknown) => (e instanceof HydraError && e.code === ErrorCode.Conflict ? 'ran' : 'unknown'),
  );

export type WorkflowEnd = { kind: 'ended'; view: WorkflowView } | { kind: 'running'; state: WorkflowStatus; progress: WorkflowView['progress'] | undefined };

/** Wait for the end, the deadline or `signal`. Throws not_found if the workflow vanished. Closes the watch. */
export async function waitForWorkflow(ctx: ApiContext, id: string, watch: Watch, ms: number, signal: AbortSignal): Promise<WorkflowEnd> {
  const deadline = Date.now() + ms;
  try {
    for (;;) {
      await watch.next(Math.min(1000, Math.max(1, deadline - Date.now())), signal);
      const st = await ctx.coordinator.store.status(id);
      if (!st) throw new HydraError(ErrorCode.NotFound, `workflow ${id} no longer exists`);
      if (FINAL_STATUSES.includes(st.status)) return { kind: 'ended', view: (await ctx.coordinator.view(id))! };
      if (Date.now() >= deadline || signal.aborted) return { kind: 'running', state: st.status, progress: (await ctx.coordinator.view(id))?.progress };
    }
  } finally {
    watch.close();
  }
}

/** A workflow's step events; a finished workflow whose terminal entry is missing answers from its state. */
export async function readWorkflowStream(ctx: ApiContext, id: string, from: string): Promise<StreamReader> {
  const { coordinator } = ctx;
  if (!(await coordinator.store.exists(id))) throw new HydraError(ErrorCode.NotFound, `no workflow with id ${id}`);
  return readStream(
    ctx,
    {
      key: ctx.keys.stream(id),
      blockMs: 5000,
      onIdle: async () => {
        const st = await coordinator.store.status(id);
        if (st && !FINAL_STATUSES.includes(st.status)) return null;
        const view = st ? await coordinator.view(id) : null;
        if (!view) return { event: 'error', data: { code: 'not_found', message: `workflow ${id} no longer exists` } };
        return { event: view.state === 'completed' ? 'done' : 'error', data: { id, state: view.state, ...(view.result !== undefined ? { result: view.result } : { error: view.error }) } };
      },
    },
    from,
  );
}
