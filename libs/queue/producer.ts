// Enqueue side: BullMQ Queue objects per queue name, the run-time queue registry, and job lookup by id.
import { Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { QueueInfo } from '../scheduling/index.js';
import { toBullPriority } from '../scheduling/index.js';
import { JobCatalog, type InferJob } from './catalog.js';
import type { HydraKeys } from './keys.js';

export interface ProducerOptions {
  redis: Redis;
  keys: HydraKeys;
  attempts: number;
  backoffMs: number;
  retentionS: number;
}

export const jobName = (kind: string, model: string): string => `${kind}:${model}`;
/** Inverse of jobName: the model a job is for (the part after the kind). */
export const modelOfJobName = (name: string): string => name.slice(name.indexOf(':') + 1);

export class Producer {
  private readonly queues = new Map<string, Queue>();
  private readonly known = new Set<string>();

  constructor(private readonly opts: ProducerOptions) {}

  /** One Queue object per name, sharing the producer connection. */
  queue(name: string): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.opts.redis, prefix: this.opts.keys.prefix, skipVersionCheck: true });
      q.on('error', () => {}); // connection errors surface on the calls themselves
      this.queues.set(name, q);
    }
    return q;
  }

  /** Record a queue created at run time so workers and Bull Board find it. */
  async registerQueue(info: QueueInfo): Promise<void> {
    if (this.known.has(info.name)) return;
    await this.opts.redis.hsetnx(this.opts.keys.queues, info.name, JSON.stringify(info));
    this.known.add(info.name);
  }

  async listQueues(): Promise<QueueInfo[]> {
    const all = await this.opts.redis.hgetall(this.opts.keys.queues);
    return Object.values(all).map((v) => JSON.parse(v) as QueueInfo);
  }

  jobOptions(jobId: string, priority: number): JobsOptions {
    const retention = this.opts.retentionS;
    return {
      jobId,
      priority: toBullPriority(priority),
      attempts: this.opts.attempts,
      backoff: { type: JobCatalog.infer.backoff.type, delay: this.opts.backoffMs },
      removeOnComplete: { age: retention, count: 50_000 },
      removeOnFail: { age: retention * 7, count: 50_000 },
    };
  }

  async addInference(jobId: string, payload: InferJob, info: QueueInfo): Promise<void> {
    await this.registerQueue(info);
    const { keys, redis, retentionS } = this.opts;
    // The index first: if Redis goes away right after the add, the job still exists and can be found by id.
    await redis.set(keys.jobIndex(jobId), info.name, 'EX', retentionS * 7);
    await this.queue(info.name).add(jobName('infer', payload.call.model), payload, this.jobOptions(jobId, payload.priority));
    await redis.publish(keys.channels.wake, info.name);
  }

  /** The queue holding a job, or null when the id is unknown (or expired). */
  async queueOfJob(jobId: string): Promise<Queue | null> {
    const name = await this.opts.redis.get(this.opts.keys.jobIndex(jobId));
    return name ? this.queue(name) : null;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}
