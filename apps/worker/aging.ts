// Priority aging: one worker at a time (a Redis lock) raises waiting jobs one level per AGING_STEP_MS so nothing starves.
import { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../../libs/logger/index.js';
import type { HydraKeys } from '../../libs/queue/index.js';
import { agedPriority, fromBullPriority, toBullPriority, type QueueInfo } from '../../libs/scheduling/index.js';

export class Ager {
  private readonly queues = new Map<string, Queue>();

  constructor(
    private readonly redis: Redis,
    private readonly keys: HydraKeys,
    private readonly stepMs: number,
    private readonly logger: Logger,
  ) {}

  private queue(name: string): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.redis, prefix: this.keys.prefix, skipVersionCheck: true });
      q.on('error', () => {});
      this.queues.set(name, q);
    }
    return q;
  }

  /** One pass over every queue, if this process wins the lock. Returns how many jobs were promoted. */
  async pass(queues: readonly QueueInfo[], owner: string, now: number): Promise<number> {
    const lockMs = Math.max(100, Math.floor(this.stepMs / 2));
    const got = await this.redis.set(this.keys.agingLock, owner, 'PX', lockMs, 'NX');
    if (!got) return 0;
    let promoted = 0;
    for (const info of queues) {
      // Lowest-urgency jobs sit at the end of the prioritized set; look at the oldest few hundred.
      const ids = await this.redis.zrange(this.keys.queueKey(info.name, 'prioritized'), '-500', '-1');
      for (const id of ids) {
        const job = await Job.fromId(this.queue(info.name), id);
        if (!job) continue;
        const original = (job.data as { priority?: number }).priority ?? fromBullPriority(job.opts.priority ?? 6);
        const target = toBullPriority(agedPriority(original, now - job.timestamp, this.stepMs));
        const current = job.priority || job.opts.priority || 0;
        if (target >= current) continue;
        // lifo keeps the promoted job ahead of fresh jobs of its new band.
        await job.changePriority({ priority: target, lifo: true }).catch(() => undefined);
        promoted++;
      }
    }
    if (promoted) this.logger.debug({ promoted }, 'aged waiting jobs');
    return promoted;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}
