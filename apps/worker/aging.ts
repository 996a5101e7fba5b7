// Priority aging: one worker at a time (a Redis lock) raises waiting jobs one level per AGING_STEP_MS so nothing starves.
import { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../../libs/logger/index.js';
import { prioritizedTail, readJobFields, type HydraKeys } from '../../libs/queue/index.js';
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
      // Lowest-urgency jobs sit at the end of the prioritized set; look at the last few hundred (the newest of that
      // band, not the oldest: issue #10). One pipelined read of their times and priorities; a Job is fetched only
      // for the ones to promote.
      const ids = await prioritizedTail(this.redis, this.keys, info.name, 500);
      if (ids.length === 0) continue;
      const rows = await readJobFields(this.redis, this.keys, info.name, ids);
      for (const [i, id] of ids.entries()) {
        const fields = rows[i];
        if (!fields) continue;
        // The priority the job was added with; changePriority only moves its current one.
        const added = fields.addedPriority ?? toBullPriority(5);
        const target = toBullPriority(agedPriority(fromBullPriority(added), now - fields.timestamp, this.stepMs));
        if (target >= fields.priority) continue;
        const job = await Job.fromId(this.queue(info.name), id);
        // lifo keeps the promoted job ahead of fresh jobs of its new band.
        if (job) await job.changePriority({ priority: target, lifo: true }).catch(() => undefined);
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
