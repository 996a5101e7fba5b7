// Jobs pinned to a node that went away: check its queue for stalled jobs (no one else serves it), then move its waiting
// jobs to their model's class queue so any qualifying node runs them. One worker process at a time (a Redis lock).
import { Worker, type Job } from 'bullmq';
import type { Logger } from '../../libs/logger/index.js';
import { bullConnection, type HydraKeys, type InferJob, type Producer, type RedisClient } from '../../libs/queue/index.js';
import { classQueueName, type QueueInfo } from '../../libs/scheduling/index.js';
import type { WorkerSettings } from './settings.js';

export interface RehomerDeps {
  redis: RedisClient;
  keys: HydraKeys;
  producer: Producer;
  logger: Logger;
}

export class Rehomer {
  /** Stalled-job checkers for the queues of nodes that went away. */
  private readonly checkers = new Map<string, Worker>();

  constructor(
    private readonly s: Pick<WorkerSettings, 'lockDurationMs' | 'stalledIntervalMs' | 'maxStalledCount'>,
    private readonly d: RehomerDeps,
  ) {}

  /** One pass; returns how many jobs were moved. `live`: ids of the nodes that heartbeat now. */
  async pass(queues: readonly QueueInfo[], live: ReadonlySet<string>, owner: string): Promise<number> {
    const orphans = queues.filter((q): q is Extract<QueueInfo, { kind: 'node' }> => q.kind === 'node' && !live.has(q.node));
    for (const [name, w] of this.checkers) {
      if (orphans.some((q) => q.name === name)) continue;
      this.checkers.delete(name); // its node came back: it checks its own queue again
      void w.close().catch(() => undefined);
    }
    if (orphans.length === 0) return 0;
    if (!(await this.d.redis.set(this.d.keys.rehomeLock, owner, 'PX', 5000, 'NX'))) return 0;
    let moved = 0;
    for (const q of orphans) {
      this.checkStalled(q.name);
      const jobs = await this.d.producer.queue(q.name).getJobs(['prioritized', 'waiting', 'delayed'], 0, 199);
      for (const job of jobs) if (await this.rehome(job, q.node)) moved++;
    }
    if (moved) this.d.logger.warn({ moved }, 'moved jobs pinned to nodes that went away to their class queues');
    return moved;
  }

  private checkStalled(queue: string): void {
    if (this.checkers.has(queue)) return;
    const w = new Worker(queue, undefined, {
      connection: bullConnection(this.d.redis),
      prefix: this.d.keys.prefix,
      autorun: false,
      skipVersionCheck: true,
      lockDuration: this.s.lockDurationMs,
      stalledInterval: this.s.stalledIntervalMs,
      maxStalledCount: this.s.maxStalledCount,
    });
    w.on('error', (err) => this.d.logger.warn({ queue, err: err.message }, 'stalled check of an orphaned node queue failed'));
    void w.startStalledCheckTimer().catch(() => undefined);
    this.checkers.set(queue, w);
  }

  /**
   * Same id, payload, priority, min_vram_gb bucket and age (the hash's `timestamp`, which aging and the dispatcher's
   * oldest-first order read) in the class queue, then out of the node queue; undone if the node took it meanwhile.
   */
  private async rehome(job: Job, node: string): Promise<boolean> {
    const { producer, redis } = this.d;
    const data = job.data as InferJob;
    const model = data.call?.model;
    if (!model || !job.id) return false;
    const minVramMb = data.min_vram_mb ?? 0;
    const info: QueueInfo = { kind: 'class', name: classQueueName(model, minVramMb), model, min_vram_mb: minVramMb };
    const payload: InferJob = {
      ...data,
      route: { ...data.route, queue: info.name, reason: `${data.route.reason}; requested node ${node} stopped heartbeating before running it: moved to any qualifying node` },
    };
    await producer.registerQueue(info);
    const target = producer.queue(info.name);
    // Keep when it was added and the priority it has aged to. It is added with its original priority (aging reads
    // opts.priority as the starting level and ages it by the kept timestamp), then moved to the level it had reached.
    const options = { ...producer.jobOptions('infer', job.id, data.priority), timestamp: job.timestamp };
    const moved = await target.add(job.name, payload, options);
    if (job.priority && job.priority !== options.priority) await moved.changePriority({ priority: job.priority }).catch(() => undefined);
    // The index points at the class queue before the job leaves the node queue: a GET /v1/jobs/:id in between finds it
    // there (pointing it after the remove answered 404 for that moment).
    await producer.lifecycle.index(redis.multi(), job.id, info.name).exec();
    try {
      await job.remove();
    } catch {
      await target.remove(job.id).catch(() => undefined);
      await producer.lifecycle.index(redis.multi(), job.id, job.queueName).exec();
      return false;
    }
    await producer.lifecycle.wake(redis.multi(), info.name).exec();
    return true;
  }

  async close(): Promise<void> {
    await Promise.all([...this.checkers.values()].map((w) => w.close().catch(() => undefined)));
  }
}
