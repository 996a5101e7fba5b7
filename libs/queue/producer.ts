// Enqueue side: BullMQ Queue objects per queue name, the run-time queue registry, and adding inference jobs
// (validated against the catalog, indexed, workers woken) through the lifecycle protocol.
import { Job, Queue, type JobsOptions } from 'bullmq';
import { addPrioritizedJob } from 'bullmq/dist/esm/scripts/addPrioritizedJob-9.js';
import type { ChainableCommander } from 'ioredis';
import { jobSettingsOf, type Config } from '../config/index.js';
import { nodeQueueName, type QueueInfo } from '../scheduling/index.js';
import { bullConnection, type RedisClient } from './connection.js';
import { checkPayload, JobCatalog, type AdminJob, type InferJob, type JobKind, type JobSettings } from './catalog.js';
import { hydraKeys, type HydraKeys } from './keys.js';
import { JobLifecycle, type SetArgs } from './lifecycle.js';
import { loadScript, QUEUE_SCRIPTS, type ScriptCall } from './scripts.js';

/** BullMQ's addPrioritizedJob takes 9 keys, then 3 arguments (its packed arguments, the job's data, its packed options). */
const BULL_ADD_KEYS = 9;

/**
 * The client BullMQ's `Job.addJob` writes through: it builds its add script's keys and arguments and hands them to
 * `runCommand`; this one runs them inside Hydra's add-job.lua instead. Only the prioritized add is expected (every
 * inference job has a priority): any other means BullMQ chose a path add-job.lua does not include.
 */
const addingClient = (run: (bull: readonly (string | number)[]) => Promise<unknown>) => ({
  runCommand: (name: string, args: (string | number)[]): Promise<unknown> =>
    name.startsWith(`${addPrioritizedJob.name}:`) ? run(args) : Promise.reject(new Error(`BullMQ chose ${name} for an inference job; add-job.lua includes ${addPrioritizedJob.name} only`)),
});

/** How long after the first node of a new job the other nodes named for it are woken (ms). */
export const WAKE_STAGGER_MS = 20;

export class Producer {
  private readonly queues = new Map<string, Queue>();
  private readonly known = new Set<string>();
  readonly lifecycle: JobLifecycle;
  private addScript: ScriptCall<unknown> | null = null;

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
   * Validate, index, add, wake (`wakeNodes`, or every worker process), in one call (scripts/add-job.lua): the index
   * first, so a job Redis holds can always be found; then BullMQ's own add, its keys and arguments built by BullMQ's
   * `Job.addJob`; then the first node's wake, sent only once the job is in its queue. A Redis that refuses the index
   * (out of memory, read-only) refuses the whole call: nothing is added, nobody woken, and the call fails.
   */
  async addInference(jobId: string, payload: InferJob, info: QueueInfo, wakeNodes?: readonly string[]): Promise<void> {
    const data = checkPayload('infer', payload);
    await this.registerQueue(info);
    // On BullMQ's connection, where its add ran before: ioredis copies BullMQ's ~64 commands onto every pipeline of the
    // main connection otherwise (bench/README.md, "The hot path, fourth pass").
    this.addScript ??= loadScript(bullConnection(this.redis), QUEUE_SCRIPTS, 'add-job', { addPrioritizedJob: addPrioritizedJob.content });
    const add = this.addScript;
    const queue = this.queue(info.name);
    const opts = { ...queue.defaultJobOptions, ...this.jobOptions('infer', jobId, data.priority), jobId };
    const index = this.indexEntries(jobId, info.name, data.session);
    // The first node named (warm, with a free slot, in turns: wakeNodesFor) is woken in the add's own call, the others
    // WAKE_STAGGER_MS later: woken together, every node but one ran a losing round for each job (peek, reserve, take
    // nothing, release: four commands; bench/README.md "The hot path"), while woken later they find the job gone with
    // one peek. If the first cannot take it (its slots filled since the view was read), the others take it then.
    const [first, ...rest] = wakeNodes ?? [];
    const channel = this.lifecycle.wakeChannel(first);
    await new Job(queue, JobCatalog.infer.name(data), data, opts, jobId).addJob(
      addingClient((bull) =>
        add(
          [...bull.slice(0, BULL_ADD_KEYS).map(String), ...index.map((e) => e[0])],
          [...bull.slice(BULL_ADD_KEYS), info.name, channel, ...index.flatMap((e) => [e[1], e[3]])],
        ),
      ) as never,
    );
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
