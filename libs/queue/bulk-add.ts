// Adding many inference jobs at once (POST /v1/batches): validated as Producer.addInference does, indexed in one
// pipeline (with whatever else the caller writes in it: the batch record), added with one BullMQ addBulk per queue (one
// pipeline of its add scripts), and each queue's workers woken once instead of once per job.
import type { ChainableCommander } from 'ioredis';
import type { QueueInfo } from '../scheduling/index.js';
import { checkPayload, JobCatalog, type InferJob } from './catalog.js';
import { throwIfFailed } from './connection.js';
import type { Producer } from './producer.js';

export interface BulkJob {
  id: string;
  payload: InferJob;
  info: QueueInfo;
}

/**
 * Validate, index (with `also` in the same pipeline), add, wake. The index goes first, as for a single job: if Redis
 * goes away right after the add, the jobs can still be found. `wake`: the nodes to wake per queue (else every worker).
 */
export async function addInferenceBulk(producer: Producer, jobs: readonly BulkJob[], opts: { also?: (c: ChainableCommander) => void; wake?: (queue: string) => readonly string[] | undefined } = {}): Promise<void> {
  const byQueue = new Map<string, { info: QueueInfo; jobs: { name: string; data: InferJob; opts: ReturnType<Producer['jobOptions']> }[] }>();
  const checked = jobs.map((j) => ({ ...j, data: checkPayload('infer', j.payload) }));
  for (const j of checked) {
    let q = byQueue.get(j.info.name);
    if (!q) byQueue.set(j.info.name, (q = { info: j.info, jobs: [] }));
    q.jobs.push({ name: JobCatalog.infer.name(j.data), data: j.data, opts: producer.jobOptions('infer', j.id, j.data.priority) });
  }
  for (const q of byQueue.values()) await producer.registerQueue(q.info);
  const p = producer.redis.pipeline();
  for (const j of checked) producer.indexJob(p, j.id, j.info.name, j.data.session);
  opts.also?.(p);
  throwIfFailed(await p.exec());
  await Promise.all([...byQueue.entries()].map(([name, q]) => producer.queue(name).addBulk(q.jobs)));
  const w = producer.redis.pipeline();
  for (const name of byQueue.keys()) producer.lifecycle.wake(w, name, opts.wake?.(name));
  await w.exec();
}
