// The pull loop: peek every eligible queue's head in one Lua call, pick by priority and age, reserve memory atomically, take the job.
//
// Shape (b) of DESIGN.md: one BullMQ Worker per queue, used without a processor (manual fetching). Chosen because
// it gives exact memory admission per job and priority across queues; per-class Workers (a) cannot coordinate.
import { randomUUID } from 'node:crypto';
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { NodeRecord } from '../../libs/core/index.js';
import type { Logger } from '../../libs/logger/index.js';
import { backoffDelay, modelOfJobName, type HydraKeys } from '../../libs/queue/index.js';
import type { NodeRegistry } from '../../libs/registry/index.js';
import { eligibleQueues, isServing, nodeQualifies, orderHeads, sameModel, type DispatchChoice, type QueueHead, type QueueInfo } from '../../libs/scheduling/index.js';
import type { CircuitBreaker } from './circuit-breaker.js';

/**
 * For each queue: the head of `prioritized` (BullMQ priority = score >> 32), else `wait`, else a due `delayed` job;
 * with whether this node just failed it (it then leaves the job to other nodes for a while).
 */
const PEEK_LUA = `
local prefix = ARGV[1]
local now = tonumber(ARGV[2])
local me = ARGV[3]
local out = {}
for i = 4, #ARGV do
  local q = ARGV[i]
  local base = prefix .. ':' .. q .. ':'
  local id = nil
  local prio = 0
  local r = redis.call('ZRANGE', base .. 'prioritized', 0, 0, 'WITHSCORES')
  if #r > 0 then id = r[1]; prio = math.floor(tonumber(r[2]) / 4294967296) end
  if id == nil then
    local w = redis.call('LINDEX', base .. 'wait', -1)
    if w then id = w end
  end
  if id == nil then
    local d = redis.call('ZRANGEBYSCORE', base .. 'delayed', 0, now * 4096 + 4095, 'LIMIT', 0, 1)
    if #d > 0 then id = d[1] end
  end
  if id ~= nil then
    local h = redis.call('HMGET', base .. id, 'name', 'timestamp', 'priority')
    if prio == 0 then prio = tonumber(h[3]) or 0 end
    out[#out + 1] = q
    out[#out + 1] = id
    out[#out + 1] = h[1] or ''
    out[#out + 1] = tostring(prio)
    out[#out + 1] = h[2] or tostring(now)
    if redis.call('GET', prefix .. ':excl:' .. id) == me then out[#out + 1] = '1' else out[#out + 1] = '0' end
  end
end
return out
`;

export interface ActiveJob {
  job: Job;
  token: string;
  abort: AbortController;
  choice: DispatchChoice;
}

export interface DispatcherDeps {
  redis: Redis;
  registry: NodeRegistry;
  keys: HydraKeys;
  logger: Logger;
  slots: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  maxStalledCount: number;
  pollMs: number;
  localityWaitMs: number;
  nodeId: string;
  breaker: CircuitBreaker;
  backoffMs: number;
  backoffMaxMs: number;
  /** Latest record of this node (from the last probe). */
  node: () => NodeRecord | null;
  /** Latest view of the other nodes (for delay scheduling). */
  others: () => readonly NodeRecord[];
  queues: () => readonly QueueInfo[];
  /** Runs a taken job to its end (completed, failed or handed back). Must not throw. */
  run: (a: ActiveJob) => Promise<void>;
}

type Peeker = Redis & { hydraPeek(...args: string[]): Promise<string[]> };

export class Dispatcher {
  private readonly workers = new Map<string, Worker>();
  readonly active = new Map<string, ActiveJob>();
  private running = false;
  private wakeUp: (() => void) | null = null;
  private woken = false;
  private loopDone: Promise<void> = Promise.resolve();
  private readonly r: Peeker;

