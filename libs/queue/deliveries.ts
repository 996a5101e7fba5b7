// Webhook deliveries, the enqueue side: when a job, workflow or batch with a callback_url ends, one job goes into the
// BullMQ queue of deliveries (retried with exponential backoff; the API's delivery worker, apps/api/webhooks.ts, POSTs
// it), and each attempt is kept in a small capped list the job view shows. A batch item's end also counts down its
// batch (batch-store.ts) and the last one queues the batch's own delivery. Nothing here runs for a job without either.
import { Queue } from 'bullmq';
import { z } from 'zod';
import type { Config } from '../config/index.js';
import { BatchStore, type BatchItemEnd } from './batch-store.js';
import type { InferJob } from './catalog.js';
import { bullConnection, type RedisClient } from './connection.js';
import type { HydraKeys } from './keys.js';

/** The BullMQ queue of webhook deliveries: `<prefix>:webhook.deliveries:*`. Not in the queue registry: no node serves it. */
export const DELIVERY_QUEUE = 'webhook.deliveries';

const DELIVERY_EVENTS = ['job.completed', 'job.failed', 'job.cancelled', 'workflow.completed', 'workflow.failed', 'batch.completed', 'batch.cancelled'] as const;
export type DeliveryEvent = (typeof DELIVERY_EVENTS)[number];

export const DeliveryJobSchema = z.object({
  target: z.enum(['job', 'workflow', 'batch']),
  id: z.string().min(1),
  url: z.string().min(1).max(2048),
  /** Known where the end is seen (a job, a batch); a workflow's is read from its view at delivery. */
  event: z.enum(DELIVERY_EVENTS).optional(),
  /** The JSON body, fixed at the first attempt so every retry sends (and signs) the same bytes. */
  body: z.string().optional(),
});
export type DeliveryJob = z.infer<typeof DeliveryJobSchema>;

/** One attempt as the job view's `callback.deliveries` shows it. */
export interface DeliveryAttempt {
  attempt: number;
  at: string;
  status_code: number | null;
  ok: boolean;
  error?: string;
  duration_ms: number;
}

/** Attempts kept per callback (the newest). */
const DELIVERY_LOG_MAX = 50;

/** The delivery's id (its BullMQ job id and X-Hydra-Delivery): one per end, so a repeated end queues nothing twice. */
export const deliveryId = (target: DeliveryJob['target'], id: string): string => `dlv-${target}-${id}`;

interface DeliverySettings {
  attempts: number;
  backoffMs: number;
  retentionS: number;
}

const deliverySettingsOf = (c: Config): DeliverySettings => ({ attempts: c.WEBHOOK_MAX_ATTEMPTS, backoffMs: c.WEBHOOK_BACKOFF_MS, retentionS: c.JOB_RETENTION_S });

/** Append an attempt to a callback's log (capped, expiring with the job). One round trip. */
export async function logDelivery(redis: RedisClient, keys: HydraKeys, id: string, entry: DeliveryAttempt, retentionS: number): Promise<void> {
  const key = keys.deliveries(id);
  await redis.multi().rpush(key, JSON.stringify(entry)).ltrim(key, -DELIVERY_LOG_MAX, -1).expire(key, retentionS).exec();
}

export async function readDeliveries(redis: RedisClient, keys: HydraKeys, id: string): Promise<DeliveryAttempt[]> {
  const raw = await redis.lrange(keys.deliveries(id), 0, -1);
  return raw.flatMap((r) => {
    try {
      return [JSON.parse(r) as DeliveryAttempt];
    } catch {
      return [];
    }
  });
}

/** What a process calls when something with a callback (or in a batch) ends. */
export class Deliveries {
  private q: Queue | null = null;
  readonly batches: BatchStore;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: HydraKeys,
    private readonly s: DeliverySettings,
  ) {
    this.batches = new BatchStore(redis, keys, s.retentionS);
  }

  /** The deliveries queue, on this process's connection (made on first use). */
  queue(): Queue {
    if (!this.q) {
      this.q = new Queue(DELIVERY_QUEUE, { connection: bullConnection(this.redis), prefix: this.keys.prefix, skipVersionCheck: true });
      this.q.on('error', () => {}); // surfaces on the calls themselves
    }
    return this.q;
  }

  /** Queue one delivery; a second call for the same end is a no-op while the first is kept (same job id). */
  async enqueue(target: DeliveryJob['target'], id: string, url: string, event?: DeliveryEvent): Promise<void> {
    const data: DeliveryJob = DeliveryJobSchema.parse({ target, id, url, ...(event ? { event } : {}) });
    const keep = { age: this.s.retentionS, count: 10_000 };
    await this.queue().add(event ?? `${target}.end`, data, {
      jobId: deliveryId(target, id),
      attempts: this.s.attempts,
      backoff: { type: 'exponential', delay: this.s.backoffMs },
      removeOnComplete: keep,
      removeOnFail: keep,
    });
  }

  /**
   * A job ended for good (the worker's after-job hook), or was cancelled before it ran (the API): its callback is
   * queued, and a batch item counts down its batch. Call it only when `data.callback_url` or `data.batch` is set.
   */
  async jobEnded(jobId: string, data: Pick<InferJob, 'callback_url' | 'batch'>, state: BatchItemEnd): Promise<void> {
    await Promise.all([
      data.callback_url ? this.enqueue('job', jobId, data.callback_url, `job.${state}`) : undefined,
      data.batch ? this.batchItemEnded(data.batch.id, data.batch.index, state) : undefined,
    ]);
  }

  /** Count a batch item's end; the last one queues the batch's callback (once: the settle script counts each item once). */
  async batchItemEnded(batchId: string, index: number, state: BatchItemEnd): Promise<void> {
    const r = await this.batches.settle(batchId, index, state, Date.now());
    if (r.code === 'ended' && r.callbackUrl) await this.enqueue('batch', batchId, r.callbackUrl, `batch.${r.state}`);
  }

  async close(): Promise<void> {
    await this.q?.close().catch(() => undefined);
  }
}

export const createDeliveries = (config: Config, deps: { redis: RedisClient; keys: HydraKeys }): Deliveries => new Deliveries(deps.redis, deps.keys, deliverySettingsOf(config));
