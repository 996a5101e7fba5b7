// The pull loop: peek every eligible queue's head in one Lua call, pick by priority and age, reserve memory atomically, take the job.
// Admin jobs (pull/delete/unload, only ever in this node's own queue) are taken first, without a memory reservation
// and without an inference slot: a model download must not wait behind, nor block, inference. A node queue mixes
// models: a head that does not fit now is bypassed (for a bounded time) by a job behind it that fits.
//
// Shape (b) of DESIGN.md: one BullMQ Worker per queue, used without a processor (manual fetching). Chosen because
// it gives exact memory admission per job and priority across queues; per-class Workers (a) cannot coordinate.
import { randomUUID } from 'node:crypto';
import { MetricsTime, Worker, type Job } from 'bullmq';
import type { NodeRecord } from '../../libs/core/index.js';
import type { Logger } from '../../libs/logger/index.js';
import { backoffDelay, bullConnection, headPeeker, kindOfJobName, modelOfJobName, type HeadPeeker, type HydraKeys, type RedisClient } from '../../libs/queue/index.js';
import { jobTaker, type JobTaker, type NodeRegistry, type NodeView, type ReserveOutcome, type TakeRequest } from '../../libs/registry/index.js';
import {
  bestFit,
  canTakeModelNow,
  eligibleQueues,
  expectedTokensPerS,
  needMbFor,
  isServing,
  nodeQualifies,
  orderHeads,
  sameModel,
  type DispatchChoice,
  type FitCandidate,
  type QueueHead,
  type QueueInfo,
} from '../../libs/scheduling/index.js';
import type { SharedBreaker } from './circuit-breaker.js';
import { DispatchTiming, processTiming } from './dispatch-timing.js';
import type { WorkerSettings } from './settings.js';

export interface ActiveJob {
  job: Job;
  token: string;
  abort: AbortController;
  /** For admin jobs `warm` is false, so the node agent reports the node's models soon after (as after a cold load). */
  choice: DispatchChoice;
  /** From the job name: admin jobs hold no memory reservation and no inference slot. */
  kind: 'infer' | 'admin';
  /** Whether its cancel flag was up as it was taken (the one-call take reads it); undefined when not read. */
  cancelled?: boolean;
  /** The take wrote its liveness entry (take.lua). */
  tracked?: boolean;
  /** Its end was written in one call (job-end.lua), which gave its reservation back and removed its liveness entry. */
  ended?: boolean;
}

const isAdminName = (name: string): boolean => kindOfJobName(name) === 'admin';

/** How many jobs of a node queue a round may take in order to find one that fits behind a blocked head. */
const HOL_DEPTH = 4;

/** What a take attempt started: nothing, an inference job, or an admin job. */
type Taken = false | 'infer' | 'admin';

/** A take attempt: what it started, and when it started nothing because of the reservation, why. */
interface TakeResult {
  took: Taken;
  refused?: ReserveOutcome;
  /** A job was taken and its queue had no other ready job then (take.lua's count). */
  drained?: boolean;
}

export interface DispatcherDeps {
  redis: RedisClient;
  registry: NodeRegistry;
  keys: HydraKeys;
  logger: Logger;
  /** The node's breaker, shared by its processes (`admit` claims the half-open probe for the whole node). */
  breaker: SharedBreaker;
  /** Latest record of this node (from the last probe). */
  node: () => NodeRecord | null;
  /** Latest view of the other nodes, with their active jobs (for delay scheduling and best fit). */
  others: () => readonly NodeView[];
  /** This node as the registry lists it (reservations of all its processes), for best fit. */
  self: () => NodeView | undefined;
  queues: () => readonly QueueInfo[];
  /** The process's queue Workers (shared with its other node agents). */
  workers: QueueWorkers;
  /** The liveness entry a take writes for a job taken under `token` from `queue` (liveness.ts); null when off. */
  liveEntry?: (queue: string, token: string) => { key: string; value: string } | null;
  /** Runs a taken job to its end (completed, failed or handed back). Must not throw. */
  run: (a: ActiveJob) => Promise<void>;
}

