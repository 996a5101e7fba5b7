// Ending a workflow: the workflow job's processor builds the result from the settled steps (or the failure), and once
// BullMQ recorded the end, the terminal stream entry and the done message announce it.
import { DelayedError, UnrecoverableError, WaitingChildrenError, type Job } from 'bullmq';
import type { L1Cache } from '../cache/index.js';
import type { Logger } from '../logger/index.js';
import { encodeFailure, type DoneMessage, type Producer } from '../queue/index.js';
import { gateJob, parentQueueKey } from './jobs.js';
import type { KindHandlers } from './kinds/index.js';
import type { WorkflowStore } from './store.js';
import { FINAL_STATUSES, GATE_QUEUE, type StepError, type WorkflowStatus } from './types.js';
import { progressOf } from './view.js';

export interface FinaliserDeps {
  store: WorkflowStore;
  producer: Producer;
  kinds: KindHandlers;
  /** Where a completed workflow with `settings.result_cache_key` leaves its result (the orchestrator's memory). */
  cache: L1Cache | null;
  logger: Logger;
}

export class WorkflowFinaliser {
  constructor(private readonly d: FinaliserDeps) {}

  /**
   * The workflow job's processor (run by the finaliser Worker once BullMQ released the parent): build the result
   * from the settled steps, or fail with the failing step's error. Safe to run again after a crash.
   */
  async finalise(job: Job, token: string | undefined): Promise<unknown> {
    const id = job.id!;
    const { store, producer, logger } = this.d;
    const snap = await store.snapshot(id);
    if (!snap) throw new UnrecoverableError(encodeFailure({ code: 'not_found', message: `the state of workflow ${id} is gone (expired after JOB_RETENTION_S?)` }));
    if (!FINAL_STATUSES.includes(snap.status) && snap.pending > 0) {
      // Released early (the gate was removed by hand?): put the gate back and wait for the steps again.
      logger.warn({ workflow: id, pending: snap.pending }, 'workflow job released with steps pending; waiting again');
      const gate = gateJob(producer, id);
      await producer.queue(GATE_QUEUE).add(gate.name, gate.data, { ...gate.opts, parent: { id, queue: parentQueueKey(producer) } });
      if (token && (await job.moveToWaitingChildren(token))) throw new WaitingChildrenError();
      if (token) {
        await job.moveToDelayed(Date.now() + 1000, token);
        throw new DelayedError();
      }
    }
    let status: WorkflowStatus;
    let result: unknown;
    let error: StepError | undefined;
    if (FINAL_STATUSES.includes(snap.status)) {
      status = snap.status;
      result = snap.result;
      error = snap.error ?? undefined;
    } else if (snap.status === 'running') {
      const s = this.d.kinds[snap.kind].summarize(snap);
      status = s.ok ? 'completed' : 'failed';
      if (s.ok) result = s.result;
      else error = s.error;
    } else {
      status = snap.status === 'cancelling' ? 'cancelled' : 'failed';
      const e = snap.error ?? { code: 'internal', message: 'the workflow failed' };
      error = snap.failed_step && status === 'failed' ? { code: e.code, message: `step "${snap.failed_step}" failed: ${e.message}` } : e;
    }
    const now = Date.now();
    if (!FINAL_STATUSES.includes(snap.status)) {
      await store.finish(id, status, { ...(result !== undefined ? { result } : {}), ...(error ? { error } : {}) }, now);
      const resultKey = snap.settings.result_cache_key;
      if (status === 'completed' && typeof resultKey === 'string' && this.d.cache) await this.d.cache.put(resultKey, result, id);
    }
    await job.updateProgress({ ...progressOf({ ...snap, status }, 'done'), percent: 100 }).catch(() => undefined);
    logger.info({ workflow: id, kind: snap.kind, ...(snap.request_id ? { requestId: snap.request_id } : {}), status, ms: now - snap.created_at }, 'workflow finished');
    if (status === 'completed') return result;
    throw new UnrecoverableError(encodeFailure(error ?? { code: 'internal', message: 'the workflow failed' }));
  }

  /**
   * After BullMQ recorded the workflow job's end (the finaliser's completed/failed events): the terminal stream entry
   * and the done message. Does nothing while the workflow is not finished (a retried finalisation).
   */
  async announceEnd(id: string): Promise<void> {
    const end = await this.d.store.ending(id);
    if (!end || !FINAL_STATUSES.includes(end.status)) return;
    const body = end.status === 'completed' ? { id, state: end.status, result: end.result } : { id, state: end.status, error: end.error };
    const msg: DoneMessage = {
      id,
      state: end.status === 'completed' ? 'completed' : end.status === 'cancelled' ? 'cancelled' : 'failed',
      finished_at: end.finished_at,
      ...(end.status !== 'completed' && end.error ? { error: end.error } : {}),
    };
    await this.d.store.announceEnd(id, body, msg);
  }
}
