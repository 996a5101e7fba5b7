// The BullMQ jobs a workflow is made of (its parent, its gate, its steps): named, optioned and validated from the job catalog.
import type { FlowJob, JobsOptions } from 'bullmq';
import { checkPayload, JobCatalog, type InferJob, type Producer } from '../queue/index.js';
import type { QueueInfo } from '../scheduling/index.js';
import { GATE_QUEUE, gateJobId, WORKFLOW_QUEUE, type WorkflowKind } from './types.js';

/** A ready step, rendered and routed: the job to add. */
export interface PreparedJob {
  step: string;
  jobId: string;
  queue: QueueInfo;
  payload: InferJob;
}

/** One job to add: to a flow, or to its queue with a parent. */
export interface JobSpec {
  name: string;
  queueName: string;
  data: unknown;
  opts: JobsOptions;
}

/** BullMQ's full key of the workflow queue, as a child's `parent.queue` names it. */
export const parentQueueKey = (producer: Producer): string => `${producer.keys.prefix}:${WORKFLOW_QUEUE}`;

/** The gate child: holds the parent in waiting-children until every step has settled (see coordinator.ts). */
export function gateJob(producer: Producer, workflowId: string): JobSpec {
  const data = checkPayload('gate', { workflow: workflowId, note: 'holds the workflow open until every step has settled; never processed' });
  return { name: JobCatalog.gate.name(), queueName: GATE_QUEUE, data, opts: producer.jobOptions('gate', gateJobId(workflowId)) };
}

/** Step jobs are ordinary inference jobs; a final failure leaves the parent's dependencies (the coordinator decides). */
export function stepJob(producer: Producer, j: PreparedJob): JobSpec {
  const data = checkPayload('infer', j.payload);
  return { name: JobCatalog.infer.name(data), queueName: j.queue.name, data, opts: { ...producer.jobOptions('infer', j.jobId, data.priority), ignoreDependencyOnFailure: true } };
}

/** The whole flow of a new workflow: the parent with its gate and the steps that can start. */
export function workflowFlow(producer: Producer, w: { id: string; kind: WorkflowKind; name?: string | undefined; steps: number; priority: number; callback_url?: string | undefined }, jobs: readonly PreparedJob[]): FlowJob {
  const data = checkPayload('workflow', { id: w.id, kind: w.kind, ...(w.name ? { name: w.name } : {}), steps: w.steps, ...(w.callback_url ? { callback_url: w.callback_url } : {}) });
  return {
    name: JobCatalog.workflow.name(data),
    queueName: WORKFLOW_QUEUE,
    data,
    opts: producer.jobOptions('workflow', w.id, w.priority),
    children: [gateJob(producer, w.id), ...jobs.map((j) => stepJob(producer, j))],
  };
}