/**
 * The BullMQ Workers of one process, one per queue, shared by every node agent of the process: each Worker holds its
 * own blocking connection and a stalled-job checker, so a process serving many nodes (DISCOVER) pays for them once per
 * queue, not once per node × queue. A Worker is not tied to a node: `getNextJob(token)` takes a job under the caller's
 * lock token, and the job is completed, failed or handed back with that token.
 */
export class QueueWorkers {
  private readonly workers = new Map<string, Worker>();

  constructor(
    private readonly s: Pick<WorkerSettings, 'lockDurationMs' | 'stalledIntervalMs' | 'maxStalledCount' | 'backoffMs' | 'backoffMaxMs'>,
    private readonly d: { redis: RedisClient; keys: HydraKeys; logger: Logger; procId?: string },
  ) {}

  get(queue: string): Worker {
    let w = this.workers.get(queue);
    if (!w) {
      const { keys } = this.d;
      const { backoffMs, backoffMaxMs } = this.s;
      w = new Worker(queue, undefined, {
        connection: bullConnection(this.d.redis),
        prefix: keys.prefix,
        autorun: false,
        skipVersionCheck: true,
        lockDuration: this.s.lockDurationMs,
        stalledInterval: this.s.stalledIntervalMs,
        maxStalledCount: this.s.maxStalledCount,
        // The process id as the Worker's name: BullMQ writes it into the job as it takes it (`processedBy`, no extra
        // command), and the API finds the running job's node in the process's liveness record (job view).
        ...(this.d.procId ? { name: this.d.procId } : {}),
        // BullMQ's own completed/failed counts (and per-minute points for a week) stay at 0 without it (docs/metrics.md).
        metrics: { maxDataPoints: MetricsTime.ONE_WEEK },
        settings: { backoffStrategy: (attemptsMade: number) => backoffDelay(attemptsMade, backoffMs, backoffMaxMs) },
      });
      w.on('error', (err) => this.d.logger.warn({ queue, err: err.message }, 'queue worker error'));
      void w.startStalledCheckTimer().catch((err: Error) => this.d.logger.warn({ queue, err: err.message }, 'stalled checker failed to start'));
      this.workers.set(queue, w);
    }
    return w;
  }

  async close(): Promise<void> {
    await Promise.all([...this.workers.values()].map((w) => w.close(true).catch(() => undefined)));
  }
}

export class Dispatcher {
  readonly active = new Map<string, ActiveJob>();
  private running = false;
  private wakeUp: (() => void) | null = null;
  private woken = false;
  /**
   * The last round left work behind for want of room: every slot busy, or a head refused (memory, backend slot,
   * fence). Only then can a job's end (its slot and memory freed) let a new round take something; otherwise a job's
   * end wakes nothing, and new jobs wake the dispatcher through their wake message.
   */
  private heldBack = false;
  /**
   * A job this node could take was added while every slot was busy, and its wake went elsewhere or was not acted on
   * here (`slotWanted`): the next job end runs a round. Without it such a job waited for the next poll (POLL_MS) when
   * the wake for every process found this agent full and woke nobody (test/dispatch-rounds.int.test.ts). Cleared by
   * the next round, which looks at the queues itself.
   */
  private wanted = false;
  private loopDone: Promise<void> = Promise.resolve();
  private readonly peekHeads: HeadPeeker;
  private readonly take: JobTaker;
  /** Round timings, only with DISPATCH_TIMING_LOG_MS (bench/scale.bench.ts reads them). */
  private readonly timing: DispatchTiming | null;

  constructor(
    private readonly s: WorkerSettings,
    private readonly d: DispatcherDeps,
  ) {
    this.peekHeads = headPeeker(d.redis, d.keys);
    this.take = jobTaker(d.redis, d.keys);
    this.timing = s.dispatchTimingLogMs > 0 ? new DispatchTiming(s.dispatchTimingLogMs, d.logger.child({ node: s.nodeId }), processTiming(s.dispatchTimingLogMs, d.logger)) : null;
  }

  start(): void {
    this.running = true;
    this.loopDone = this.loop();
  }

  /** Inference slots free now (this process's view: what its own jobs hold). */
  get freeSlots(): number {
    return Math.max(0, this.s.slots - this.inferenceActive());
  }

