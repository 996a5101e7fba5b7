// Enqueue side: BullMQ Queue objects per queue name, the run-time queue registry, and adding inference jobs
// (validated against the catalog, indexed, workers woken) through the lifecycle protocol.
import { Queue, type JobsOptions } from 'bullmq';
import type { ChainableCommander } from 'ioredis';
import { jobSettingsOf, type Config } from '../config/index.js';
import { nodeQueueName, type QueueInfo } from '../scheduling/index.js';
import { bullConnection, type RedisClient } from './connection.js';
import { checkPayload, JobCatalog, type AdminJob, type InferJob, type JobKind, type JobSettings } from './catalog.js';
import { hydraKeys, type HydraKeys } from './keys.js';
import { JobLifecycle, type SetArgs } from './lifecycle.js';

/** How long after the first node of a new job the other nodes named for it are woken (ms). */
export const WAKE_STAGGER_MS = 20;

export class Producer {
  private readonly queues = new Map<string, Queue>();
  private readonly known = new Set<string>();
  readonly lifecycle: JobLifecycle;

  constructor(
    readonly redis: RedisClient,
    readonly keys: HydraKeys,
    readonly settings: JobSettings,
  ) {
    this.lifecycle = new JobLifecycle({ redis, keys, retentionS: settings.retentionS, settings, queue: (name) => this.queue(name) });
  }

  /** One Queue object per name, sharing the producer connection. */
  queue(name: string): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: bullConnection(this.redis), prefix: this.keys.prefix, skipVersionCheck: true });
      q.on('error', () => {}); // connection errors surface on the calls themselves
      this.queues.set(name, q);
    }
    return q;
  }

  /** Record a queue created at run time so workers and Bull Board find it. */
  async registerQueue(info: QueueInfo): Promise<void> {
    if (this.known.has(info.name)) return;
    await this.redis.hsetnx(this.keys.queues, info.name, JSON.stringify(info));
    this.known.add(info.name);
  }

  async listQueues(): Promise<QueueInfo[]> {
    const all = await this.redis.hgetall(this.keys.queues);
    return Object.values(all).map((v) => JSON.parse(v) as QueueInfo);
  }

  /** BullMQ options of a job of `kind` (from the catalog). */
  jobOptions(kind: JobKind, jobId: string, priority = 5): JobsOptions {
    return JobCatalog[kind].options(this.settings, jobId, priority);
  }

  /**
   * Validate, index, add, wake (`wakeNodes`, or every worker process). The index goes first, on BullMQ's connection in
   * the add's own write (one connection runs its commands in order, so Redis records the index before it adds the job:
   * if Redis goes away right after the add, the job can still be found). A Redis that refuses the index (out of memory,
   * read-only) refuses BullMQ's add script in the same way; the call fails if either did.
   */
  async addInference(jobId: string, payload: InferJob, info: QueueInfo, wakeNodes?: readonly string[]): Promise<void> {
    const data = checkPayload('infer', payload);
    await this.registerQueue(info);
    // Straight on the connection, not in a pipeline: ioredis copies BullMQ's ~64 commands onto every pipeline of it,
    // which cost the API 0.2 ms of CPU per job (bench/README.md, "The hot path, fourth pass"). Sent in this turn, the
    // SETs leave in the add's write all the same (coalesceWrites), and before it.
    const bull = bullConnection(this.redis);
    const indexed = Promise.all(this.indexEntries(jobId, info.name, data.session).map((e) => bull.set(...e)));
    const added = this.queue(info.name).add(JobCatalog.infer.name(data), data, this.jobOptions('infer', jobId, data.priority));
    await Promise.all([indexed, added]);
    // The first node named (warm, with a free slot, in turns: wakeNodesFor) is woken now, the others WAKE_STAGGER_MS
    // later: woken together, every node but one ran a losing round for each job (peek, reserve, take nothing, release:
    // four commands; bench/README.md "The hot path"), while woken later they find the job gone with one peek. If the
    // first cannot take it (its slots filled since the view was read), the others take it then.
    const [first, ...rest] = wakeNodes ?? [];
    await this.lifecycle.wake(this.redis.pipeline(), info.name, first === undefined ? undefined : [first]).exec();
    if (rest.length > 0) {
      setTimeout(() => void this.lifecycle.wake(this.redis.pipeline(), info.name, rest).exec().catch(() => undefined), WAKE_STAGGER_MS).unref();
    }
  }

  /**
   * A new job's index (which queue holds it) and, with a session, its session key (session affinity: the dispatcher's
   * peek reads a head's session, then the node that served it, peek-heads.lua), added to `c`.
   */
  indexJob<C extends ChainableCommander>(c: C, jobId: string, queue: string, session?: string): C {
    for (const e of this.indexEntries(jobId, queue, session)) c.set(...e);
    return c;
  }

  /** indexJob's SETs, as arguments. */
  private indexEntries(jobId: string, queue: string, session?: string): SetArgs[] {
    const index = this.lifecycle.indexEntry(jobId, queue);
    return session ? [index, [this.keys.jobSession(jobId), session, 'EX', this.settings.retentionS]] : [index];
  }

  /** A model-management job for one node, in that node's own queue (validated, indexed, the node woken). */
  async addAdmin(jobId: string, payload: AdminJob, priority = 8): Promise<string> {
    const data = checkPayload('admin', payload);
    const info: QueueInfo = { kind: 'node', name: nodeQueueName(data.node_id), node: data.node_id };
    await this.registerQueue(info);
    await this.lifecycle.index(this.redis.pipeline(), jobId, info.name).exec();
    await this.queue(info.name).add(JobCatalog.admin.name(data), data, this.jobOptions('admin', jobId, priority));
    await this.lifecycle.wake(this.redis.pipeline(), info.name, [data.node_id]).exec();
    return info.name;
  }

  /** The queue holding a job, or null when the id is unknown (or expired). */
  async queueOfJob(jobId: string): Promise<Queue | null> {
    const name = await this.lifecycle.queueOf(jobId);
    return name ? this.queue(name) : null;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}

/** The producer of a process, from its config and its (fail-fast or worker) connection. */
export const createProducer = (config: Config, deps: { redis: RedisClient }): Producer => new Producer(deps.redis, hydraKeys(config.QUEUE_PREFIX), jobSettingsOf(config));
