// The pull loop: peek every eligible queue's head in one Lua call, pick by priority and age, reserve memory atomically, take the job.
// Admin jobs (pull/delete/unload, only ever in this node's own queue) are taken first, without a memory reservation
// and without an inference slot: a model download must not wait behind, nor block, inference.
//
// Shape (b) of DESIGN.md: one BullMQ Worker per queue, used without a processor (manual fetching). Chosen because
// it gives exact memory admission per job and priority across queues; per-class Workers (a) cannot coordinate.
import { randomUUID } from 'node:crypto';
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { NodeRecord } from '../../libs/core/index.js';
import type { Logger } from '../../libs/logger/index.js';
import { backoffDelay, headPeeker, kindOfJobName, modelOfJobName, type HeadPeeker, type HydraKeys } from '../../libs/queue/index.js';
import type { NodeRegistry } from '../../libs/registry/index.js';
import { eligibleQueues, isServing, nodeQualifies, orderHeads, sameModel, type DispatchChoice, type QueueHead, type QueueInfo } from '../../libs/scheduling/index.js';
import type { CircuitBreaker } from './circuit-breaker.js';
import type { WorkerSettings } from './settings.js';

export interface ActiveJob {
  job: Job;
  token: string;
  abort: AbortController;
  /** For admin jobs `warm` is false, so the node agent reports the node's models soon after (as after a cold load). */
  choice: DispatchChoice;
  /** From the job name: admin jobs hold no memory reservation and no inference slot. */
  kind: 'infer' | 'admin';
}

const isAdminName = (name: string): boolean => kindOfJobName(name) === 'admin';

export interface DispatcherDeps {
  redis: Redis;
  registry: NodeRegistry;
  keys: HydraKeys;
  logger: Logger;
  breaker: CircuitBreaker;
  /** Latest record of this node (from the last probe). */
  node: () => NodeRecord | null;
  /** Latest view of the other nodes (for delay scheduling). */
  others: () => readonly NodeRecord[];
  queues: () => readonly QueueInfo[];
  /** Runs a taken job to its end (completed, failed or handed back). Must not throw. */
  run: (a: ActiveJob) => Promise<void>;
}

export class Dispatcher {
  private readonly workers = new Map<string, Worker>();
  readonly active = new Map<string, ActiveJob>();
  private running = false;
  private wakeUp: (() => void) | null = null;
  private woken = false;
  private loopDone: Promise<void> = Promise.resolve();
  private readonly peekHeads: HeadPeeker;

  constructor(
    private readonly s: WorkerSettings,
    private readonly d: DispatcherDeps,
  ) {
    this.peekHeads = headPeeker(d.redis, d.keys);
  }

  start(): void {
    this.running = true;
    this.loopDone = this.loop();
  }