  /** Look at the queues now (a job was added, a slot freed, a model loaded). */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  /** A job waits that this node could take once a slot frees (its wake found every slot busy): see `wanted`. */
  slotWanted(): void {
    this.wanted = true;
  }

  /** Stop taking jobs. Active jobs are left to the caller (drain). */
  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await this.loopDone;
    this.timing?.close();
  }

  private worker(queue: string): Worker {
    return this.d.workers.get(queue);
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
    const { breaker } = this.d;
    // The breaker's shared state is read again (at most every SYNC_MS) beside the round's peek when the mirror lets
    // jobs start, so the two share one round trip and only the take waits for the answer: read first, it was a round
    // trip of its own before the peek of every job that came after a quiet spell. One the mirror holds shut is read
    // first, and no peek is made while it stays so.
    const shut = !breaker.allow(now);
    const admission = breaker.admit(now);
    if (shut && !(await admission).ok) return Math.min(this.s.pollMs, 250);
    let took: Taken = false;
    try {
      const t0 = this.timing ? performance.now() : 0;
      const r = await this.round(node, now, admission);
      this.timing?.round(performance.now() - t0);
      took = r.took;
      return r.waitMs;
    } finally {
      // The node's single half-open probe was claimed for this round but no inference job started: free it.
      if ((await admission).probe && took !== 'infer') breaker.neutral();
    }
  }

  /**
   * Look at the heads and take one job if any can run; `waitMs`: how long to sleep before the next round (0 after a
   * take that may have left more to take).
   */
  private async round(node: NodeRecord, now: number, admission: Promise<{ ok: boolean }>): Promise<{ took: Taken; waitMs: number }> {
    const idle = (waitMs: number) => ({ took: false as const, waitMs });
    // With every slot busy only the node's own queue is looked at, for admin jobs.
    const full = this.inferenceActive() >= this.s.slots;
    this.heldBack = full;
    this.wanted = false;
    const queues = eligibleQueues(this.d.queues(), node).filter((q) => !full || q.kind === 'node');
    if (queues.length === 0) return idle(this.s.pollMs);
    // Workers (and so stalled-job checkers) for every queue this node could serve, so a crashed node's jobs
    // are recovered by any node that qualifies, not only by ones that happened to pull from that queue before.
    for (const q of queues) this.worker(q.name);
    const others = this.d.others();
    const otherCanServe = (queue: string) => {
      const info = queues.find((q) => q.name === queue);
      return info?.kind === 'class' && others.some((o) => isServing(o) && nodeQualifies(o, info.model, info.min_vram_mb).ok);
    };
    // A node that just failed a job leaves its next attempt to another qualifying node.
    const peeking = this.peek(queues, now);
    if (!(await admission).ok) {
      await peeking.catch(() => undefined);
      return idle(Math.min(this.s.pollMs, 250));
    }
    const peeked = (await peeking).filter((h) => !(h.excluded && otherCanServe(h.queue)));
    // Admin heads skip ordering and delay scheduling: they are for this node only and hold no memory.
    const admin = peeked.filter((h) => h.admin).map((head): DispatchChoice => ({ head, warm: false, reason: `model management (${head.model}) on ${node.id}` }));
    const heads = full ? [] : peeked.filter((h) => !h.admin);
    if (admin.length === 0 && heads.length === 0) return idle(this.s.pollMs);
    this.heldBack = true;
    // Pruned against every peeked head (a full node still peeks its node queue), so the fence clock keeps running.
    this.pruneBlocked(peeked);
    const o0 = this.timing ? performance.now() : 0;
    const c0 = this.timing ? process.cpuUsage() : null;
    const { choices: ordered, retryInMs } = orderHeads(heads, {
      node,
      others,
      now,
      localityWaitMs: this.s.localityWaitMs,
      bestFitWaitMs: this.s.bestFitWaitMs,
      betterFit: (head) => this.betterFit(node, head, queues, others),
    });
    if (this.timing && c0) {
      const c = process.cpuUsage(c0);
      this.timing.order(performance.now() - o0, (c.user + c.system) / 1000);
    }
    const choices: [DispatchChoice, boolean][] = [...admin.map((c): [DispatchChoice, boolean] => [c, true]), ...ordered.map((c): [DispatchChoice, boolean] => [c, false])];
    // The fence goes to the most urgent class-queue head that does not fit now only because memory is in use. A head
    // refused only for want of one of its model's backend slots ('busy') waits for its own model's jobs, not for
    // memory: it neither gets the fence nor keeps a less urgent head that needs memory from getting it (under a flood
    // of one model at its slot limit, the flood's head is always busy and the big job would never be fenced).
    let fenceFor: DispatchChoice | null = null;
    let fenceDecided = full;
    try {
      for (const [choice, headIsAdmin] of choices) {
        const r = await this.tryTake(node, choice, headIsAdmin);
        if (r.took) {
          // Another round at once, unless this take emptied the only queue that had a head: a job added since the
          // peek sends a wake (it sets `woken`, so the sleep returns at once), and a round now would find nothing.
          // One peek per job fewer when jobs come one at a time.
          // A job that arrives while every slot is busy finds the node full in its wake's round, which sets `heldBack`.
          const more = !r.drained || peeked.some((h) => h.queue !== choice.head.queue);
          this.heldBack = more;
          return { took: r.took, waitMs: more ? 0 : this.s.pollMs };
        }
        if (!fenceDecided && !headIsAdmin && r.refused === 'full') {
          fenceDecided = true;
          if (await this.putUpFence(node, choice)) fenceFor = choice;
        }
      }
      return idle(retryInMs !== null ? Math.min(retryInMs + 1, this.s.pollMs) : this.s.pollMs);
    } finally {
      if (!full && this.fencing && this.fencing !== fenceFor?.head.jobId) await this.takeDownFence(node.id);
    }
  }

  /** The job this process holds node memory back for (registry fence), if any. */
  private fencing: string | null = null;

  /**
   * Hold memory back for `choice` (it does not fit now because of memory held by running jobs, but fits this node's
   * capacity): younger, less urgent jobs that would delay it are refused from now on (reserve.lua), so it starts as
   * soon as running jobs end, however many small jobs keep arriving. A node queue's head is not fenced here: its
   * bypass has its own time bound. One node fences a given job; true when this one does.
   */
  private async putUpFence(node: NodeRecord, choice: DispatchChoice): Promise<boolean> {
    const info = this.d.queues().find((q) => q.name === choice.head.queue);
    const base = this.needFor(node, choice.head.model);
    const need = base === undefined ? undefined : Math.max(base, this.ownNeed.get(choice.head.jobId) ?? 0);
    if (info?.kind !== 'class' || need === undefined || need > node.capacity_mb) return false;
    if (this.fencing && this.fencing !== choice.head.jobId) await this.takeDownFence(node.id);
    const r = await this.d.registry.fence(node.id, { id: choice.head.jobId, model: choice.head.model, mb: need, bullPriority: choice.head.priority }, Date.now(), this.fenceTtlMs());
    if (!r.ok) return false;
    if (this.fencing !== choice.head.jobId) this.d.logger.info({ jobId: choice.head.jobId, model: choice.head.model, needMb: need }, 'holding memory back for a job that does not fit now (fence)');
    this.fencing = choice.head.jobId;
    return true;
  }

  private async takeDownFence(nodeId: string): Promise<void> {
    const jobId = this.fencing;
    this.fencing = null;
    if (jobId) await this.d.registry.unfence(nodeId, jobId).catch(() => undefined);
  }

  /** A fence lives a few rounds unless refreshed: a crashed process's fence does not outlast it for long. */
  private fenceTtlMs(): number {
    return Math.max(3000, 3 * this.s.pollMs);
  }

  /**
   * Best fit for a class-queue head that is cold here: another node that qualifies, could start it now and fits it
   * better (`bestFit`: warm there, or less memory left over), or null when this node is the best place.
   */
  private betterFit(node: NodeRecord, head: QueueHead, queues: readonly QueueInfo[], others: readonly NodeView[]): string | null {
    const info = queues.find((q) => q.name === head.queue);
    if (info?.kind !== 'class') return null;
    const myNeed = this.needFor(node, head.model);
    if (myNeed === undefined) return null;
    const self = this.d.self();
    const speed = (v: Pick<NodeRecord, 'perf'> | undefined) => {
      const t = v ? expectedTokensPerS(v, head.model) : undefined;
      return t === undefined ? {} : { tokensPerS: t };
    };
    const candidates: FitCandidate[] = [{ id: node.id, warm: false, freeMb: node.capacity_mb - (self?.reserved_mb ?? 0), needMb: myNeed, ...speed(self) }];
    for (const o of others) {
      if (o.id === node.id || !canTakeModelNow(o, head.model)) continue;
      const q = nodeQualifies(o, info.model, info.min_vram_mb);
      if (!q.ok) continue;
      candidates.push({ id: o.id, warm: o.models_loaded.some((l) => sameModel(l.name, head.model)), freeMb: o.capacity_mb - o.reserved_mb, needMb: q.need_mb, ...speed(o) });
    }
    if (candidates.length < 2) return null;
    const best = bestFit(candidates);
    return best && best !== node.id ? best : null;
  }

  /** Memory needed by `model` on this node (MB), or undefined when the node does not have it. */
  private needFor(node: NodeRecord, model: string): number | undefined {
    return node.models_available.find((m) => sameModel(m.name, model))?.need_mb;
  }

  /**
   * Reserve `model`'s memory and one of its backend slots under `token` (one atomic step across the node's
   * processes); `head` is the job it is for when known (its priority meets the node's fence). Answers why not.
   */
  private async reserve(node: NodeRecord, token: string, model: string, head?: { jobId: string; priority: number }, mb?: number): Promise<ReserveOutcome> {
    const req = this.reservation(node, model, head, mb);
    if (!req) return 'full'; // node queue holding a model this node does not have
    const r = await this.d.registry.reserve({ nodeId: node.id, token, now: Date.now(), ...req });
    if (!r.ok) this.d.logger.debug({ model, need: req.mb, used: r.usedMb, capacity: node.capacity_mb, why: r.why }, 'not admitted now');
    return r.why;
  }

  /** What a reservation of `model` on this node asks for (`mb` or the model's need), or undefined when the node does not have it. */
  private reservation(node: NodeRecord, model: string, head?: { jobId: string; priority: number }, mb?: number): TakeRequest['reserve'] {
    const need = mb ?? this.needFor(node, model);
    if (need === undefined) return undefined;
    return {
      model,
      mb: need,
      capacityMb: node.capacity_mb,
      ttlMs: this.s.lockDurationMs * 2,
      parallel: node.parallel ?? 1,
      ...(head ? { forJobId: head.jobId, bullPriority: head.priority } : {}),
    };
  }

  /**
   * Reserve memory for the head's model, then take the next job of that queue (it may not be the peeked one).
   * The reservation is keyed by the BullMQ lock token, which also identifies the job run while it holds it.
   * Admin jobs take none: a pull's model is not on the node yet, and delete/unload free memory rather than use it.
   * A node queue mixes models: when its head does not fit now, a job behind it that fits may run (`bypass`).
   */
  private async tryTake(node: NodeRecord, choice: DispatchChoice, headIsAdmin: boolean): Promise<TakeResult> {
    const { registry } = this.d;
    const token = randomUUID();
    const isNodeQueue = this.d.queues().some((q) => q.name === choice.head.queue && q.kind === 'node');
    const reserve = headIsAdmin ? undefined : this.reservation(node, choice.head.model, choice.head);
    const refused = (why: Exclude<ReserveOutcome, 'admitted'>): Promise<TakeResult> | TakeResult => (isNodeQueue ? this.bypass(node, choice).then((took) => ({ took })) : { took: false, refused: why });
    // A node queue holding a model this node does not have.
    if (!headIsAdmin && !reserve) return refused('full');
    // Reserve and take in one call (take.lua): the reservation is given back there when no job came.
    let taken;
    const live = this.d.liveEntry?.(choice.head.queue, token) ?? null;
    try {
      taken = await this.take(this.worker(choice.head.queue), { nodeId: node.id, token, now: Date.now(), live, ...(reserve ? { reserve } : {}) });
    } catch (err) {
      await registry.release(node.id, token).catch(() => undefined);
      throw err;
    }
    if (taken.outcome === 'refused') {
      this.d.logger.debug({ model: choice.head.model, need: reserve?.mb, capacity: node.capacity_mb, why: taken.why }, 'not admitted now');
      return refused(taken.why);
    }
    if (taken.outcome === 'empty') return { took: false };
    const { job, cancelled, left } = taken;
    if (!job.id) {
      await registry.release(node.id, token);
      return { took: false };
    }
    // A taken job handed back (below) runs nowhere here: its liveness entry goes with it.
    const handBack = async () => {
      await this.handBack(choice.head.queue, [{ job, token }]);
      if (live) await this.d.redis.hdel(live.key, job.id!).catch(() => undefined);
    };
    const kind = isAdminName(job.name) ? 'admin' : 'infer';
    const model = modelOfJobName(job.name);
    if (kind === 'admin' && !headIsAdmin) {
      // An admin job came first where an inference head was peeked (the node queue mixes them): it needs no memory.
      await registry.release(node.id, token);
    } else if (kind === 'infer' && (headIsAdmin || !sameModel(model, choice.head.model))) {
      // A different job than peeked came first (node queues mix models and kinds): admit it for its own model, or
      // hand it back to the front of its queue (its place kept) and let the next round look behind it.
      if ((await this.reserve(node, token, model, { jobId: job.id, priority: job.priority })) !== 'admitted') {
        await registry.release(node.id, token);
        await handBack();
        return { took: false };
      }
    }
    if (kind === 'infer') {
      // A request with its own num_ctx loads the model with that context (Ollama reloads it): admit what it needs.
      const own = this.needOfJob(node, model, job);
      const base = this.needFor(node, model) ?? 0;
      if (own > base) {
        const why = await this.reserve(node, token, model, { jobId: job.id, priority: job.priority }, own);
        if (why !== 'admitted') {
          this.ownNeed.set(job.id, own);
          await registry.release(node.id, token);
          await handBack();
          return { took: false, refused: why };
        }
      }
      this.ownNeed.delete(job.id);
    }
    return { took: this.launch(node, job, token, kind, choice, { cancelled, tracked: live !== null }), drained: left === 0 };
  }

  /** Jobs whose own num_ctx needs more than the model's default need (MB), remembered for the fence. */
  private readonly ownNeed = new Map<string, number>();

  /** Memory a taken job needs: at its own `options.num_ctx` when it sets one, else the model's need at NUM_CTX. */
  private needOfJob(node: NodeRecord, model: string, job: Job): number {
    const m = node.models_available.find((x) => sameModel(x.name, model));
    if (!m) return 0;
    const numCtx = (job.data as { call?: { options?: { num_ctx?: unknown } } }).call?.options?.num_ctx;
    if (typeof numCtx !== 'number' || numCtx === node.num_ctx) return m.need_mb;
    return needMbFor(m, numCtx, node.parallel ?? 1);
  }

  /** Run a taken job (its memory already reserved under `token` for inference); answers what it started. */
  private launch(node: NodeRecord, job: Job, token: string, kind: 'infer' | 'admin', choice: DispatchChoice, taken: Pick<ActiveJob, 'cancelled' | 'tracked'> = {}): Taken {
    const { registry } = this.d;
    const model = modelOfJobName(job.name);
    if (kind === 'infer') this.d.breaker.started(Date.now());
    // Session affinity: this node now holds the session's KV cache; its next turn is offered here first.
    const session = kind === 'infer' ? (job.data as { session?: unknown }).session : undefined;
    if (typeof session === 'string' && this.s.sessionAffinityS > 0) {
      void this.d.redis.set(this.d.keys.sessionNode(session), node.id, 'EX', this.s.sessionAffinityS).catch(() => undefined);
    }
    const a: ActiveJob = {
      job,
      token,
      abort: new AbortController(),
      choice: kind === 'admin' ? { ...choice, warm: false, reason: `model management (${model}) on ${node.id}` } : choice,
      kind,
      ...taken,
    };
    const id = job.id!;
    this.active.set(id, a);
    void this.d.run(a).finally(() => {
      this.active.delete(id);
      if (kind === 'infer' && !a.ended) void registry.release(node.id, token).catch(() => undefined);
      // The slot and memory freed matter only to a round that left work behind for want of them (`heldBack`), or to a
      // job whose wake found every slot busy (`wanted`).
      if (this.heldBack || this.wanted) this.wake();
    });
    return kind;
  }

  /** Since when (ms, this process's clock) each node-queue head has been found not fitting: the bypass fence. */
  private readonly blockedSince = new Map<string, number>();
  /** Heads whose fence is up (logged once each). */
  private readonly fenced = new Set<string>();

  /**
   * Head-of-line blocking in a node queue: its head's model does not fit now (memory held by other models), but a
   * job behind it may. Take the jobs in order, up to HOL_DEPTH, until one fits (or is an admin job); the misfits
   * taken on the way go back to the front of the queue (`handBack`), so they stay ahead of every younger job. Fence: a head blocked for `holFenceMs` is bypassed no longer, so the jobs running here finish, its
   * memory frees and it runs (a flood of small jobs behind it cannot starve it).
   */
  private async bypass(node: NodeRecord, choice: DispatchChoice): Promise<Taken> {
    const now = Date.now();
    const headId = choice.head.jobId;
    const since = this.blockedSince.get(headId) ?? now;
    this.blockedSince.set(headId, since);
    // Fence only a head that can ever fit here: one that never will (model missing, too big) would block the queue for good.
    const need = this.needFor(node, choice.head.model);
    const canEverFit = need !== undefined && need <= node.capacity_mb;
    if (canEverFit && now - since >= this.holFenceMs()) {
      if (!this.fenced.has(headId)) this.d.logger.info({ jobId: headId, queue: choice.head.queue, model: choice.head.model, blockedMs: now - since }, 'blocked head fenced: no more bypassing it');
      this.fenced.add(headId);
      return false;
    }
    const queue = choice.head.queue;
    const held: { job: Job; token: string }[] = [];
    try {
      for (let i = 0; i < HOL_DEPTH; i++) {
        const token = randomUUID();
        const job = await this.worker(queue).getNextJob(token, { block: false });
        if (!job?.id) return false;
        if (isAdminName(job.name)) return this.launch(node, job, token, 'admin', choice);
        const model = modelOfJobName(job.name);
        if ((await this.reserve(node, token, model, { jobId: job.id, priority: job.priority })) === 'admitted') {
          const warm = node.models_loaded.some((l) => sameModel(l.name, model));
          const head: QueueHead = { queue, jobId: job.id, model, priority: job.priority, timestamp: job.timestamp };
          const reason = `${choice.head.model} at the head of ${queue} does not fit on ${node.id} now; took job ${job.id} (${model}) behind it`;
          return this.launch(node, job, token, 'infer', { head, warm, reason });
        }
        await this.d.registry.release(node.id, token);
        held.push({ job, token });
      }
      return false;
    } finally {
      await this.handBack(queue, held);
    }
  }

  /** A blocked head is bypassed for at most this long (ms): ten poll rounds, at least 2 s. */
  private holFenceMs(): number {
    return Math.max(2000, 10 * this.s.pollMs);
  }

  /**
   * Give taken-but-not-run jobs back to their queue, at the front of their priority band: BullMQ's moveToWait scores a
   * prioritized job priority · 2^32 with no add counter, ahead of every job added normally. (Restoring the old score
   * would be wrong: BullMQ resets the add counter when `prioritized` empties, so younger jobs could then sort first.)
   * Several handed back at once keep the front among themselves in job-id order, not add order.
   */
  private async handBack(queue: string, held: readonly { job: Job; token: string }[]): Promise<void> {
    for (const { job, token } of held) {
      try {
        await job.moveToWait(token);
      } catch (err) {
        // Its lock runs out and the stalled checker puts it back: late, but not lost.
        this.d.logger.warn({ jobId: job.id, queue, err: (err as Error).message }, 'could not hand a job back to its queue');
      }
    }
  }

  /** Forget fence entries of jobs that are no longer a head here. */
  private pruneBlocked(heads: readonly QueueHead[]): void {
    if (this.blockedSince.size === 0 && this.ownNeed.size === 0) return;
    const live = new Set(heads.map((h) => h.jobId));
    for (const id of this.ownNeed.keys()) if (!live.has(id)) this.ownNeed.delete(id);
    for (const id of this.blockedSince.keys()) {
      if (!live.has(id)) {
        this.blockedSince.delete(id);
        this.fenced.delete(id);
      }
    }
  }
}