  constructor(private readonly d: DispatcherDeps) {
    this.r = d.redis as Peeker;
    if (!('hydraPeek' in d.redis)) d.redis.defineCommand('hydraPeek', { numberOfKeys: 0, lua: PEEK_LUA });
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
      const { keys, backoffMs, backoffMaxMs } = this.d;
      w = new Worker(queue, undefined, {
        connection: this.d.redis,
        prefix: keys.prefix,
        autorun: false,
        skipVersionCheck: true,
        lockDuration: this.d.lockDurationMs,
        stalledInterval: this.d.stalledIntervalMs,
        maxStalledCount: this.d.maxStalledCount,
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

  private async peek(queues: readonly QueueInfo[], now: number): Promise<(QueueHead & { excluded: boolean })[]> {
    const flat = await this.r.hydraPeek(this.d.keys.prefix, String(now), this.d.nodeId, ...queues.map((q) => q.name));
    const heads: (QueueHead & { excluded: boolean })[] = [];
    for (let i = 0; i + 5 < flat.length; i += 6) {
      heads.push({
        queue: flat[i]!,
        jobId: flat[i + 1]!,
        model: modelOfJobName(flat[i + 2]!),
        priority: Number(flat[i + 3]),
        timestamp: Number(flat[i + 4]),
        excluded: flat[i + 5] === '1',
      });
    }
    return heads;
  }

  private async loop(): Promise<void> {
    while (this.running) {
      try {
        const waitMs = await this.tick();
        if (waitMs > 0) await this.sleep(waitMs);
      } catch (err) {
        this.d.logger.warn({ err: (err as Error).message }, 'dispatch round failed; retrying');
        await this.sleep(Math.min(this.d.pollMs, 500));
      }
    }
  }

  /** One dispatch round. Returns how long to sleep before the next (0 = go again now). */
  private async tick(): Promise<number> {
    const node = this.d.node();
    const now = Date.now();
    if (!node || !node.healthy || this.active.size >= this.d.slots) return this.d.pollMs;
    if (!this.d.breaker.allow(now)) return Math.min(this.d.pollMs, 250);
    const queues = eligibleQueues(this.d.queues(), node);
    if (queues.length === 0) return this.d.pollMs;
    // Workers (and so stalled-job checkers) for every queue this node could serve, so a crashed node's jobs
    // are recovered by any node that qualifies, not only by ones that happened to pull from that queue before.
    for (const q of queues) this.worker(q.name);
    const others = this.d.others();
    const otherCanServe = (queue: string) => {
      const info = queues.find((q) => q.name === queue);
      return info?.kind === 'class' && others.some((o) => isServing(o) && nodeQualifies(o, info.model, info.min_vram_mb).ok);
    };
    // A node that just failed a job leaves its next attempt to another qualifying node.
    const heads = (await this.peek(queues, now)).filter((h) => !(h.excluded && otherCanServe(h.queue)));
    if (heads.length === 0) return this.d.pollMs;
    const { choices, retryInMs } = orderHeads(heads, { node, others, now, localityWaitMs: this.d.localityWaitMs });
    for (const choice of choices) {
      const taken = await this.tryTake(node, choice);
      if (taken) return 0;
    }
    return retryInMs !== null ? Math.min(retryInMs + 1, this.d.pollMs) : this.d.pollMs;
  }

  /**
   * Reserve memory for the head's model, then take the next job of that queue (it may not be the peeked one).
   * The reservation is keyed by the BullMQ lock token, which also identifies the job run while it holds it.
   */
  private async tryTake(node: NodeRecord, choice: DispatchChoice): Promise<boolean> {
    const { registry, lockDurationMs } = this.d;
    const token = randomUUID();
    const needFor = (model: string) => node.models_available.find((m) => sameModel(m.name, model))?.need_mb;
    const need = needFor(choice.head.model);
    if (need === undefined) return false; // node queue holding a model this node does not have
    const admitted = await registry.reserve(node.id, token, choice.head.model, need, node.capacity_mb, Date.now(), lockDurationMs * 2);
    if (!admitted.ok) {
      this.d.logger.debug({ model: choice.head.model, need, used: admitted.usedMb, capacity: node.capacity_mb }, 'does not fit now');
      return false;
    }
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
    const model = modelOfJobName(job.name);
    if (!sameModel(model, choice.head.model)) {
      // A different job than peeked came first (node queues mix models): admit it for its own model.
      const n = needFor(model);
      const again = n === undefined ? { ok: false } : await registry.reserve(node.id, token, model, n, node.capacity_mb, Date.now(), lockDurationMs * 2);
      if (!again.ok) {
        await registry.release(node.id, token);
        await job.moveToDelayed(Date.now() + 250, token).catch(() => undefined);
        return false;
      }
    }
    this.d.breaker.started();
    const a: ActiveJob = { job, token, abort: new AbortController(), choice };
    this.active.set(job.id, a);
    void this.d.run(a).finally(() => {
      this.active.delete(job.id!);
      void registry.release(node.id, token).catch(() => undefined);
      this.wake();
    });
    return true;
  }
}