  /** Look at the queues now (a job was added, a slot freed, a model loaded). */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  /** Stop taking jobs. Active jobs are left to the caller (drain). */
  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await this.loopDone;
  }

  async close(): Promise<void> {
    await Promise.all([...this.workers.values()].map((w) => w.close(true).catch(() => undefined)));
  }

  private worker(queue: string): Worker {
    let w = this.workers.get(queue);
    if (!w) {
      const { keys } = this.d;
      const { backoffMs, backoffMaxMs } = this.s;
      w = new Worker(queue, undefined, {
        connection: this.d.redis,
        prefix: keys.prefix,
        autorun: false,
        skipVersionCheck: true,
        lockDuration: this.s.lockDurationMs,
        stalledInterval: this.s.stalledIntervalMs,
        maxStalledCount: this.s.maxStalledCount,
        settings: { backoffStrategy: (attemptsMade: number) => backoffDelay(attemptsMade, backoffMs, backoffMaxMs) },
      });
      w.on('error', (err) => this.d.logger.warn({ queue, err: err.message }, 'queue worker error'));
      void w.startStalledCheckTimer().catch((err: Error) => this.d.logger.warn({ queue, err: err.message }, 'stalled checker failed to start'));
      this.workers.set(queue, w);
    }
    return w;
  }

  private async sleep(ms: number): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wakeUp = () => {
        clearTimeout(t);
        resolve();
      };
    });
    this.wakeUp = null;
    this.woken = false;
  }

  /** The head of every queue (priority, age, model), with whether this node just failed it and whether it is an admin job. */
  private async peek(queues: readonly QueueInfo[], now: number): Promise<(QueueHead & { excluded: boolean; admin: boolean })[]> {
    const heads = await this.peekHeads(queues.map((q) => q.name), this.s.nodeId, now);
    return heads.map(({ name, ...h }) => ({ ...h, model: modelOfJobName(name), admin: isAdminName(name) }));
  }

  /** Inference jobs running: the ones that count against the node's slots. */
  private inferenceActive(): number {
    let n = 0;
    for (const a of this.active.values()) if (a.kind === 'infer') n++;
    return n;
  }

  private async loop(): Promise<void> {
    while (this.running) {
      try {
        const waitMs = await this.tick();
        if (waitMs > 0) await this.sleep(waitMs);
      } catch (err) {
        this.d.logger.warn({ err: (err as Error).message }, 'dispatch round failed; retrying');
        await this.sleep(Math.min(this.s.pollMs, 500));
      }
    }
  }

  /** One dispatch round. Returns how long to sleep before the next (0 = go again now). */
  private async tick(): Promise<number> {
    const node = this.d.node();
    const now = Date.now();
    if (!node || !node.healthy) return this.s.pollMs;
    if (!this.d.breaker.allow(now)) return Math.min(this.s.pollMs, 250);
    // With every slot busy only the node's own queue is looked at, for admin jobs.
    const full = this.inferenceActive() >= this.s.slots;
    const queues = eligibleQueues(this.d.queues(), node).filter((q) => !full || q.kind === 'node');
    if (queues.length === 0) return this.s.pollMs;
    // Workers (and so stalled-job checkers) for every queue this node could serve, so a crashed node's jobs
    // are recovered by any node that qualifies, not only by ones that happened to pull from that queue before.
    for (const q of queues) this.worker(q.name);
    const others = this.d.others();
    const otherCanServe = (queue: string) => {
      const info = queues.find((q) => q.name === queue);
      return info?.kind === 'class' && others.some((o) => isServing(o) && nodeQualifies(o, info.model, info.min_vram_mb).ok);
    };
    // A node that just failed a job leaves its next attempt to another qualifying node.
    const peeked = (await this.peek(queues, now)).filter((h) => !(h.excluded && otherCanServe(h.queue)));
    // Admin heads skip ordering and delay scheduling: they are for this node only and hold no memory.
    const admin = peeked.filter((h) => h.admin).map((head): DispatchChoice => ({ head, warm: false, reason: `model management (${head.model}) on ${node.id}` }));
    const heads = full ? [] : peeked.filter((h) => !h.admin);
    if (admin.length === 0 && heads.length === 0) return this.s.pollMs;
    const { choices: ordered, retryInMs } = orderHeads(heads, { node, others, now, localityWaitMs: this.s.localityWaitMs });
    const choices: [DispatchChoice, boolean][] = [...admin.map((c): [DispatchChoice, boolean] => [c, true]), ...ordered.map((c): [DispatchChoice, boolean] => [c, false])];
    for (const [choice, headIsAdmin] of choices) {
      const taken = await this.tryTake(node, choice, headIsAdmin);
      if (taken) return 0;
    }
    return retryInMs !== null ? Math.min(retryInMs + 1, this.s.pollMs) : this.s.pollMs;
  }

  /**
   * Reserve memory for the head's model, then take the next job of that queue (it may not be the peeked one).
   * The reservation is keyed by the BullMQ lock token, which also identifies the job run while it holds it.
   * Admin jobs take none: a pull's model is not on the node yet, and delete/unload free memory rather than use it.
   */
  private async tryTake(node: NodeRecord, choice: DispatchChoice, headIsAdmin: boolean): Promise<boolean> {
    const { registry } = this.d;
    const { lockDurationMs } = this.s;
    const token = randomUUID();
    const needFor = (model: string) => node.models_available.find((m) => sameModel(m.name, model))?.need_mb;
    const reserve = async (model: string): Promise<boolean> => {
      const need = needFor(model);
      if (need === undefined) return false; // node queue holding a model this node does not have
      const admitted = await registry.reserve(node.id, token, model, need, node.capacity_mb, Date.now(), lockDurationMs * 2);
      if (!admitted.ok) this.d.logger.debug({ model, need, used: admitted.usedMb, capacity: node.capacity_mb }, 'does not fit now');
      return admitted.ok;
    };
    if (!headIsAdmin && !(await reserve(choice.head.model))) return false;
    let job: Job | undefined;
    try {
      job = await this.worker(choice.head.queue).getNextJob(token, { block: false });
    } catch (err) {
      await registry.release(node.id, token);
      throw err;
    }
    if (!job || !job.id) {
      await registry.release(node.id, token);
      return false;
    }
    const kind = isAdminName(job.name) ? 'admin' : 'infer';
    const model = modelOfJobName(job.name);
    if (kind === 'admin' && !headIsAdmin) {
      // An admin job came first where an inference head was peeked (the node queue mixes them): it needs no memory.
      await registry.release(node.id, token);
    } else if (kind === 'infer' && (headIsAdmin || !sameModel(model, choice.head.model))) {
      // A different job than peeked came first (node queues mix models and kinds): admit it for its own model.
      if (!(await reserve(model))) {
        await registry.release(node.id, token);
        await job.moveToDelayed(Date.now() + 250, token).catch(() => undefined);
        return false;
      }
    }
    if (kind === 'infer') this.d.breaker.started();
    const a: ActiveJob = { job, token, abort: new AbortController(), choice: kind === 'admin' ? { ...choice, warm: false, reason: `model management (${model}) on ${node.id}` } : choice, kind };
    this.active.set(job.id, a);
    void this.d.run(a).finally(() => {
      this.active.delete(job.id!);
      if (kind === 'infer') void registry.release(node.id, token).catch(() => undefined);
      this.wake();
    });
    return true;
  }
}
