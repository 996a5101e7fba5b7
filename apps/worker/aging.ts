// Priority aging: one worker at a time (a Redis lock) raises waiting jobs one level per AGING_STEP_MS so nothing starves.
import { Job, Queue } from 'bullmq';
import type { Logger } from '../../libs/logger/index.js';
import { bullConnection, prioritizedOldest, readJobFields, type HydraKeys, type RedisClient } from '../../libs/queue/index.js';
import { agedPriority, fromBullPriority, toBullPriority, type QueueInfo } from '../../libs/scheduling/index.js';

/** BullMQ priorities a job can still be promoted from (1, Hydra's priority 10, is the top). */
const AGEABLE_BANDS = [10, 9, 8, 7, 6, 5, 4, 3, 2];
/** Jobs read per band per pass: the oldest of each, so a backlog of any size ages from its old end. */
const PER_BAND = 500;

export class Ager {
  private readonly queues = new Map<string, Queue>();

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: HydraKeys,
    private readonly stepMs: number,
    private readonly logger: Logger,
  ) {}

  private queue(name: string): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: bullConnection(this.redis), prefix: this.keys.prefix, skipVersionCheck: true });
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
      // The oldest few hundred of each band that can still rise (BullMQ priority 2-10; 1 is the top), in one pipelined
      // read, then one pipelined read of their times and priorities; a Job is fetched only for the ones to promote.
      const entries = await prioritizedOldest(this.redis, this.keys, info.name, AGEABLE_BANDS, PER_BAND);
      if (entries.length === 0) continue;
      const rows = await readJobFields(this.redis, this.keys, info.name, entries.map((e) => e.id));
      const due: { id: string; target: number; timestamp: number; counter: number }[] = [];
      for (const [i, e] of entries.entries()) {
        const fields = rows[i];
        if (!fields) continue;
        // The priority the job was added with; changePriority only moves its current one.
        const added = fields.addedPriority ?? toBullPriority(5);
        const target = toBullPriority(agedPriority(fromBullPriority(added), now - fields.timestamp, this.stepMs));
        if (target < fields.priority) due.push({ id: e.id, target, timestamp: fields.timestamp, counter: e.counter });
      }
      // Oldest first (add time, then the queue's add counter for jobs added in the same ms): without lifo, each
      // promoted job takes the next counter of its new band, so promoted jobs keep their age order among themselves.
      // With lifo they would all score priority · 2^32 and run in job-id order (random for Hydra's uuid ids). The cost:
      // a promoted job goes behind the jobs already waiting in its new band, ahead of any added after the pass.
      due.sort((a, b) => a.timestamp - b.timestamp || a.counter - b.counter);
      for (const d of due) {
        const job = await Job.fromId(this.queue(info.name), d.id);
        if (!job) continue;
        await job.changePriority({ priority: d.target, lifo: false }).catch(() => undefined);
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
