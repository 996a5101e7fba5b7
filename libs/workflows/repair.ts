// The repair sweep, for crashes between two Redis calls: a step job that ended while its hook did not run (worker
// killed right after completing it, or failed by BullMQ's stalled checker), a claimed step whose job was never added,
// a gate not removed. Failures are read with the lifecycle's one decoder, so a step shows what its job view shows.
import { randomUUID } from 'node:crypto';
import { ErrorCode, type InferResult } from '../core/index.js';
import type { Logger } from '../logger/index.js';
import { decodeFailure, type Producer } from '../queue/index.js';
import type { WorkflowStore } from './store.js';
import { FINAL_STATUSES, stepJobId, WORKFLOW_QUEUE, type StepJobInfo, type StepOutcome, type StepRecord } from './types.js';

/** What the sweep asks of the coordinator. */
export interface StepAdvancer {
  stepFinished(ref: { id: string; step: string }, job: StepJobInfo, outcome: StepOutcome): Promise<void>;
  settle(id: string, step: string, record: StepRecord): Promise<void>;
  /** Render, route and add steps already claimed (`queued`) whose jobs were never added. */
  addClaimed(id: string, steps: readonly string[]): Promise<void>;
  /** Remove the gate of a workflow whose steps have all settled. */
  release(id: string): Promise<void>;
}

export interface RepairDeps {
  store: WorkflowStore;
  producer: Producer;
  logger: Logger;
  steps: StepAdvancer;
}

/** Open workflows looked at per sweep, oldest first. */
const SWEEP_BATCH = 200;

export class WorkflowRepair {
  constructor(private readonly d: RepairDeps) {}

  /** One sweep across processes (a lock), over workflows idle for `idleMs`. Returns how many steps it repaired. */
  async reconcile(now: number, idleMs: number, lockMs = 5000): Promise<number> {
    const owner = randomUUID();
    if (!(await this.d.store.lockSweep(owner, lockMs))) return 0;
    try {
      let repaired = 0;
      for (const id of await this.d.store.open(SWEEP_BATCH)) repaired += await this.repair(id, now, idleMs);
      return repaired;
    } finally {
      await this.d.store.unlockSweep(owner);
    }
  }

  private async repair(id: string, now: number, idleMs: number): Promise<number> {
    const { store, producer, steps } = this.d;
    const st = await store.status(id);
    if (!st || FINAL_STATUSES.includes(st.status)) {
      await store.closeOpen(id);
      return 0;
    }
    if (now - st.updated_at < idleMs) return 0;
    if (!(await producer.queue(WORKFLOW_QUEUE).getJob(id))) {
      await store.finish(id, 'failed', { error: { code: ErrorCode.NotFound, message: 'the workflow job was removed from its queue' } }, now);
      return 0;
    }
    let repaired = 0;
    const unadded: string[] = [];
    for (const [step, state] of await store.states(id)) {
      if (state !== 'queued') continue;
      const jobId = stepJobId(id, step);
      const found = await producer.lifecycle.find(jobId);
      if (!found) {
        unadded.push(step);
        continue;
      }
      const job = found.job;
      const jstate = job ? await job.getState() : 'unknown';
      if (job && jstate === 'completed') {
        await steps.stepFinished({ id, step }, job, { state: 'completed', result: job.returnvalue as InferResult });
        repaired++;
      } else if (job && jstate === 'failed') {
        await steps.stepFinished({ id, step }, job, { state: 'failed', error: decodeFailure(job.failedReason) });
        repaired++;
      } else if (jstate === 'unknown') {
        const error = { code: ErrorCode.Cancelled, message: 'the step job was removed from its queue' };
        await steps.settle(id, step, { state: 'cancelled', job_id: jobId, model: '', node_id: null, error, finished_at: now });
        repaired++;
      }
    }
    if (unadded.length > 0) {
      this.d.logger.warn({ workflow: id, steps: unadded }, 'adding claimed steps whose jobs were never added');
      await steps.addClaimed(id, unadded);
      repaired += unadded.length;
    }
    const after = await store.status(id);
    if (after && after.pending <= 0) await steps.release(id);
    return repaired;
  }
}
