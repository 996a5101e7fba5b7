// The DAG coordinator: starts a workflow as a BullMQ flow (parent + gate + ready steps), advances it when steps settle,
// winds it down on failure or cancel, finalises the parent, and repairs what a crash between two Redis calls left behind.
//
// Premature finalisation: BullMQ moves a parent out of waiting-children as soon as its current children are done, but
// a DAG adds steps while it runs. Every workflow therefore has a gate child in a queue nobody consumes; it is removed
// only when the settle script reports no pending step, so the parent cannot run before the last step settled. If the
// gate is lost anyway, the finaliser re-adds it and moves the parent back to waiting-children.
// Redelivery: steps have deterministic job ids and the settle script is idempotent (only a `queued` step settles),
// so a step that ran twice after a worker crash counts down its dependents once and they are enqueued once.
import { randomUUID } from 'node:crypto';
import { DelayedError, FlowProducer, Job, UnrecoverableError, WaitingChildrenError, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { cacheDecision, cacheKeyOf, type L1Cache } from '../cache/index.js';
import { ErrorCode, HydraError, InferenceCallSchema, type InferResult, type NodeRecord } from '../core/index.js';
import type { Logger } from '../logger/index.js';
import { buildInferJob, InferJobSchema, jobName, type DoneMessage, type HydraKeys, type InferJob, type Producer } from '../queue/index.js';
import { planRoute, toBullPriority, type QueueInfo } from '../scheduling/index.js';
import { kindHandlers, type KindHandler } from './kinds.js';
import { orchestrateKind } from './orchestrator.js';
import { WorkflowStore } from './store.js';
import {
  FINAL_STATUSES,
  GATE_QUEUE,
  gateJobId,
  outputOf,
  stepJobId,
  WORKFLOW_QUEUE,
  type StepDef,
  type StepError,
  type StepRecord,
  type StepState,
  type WorkflowKind,
  type WorkflowSnapshot,
  type WorkflowStatus,
} from './types.js';
import { buildView, type LiveStep, type WorkflowView } from './view.js';

export interface CoordinatorDeps {
  redis: Redis;
  keys: HydraKeys;
  producer: Producer;
  /** Registered nodes, for routing steps as they become ready. */
  nodes: () => Promise<NodeRecord[]>;
  localHosts: readonly string[];
  /** L1 cache shared with single jobs; null disables it for steps. */
  cache: L1Cache | null;
  logger: Logger;
  retentionS: number;
}

export interface StartInput {
  /** Default: a new id (newWorkflowId). Given when the caller must watch for the end before the start. */
  id?: string;
  kind: WorkflowKind;
  name?: string | undefined;
  priority: number;
  cache?: boolean | undefined;
  input?: Record<string, string | number | boolean>;
  settings?: Record<string, unknown>;
  steps: StepDef[];
}

/** What a finished step job reports. */
export type StepOutcome = { state: 'completed'; result: InferResult } | { state: 'failed'; error: StepError };

/** The parts of a BullMQ job the coordinator reads. */
export interface StepJobInfo {
  id?: string | undefined;
  timestamp: number;
  processedOn?: number | undefined;
  attemptsMade: number;
}

interface PreparedJob {
  step: string;
  jobId: string;
  queue: QueueInfo;
  payload: InferJob;
}

interface Prepared {
  jobs: PreparedJob[];
  /** Steps answered from the cache or that could not be routed: settled without a job. */
  settled: { step: string; record: StepRecord }[];
}

/** Workflow ids are job ids: no ':' and never all digits (BullMQ). */
export const newWorkflowId = (): string => `wf-${randomUUID()}`;

/** BullMQ failedReason as Hydra writes it: `[code] message`. */
export function parseFailedReason(reason: string | undefined): StepError {
  const m = /^\[([a-z_]+)\] ([\s\S]*)$/.exec(reason ?? '');
  if (m) return { code: m[1]!, message: m[2]! };
  return { code: 'internal', message: reason || 'unknown failure' };
}

const CANCELLED_BY_USER: StepError = { code: ErrorCode.Cancelled, message: 'the workflow was cancelled (DELETE /v1/workflows/:id)' };

export class Coordinator {
  readonly store: WorkflowStore;
  private readonly flow: FlowProducer;
  private readonly kinds: Record<WorkflowKind, KindHandler> = kindHandlers(orchestrateKind);

  constructor(private readonly d: CoordinatorDeps) {
    this.store = new WorkflowStore(d.redis, d.keys);
    this.flow = new FlowProducer({ connection: d.redis, prefix: d.keys.prefix, skipVersionCheck: true });
    this.flow.on('error', () => {}); // errors surface on the calls themselves
  }

  private get parentQueueKey(): string {
    return `${this.d.keys.prefix}:${WORKFLOW_QUEUE}`;
  }

  /** Throws `unsatisfiable` naming the step when a step's model can never run on the registered nodes. */
  checkRoutable(steps: readonly StepDef[], nodes: NodeRecord[], label: (s: StepDef) => string = (s) => `step "${s.id}"`): void {
    for (const s of steps) {
      try {
        planRoute({ model: s.call.model, ...s.routing }, nodes, this.d.localHosts);
      } catch (e) {
        if (e instanceof HydraError) throw new HydraError(e.code, `${label(s)}: ${e.message}`, { details: { step: s.id, ...(e.details as object) } });
        throw e;
      }
    }
  }

  /** Create the state, add the parent with its gate and every step that can start, settle cached ones. */
  async start(w: StartInput): Promise<{ id: string }> {
    const id = w.id ?? newWorkflowId();
    const now = Date.now();
    await this.d.producer.registerQueue({ kind: 'workflow', name: WORKFLOW_QUEUE });
    const ready = await this.store.create({ id, kind: w.kind, name: w.name, priority: w.priority, cache: w.cache, input: w.input ?? {}, settings: w.settings ?? {}, steps: w.steps, now });
    try {
      const prep = await this.prepare(id, ready);
      await this.flow.add({
        name: `workflow:${w.kind}`,
        queueName: WORKFLOW_QUEUE,
        data: { id, kind: w.kind, ...(w.name ? { name: w.name } : {}), steps: w.steps.length },
        opts: this.parentOptions(id, w.priority),
        children: [this.gateChild(id), ...prep.jobs.map((j) => ({ name: jobName('infer', j.payload.call.model), queueName: j.queue.name, data: j.payload, opts: this.stepOptions(j) }))],
      });
      await this.announce(id, prep.jobs);
      for (const s of prep.settled) await this.settle(id, s.step, s.record);
    } catch (e) {
      await this.d.redis.del(...this.store.allKeys(id)).catch(() => undefined);
      await this.d.redis.zrem(this.d.keys.workflowsOpen, id).catch(() => undefined);
      throw e;
    }
    return { id };
  }

  private parentOptions(id: string, priority: number): JobsOptions {
    const retention = this.d.retentionS;
    return {
      jobId: id,
      priority: toBullPriority(priority),
      attempts: 3,
      backoff: { type: 'fixed', delay: 1000 },
      removeOnComplete: { age: retention, count: 10_000 },
      removeOnFail: { age: retention * 7, count: 10_000 },
    };
  }

  private gateChild(id: string) {
    return { name: 'gate', queueName: GATE_QUEUE, data: { workflow: id, note: 'holds the workflow open until every step has settled; never processed' }, opts: { jobId: gateJobId(id) } };
  }

  /** Step jobs are ordinary inference jobs; a final failure leaves the parent's dependencies (the coordinator decides). */
  private stepOptions(j: PreparedJob): JobsOptions {
    return { ...this.d.producer.jobOptions(j.jobId, j.payload.priority), ignoreDependencyOnFailure: true };
  }

  /** Render, cache-check and route the given (claimed) steps. */
  private async prepare(id: string, steps: readonly string[]): Promise<Prepared> {
    const out: Prepared = { jobs: [], settled: [] };
    if (steps.length === 0) return out;
    const snapMeta = await this.d.redis.hmget(this.d.keys.workflow(id), 'kind', 'priority', 'cache', 'input', 'settings');
    const [kind, prio, cacheFlag, input, settings] = snapMeta;
    if (!kind) return out;
    const handler = this.kinds[kind as WorkflowKind];
    const defsRaw = await this.d.redis.hmget(this.d.keys.workflowDefs(id), ...steps);
    const nodes = await this.d.nodes();
    const now = Date.now();
    for (const [i, step] of steps.entries()) {
      const raw = defsRaw[i];
      if (!raw) continue;
      const def = JSON.parse(raw) as StepDef;
      const fail = (error: StepError) => out.settled.push({ step, record: { state: 'failed', job_id: null, model: def.call.model, node_id: null, error, finished_at: now } });
      try {
        const records = await this.store.outputs(id, handler.needs(def));
        const call = InferenceCallSchema.parse(handler.render(def, { input: input ? JSON.parse(input) : {}, settings: settings ? JSON.parse(settings) : {}, records }));
        const requested = def.cache ?? (cacheFlag === 'true' ? true : cacheFlag === 'false' ? false : undefined);
        const key = this.d.cache && cacheDecision(call, requested).use ? cacheKeyOf(call) : undefined;
        const hit = key ? await this.d.cache!.get<InferResult>(key) : null;
        if (hit) {
          out.settled.push({
            step,
            record: { state: 'completed', job_id: hit.source_job_id ?? null, model: call.model, node_id: hit.value.node_id ?? null, output: outputOf(hit.value), cached: true, finished_at: now, result: hit.value },
          });
          continue;
        }
        const { plan, payload } = buildInferJob(call, { ...def.routing, priority: Number(prio ?? 5), timeout_ms: def.timeout_ms }, nodes, this.d.localHosts, now);
        // detach: a client that watches a step's token stream and leaves must not cancel the step (DELETE the workflow).
        const full = InferJobSchema.parse({ ...payload, ...(key ? { cache_key: key } : {}), workflow: { id, step }, detach: true });
        out.jobs.push({ step, jobId: stepJobId(id, step), queue: plan.queueInfo, payload: full });
      } catch (e) {
        const err = e instanceof HydraError ? e : new HydraError(ErrorCode.BadRequest, `step "${step}" could not be built: ${(e as Error).message}`);
        fail({ code: err.code, message: err.message });
      }
    }
    return out;
  }

  /** After jobs were added: record where they live (GET /v1/jobs/:id works on steps), wake workers, tell stream readers. */
  private async announce(id: string, jobs: readonly PreparedJob[]): Promise<void> {
    if (jobs.length === 0) return;
    const { keys, retentionS } = this.d;
    for (const q of new Set(jobs.map((j) => j.queue.name))) await this.d.producer.registerQueue(jobs.find((j) => j.queue.name === q)!.queue);
    const m = this.d.redis.multi();
    for (const j of jobs) {
      m.set(keys.jobIndex(j.jobId), j.queue.name, 'EX', retentionS * 7);
      m.xadd(keys.stream(id), 'MAXLEN', '~', '10000', '*', 'e', 'step', 'd', JSON.stringify({ step: j.step, state: 'queued', job_id: j.jobId, queue: j.queue.name, model: j.payload.call.model, stream_url: `/v1/jobs/${j.jobId}/stream` }));
    }
    for (const q of new Set(jobs.map((j) => j.queue.name))) m.publish(keys.channels.wake, q);
    await m.exec();
  }

  /** Add newly ready steps as children of the waiting workflow job. */
  private async addSteps(id: string, jobs: readonly PreparedJob[]): Promise<void> {
    for (const j of jobs) {
      await this.d.producer.registerQueue(j.queue);
      await this.d.producer.queue(j.queue.name).add(jobName('infer', j.payload.call.model), j.payload, { ...this.stepOptions(j), parent: { id, queue: this.parentQueueKey } });
    }
    await this.announce(id, jobs);
  }

  /** A step job ended for good (the worker's onFinished hook, after BullMQ counted the attempt). Idempotent. */
  async stepFinished(ref: { id: string; step: string }, job: StepJobInfo, outcome: StepOutcome): Promise<void> {
    const now = Date.now();
    const started = job.processedOn;
    const base = { job_id: job.id ?? stepJobId(ref.id, ref.step), finished_at: now, ...(started ? { started_at: started, queued_ms: Math.max(0, started - job.timestamp) } : {}) };
    let record: StepRecord;
    if (outcome.state === 'completed') {
      const r = outcome.result;
      record = { state: 'completed', ...base, model: r.model, node_id: r.node_id, output: outputOf(r), attempts: job.attemptsMade, result: r };
    } else {
      const def = await this.d.redis.hget(this.d.keys.workflowDefs(ref.id), ref.step);
      const model = def ? (JSON.parse(def) as StepDef).call.model : '';
      record = { state: outcome.error.code === ErrorCode.Cancelled ? 'cancelled' : 'failed', ...base, model, node_id: null, error: outcome.error, attempts: job.attemptsMade };
    }
    await this.settle(ref.id, ref.step, record);
  }

  /** Settle one step and everything that follows from it: expansions, newly ready steps, cached steps, wind-down, release. */
  async settle(id: string, step: string, record: StepRecord): Promise<void> {
    const work: { step: string; record: StepRecord }[] = [{ step, record }];
    while (work.length > 0) {
      const item = work.shift()!;
      const kind = (await this.d.redis.hget(this.d.keys.workflow(id), 'kind')) as WorkflowKind | null;
      if (!kind) return; // expired or never existed
      const handler = this.kinds[kind];
      let newSteps: StepDef[] | undefined;
      if (handler.expand) {
        const snap = await this.store.snapshot(id);
        const def = snap?.defs.get(item.step);
        if (!snap || !def || snap.states.get(item.step) !== 'queued') continue;
        if (snap.status === 'running') newSteps = handler.expand(snap, def, item.record);
      }
      const event = { step: item.step, state: item.record.state, node_id: item.record.node_id, ...(item.record.cached ? { cached: true } : {}), ...(item.record.error ? { error: item.record.error } : {}) };
      const res = await this.store.settle(id, item.step, item.record, { ...(newSteps ? { newSteps } : {}), event, now: Date.now() });
      if (res.result !== 'ok') {
        this.d.logger.debug({ workflow: id, step: item.step, result: res.result }, 'step already settled');
        continue;
      }
      this.d.logger.info({ workflow: id, step: item.step, state: item.record.state, pending: res.pending, ready: res.ready.length }, 'workflow step settled');
      if (res.ready.length > 0) {
        const prep = await this.prepare(id, res.ready);
        await this.addSteps(id, prep.jobs).catch((e: Error) => this.d.logger.error({ workflow: id, err: e.message }, 'could not add ready steps; the reconcile sweep retries'));
        work.push(...prep.settled);
      }
      if (res.status === 'failing' || res.status === 'cancelling') await this.windDown(id);
      await this.reportProgress(id, kind);
      if (res.pending <= 0) await this.release(id);
    }
  }

  /** Stop what is queued: remove jobs that have not started, abort the running ones (they settle as cancelled). */
  private async windDown(id: string): Promise<void> {
    const [states, reason] = await Promise.all([this.d.redis.hgetall(this.d.keys.workflowSteps(id)), this.d.redis.hget(this.d.keys.workflow(id), 'error')]);
    const why: StepError = reason ? (JSON.parse(reason) as StepError) : CANCELLED_BY_USER;
    const message = why.code === ErrorCode.Cancelled ? why.message : `not run: the workflow failed (${why.message})`;
    for (const [step, state] of Object.entries(states)) {
      if (state !== 'queued') continue;
      const jobId = stepJobId(id, step);
      const queueName = await this.d.redis.get(this.d.keys.jobIndex(jobId));
      const cancelled = (): StepRecord => ({ state: 'cancelled', job_id: jobId, model: '', node_id: null, error: { code: ErrorCode.Cancelled, message }, finished_at: Date.now() });
      if (!queueName) {
        await this.settle(id, step, cancelled());
        continue;
      }
      const queue = this.d.producer.queue(queueName);
      const job = await Job.fromId(queue, jobId);
      const st = job ? await job.getState() : 'unknown';
      if (st === 'waiting' || st === 'prioritized' || st === 'delayed' || st === 'waiting-children' || st === 'unknown') {
        const removed = job ? await queue.remove(jobId) : 1;
        if (removed === 1) {
          await this.d.redis.set(this.d.keys.cancelFlag(jobId), '1', 'EX', this.d.retentionS);
          await this.settle(id, step, cancelled());
          continue;
        }
      }
      if (st !== 'completed' && st !== 'failed') {
        await this.d.redis.set(this.d.keys.cancelFlag(jobId), '1', 'EX', this.d.retentionS);
        await this.d.redis.publish(this.d.keys.channels.cancel, jobId);
      }
    }
  }

  /** Every step has settled: remove the gate so BullMQ moves the workflow job to the finaliser. */
  private async release(id: string): Promise<void> {
    await this.d.producer.queue(GATE_QUEUE).remove(gateJobId(id));
  }

  /** Progress on the workflow job (Bull Board shows it). Reads only step states, except for kinds that name a stage. */
  private async reportProgress(id: string, kind: WorkflowKind): Promise<void> {
    const handler = this.kinds[kind];
    let p: ReturnType<typeof progressOf>;
    if (handler.stage) {
      const snap = await this.store.snapshot(id);
      if (!snap) return;
      p = progressOf(snap, handler.stage(snap));
    } else {
      const [states, status] = await Promise.all([this.d.redis.hgetall(this.d.keys.workflowSteps(id)), this.d.redis.hget(this.d.keys.workflow(id), 'status')]);
      p = progressOf({ states: new Map(Object.entries(states) as [string, StepState][]), status: (status ?? 'running') as WorkflowStatus });
    }
    await this.d.producer
      .queue(WORKFLOW_QUEUE)
      .updateJobProgress(id, p)
      .catch(() => undefined);
  }

  /** DELETE /v1/workflows/:id. */
  async cancel(id: string): Promise<{ status: WorkflowStatus }> {
    const r = await this.store.cancel(id, CANCELLED_BY_USER, Date.now());
    if (r.status === 'unknown') throw new HydraError(ErrorCode.NotFound, `no workflow with id ${id} (unknown, or removed after JOB_RETENTION_S)`);
    if (FINAL_STATUSES.includes(r.status)) throw new HydraError(ErrorCode.Conflict, `workflow ${id} already ${r.status}; nothing to cancel`);
    await this.windDown(id);
    if (r.pending <= 0) await this.release(id);
    return { status: r.status };
  }

  /**
   * The workflow job's processor (run by the finaliser Worker once BullMQ released the parent): build the result
   * from the settled steps, or fail with the failing step's error. Safe to run again after a crash.
   */
  async finalise(job: Job, token: string | undefined): Promise<unknown> {
    const id = job.id!;
    const snap = await this.store.snapshot(id);
    if (!snap) throw new UnrecoverableError(`[not_found] the state of workflow ${id} is gone (expired after JOB_RETENTION_S?)`);
    if (!FINAL_STATUSES.includes(snap.status) && snap.pending > 0) {
      // Released early (the gate was removed by hand?): put the gate back and wait for the steps again.
      this.d.logger.warn({ workflow: id, pending: snap.pending }, 'workflow job released with steps pending; waiting again');
      await this.d.producer.queue(GATE_QUEUE).add('gate', this.gateChild(id).data, { jobId: gateJobId(id), parent: { id, queue: this.parentQueueKey } });
      if (token && (await job.moveToWaitingChildren(token))) throw new WaitingChildrenError();
      if (token) {
        await job.moveToDelayed(Date.now() + 1000, token);
        throw new DelayedError();
      }
    }
    let status: WorkflowStatus;
    let result: unknown;
    let error: StepError | undefined;
    if (FINAL_STATUSES.includes(snap.status)) {
      status = snap.status;
      result = snap.result;
      error = snap.error ?? undefined;
    } else if (snap.status === 'running') {
      const s = this.kinds[snap.kind].summarize(snap);
      status = s.ok ? 'completed' : 'failed';
      if (s.ok) result = s.result;
      else error = s.error;
    } else {
      status = snap.status === 'cancelling' ? 'cancelled' : 'failed';
      const e = snap.error ?? { code: 'internal', message: 'the workflow failed' };
      error = snap.failed_step && status === 'failed' ? { code: e.code, message: `step "${snap.failed_step}" failed: ${e.message}` } : e;
    }
    const now = Date.now();
    if (!FINAL_STATUSES.includes(snap.status)) {
      await this.store.finish(id, status, { ...(result !== undefined ? { result } : {}), ...(error ? { error } : {}) }, now, this.d.retentionS);
      const resultKey = snap.settings.result_cache_key;
      if (status === 'completed' && typeof resultKey === 'string' && this.d.cache) await this.d.cache.put(resultKey, result, id);
    }
    await job.updateProgress({ ...progressOf({ ...snap, status }, 'done'), percent: 100 }).catch(() => undefined);
    this.d.logger.info({ workflow: id, kind: snap.kind, status, ms: now - snap.created_at }, 'workflow finished');
    if (status === 'completed') return result;
    throw new UnrecoverableError(`[${error?.code ?? 'internal'}] ${error?.message ?? 'the workflow failed'}`);
  }

  /**
   * After BullMQ recorded the workflow job's end (the finaliser's completed/failed events): the terminal stream entry
   * and the done message. Does nothing while the workflow is not finished (a retried finalisation).
   */
  async announceEnd(id: string): Promise<void> {
    const [status, result, error, finished] = await this.d.redis.hmget(this.d.keys.workflow(id), 'status', 'result', 'error', 'finished_at');
    if (!status || !FINAL_STATUSES.includes(status as WorkflowStatus)) return;
    const stream = this.d.keys.stream(id);
    const body = status === 'completed' ? { id, state: status, result: result ? JSON.parse(result) : null } : { id, state: status, error: error ? JSON.parse(error) : null };
    const msg: DoneMessage = {
      id,
      state: status === 'completed' ? 'completed' : status === 'cancelled' ? 'cancelled' : 'failed',
      finished_at: Number(finished),
      ...(status === 'completed' ? {} : { error: body.error as StepError }),
    };
    await this.d.redis
      .multi()
      .xadd(stream, 'MAXLEN', '~', '10000', '*', 'e', status === 'completed' ? 'done' : 'error', 'd', JSON.stringify(body))
      .expire(stream, this.d.retentionS)
      .publish(this.d.keys.channels.done, JSON.stringify(msg))
      .exec();
  }

  /**
   * Repair sweep for crashes between two Redis calls: a step job that ended while its hook did not run (worker killed
   * right after completing it, or failed by the stalled checker), a claimed step whose job was never added, a gate
   * not removed. Looks only at workflows idle for `idleMs`. Returns how many steps it repaired.
   */
  async reconcile(now: number, idleMs: number, lockMs = 5000): Promise<number> {
    const owner = randomUUID();
    const got = await this.d.redis.set(this.d.keys.workflowSweepLock, owner, 'PX', lockMs, 'NX');
    if (!got) return 0;
    try {
      return await this.sweep(now, idleMs);
    } finally {
      if ((await this.d.redis.get(this.d.keys.workflowSweepLock)) === owner) await this.d.redis.del(this.d.keys.workflowSweepLock);
    }
  }

  private async sweep(now: number, idleMs: number): Promise<number> {
    let repaired = 0;
    for (const id of await this.store.open(200)) {
      const st = await this.store.status(id);
      if (!st || FINAL_STATUSES.includes(st.status)) {
        await this.d.redis.zrem(this.d.keys.workflowsOpen, id);
        continue;
      }
      if (now - st.updated_at < idleMs) continue;
      const parent = await Job.fromId(this.d.producer.queue(WORKFLOW_QUEUE), id);
      if (!parent) {
        await this.store.finish(id, 'failed', { error: { code: 'not_found', message: 'the workflow job was removed from its queue' } }, now, this.d.retentionS);
        continue;
      }
      const states = await this.d.redis.hgetall(this.d.keys.workflowSteps(id));
      const unadded: string[] = [];
      for (const [step, state] of Object.entries(states)) {
        if (state !== 'queued') continue;
        const jobId = stepJobId(id, step);
        const queueName = await this.d.redis.get(this.d.keys.jobIndex(jobId));
        if (!queueName) {
          unadded.push(step);
          continue;
        }
        const job = await Job.fromId(this.d.producer.queue(queueName), jobId);
        const jstate = job ? await job.getState() : 'unknown';
        if (jstate === 'completed' && job) {
          await this.stepFinished({ id, step }, job, { state: 'completed', result: job.returnvalue as InferResult });
          repaired++;
        } else if (jstate === 'failed' && job) {
          await this.stepFinished({ id, step }, job, { state: 'failed', error: parseFailedReason(job.failedReason) });
          repaired++;
        } else if (jstate === 'unknown') {
          await this.settle(id, step, { state: 'cancelled', job_id: jobId, model: '', node_id: null, error: { code: ErrorCode.Cancelled, message: 'the step job was removed from its queue' }, finished_at: now });
          repaired++;
        }
      }
      if (unadded.length > 0) {
        this.d.logger.warn({ workflow: id, steps: unadded }, 'adding claimed steps whose jobs were never added');
        const prep = await this.prepare(id, unadded);
        await this.addSteps(id, prep.jobs);
        for (const s of prep.settled) await this.settle(id, s.step, s.record);
        repaired += unadded.length;
      }
      const after = await this.store.status(id);
      if (after && after.pending <= 0) await this.release(id);
    }
    return repaired;
  }

  /** GET /v1/workflows/:id: the state, plus each queued step's live job state. */
  async view(id: string): Promise<WorkflowView | null> {
    const snap = await this.store.snapshot(id);
    if (!snap) return null;
    const live = new Map<string, LiveStep>();
    for (const [step, state] of snap.states) {
      if (state !== 'queued') continue;
      const jobId = stepJobId(id, step);
      const queueName = await this.d.redis.get(this.d.keys.jobIndex(jobId));
      const job = queueName ? await Job.fromId(this.d.producer.queue(queueName), jobId) : undefined;
      if (!job) continue;
      live.set(step, { job_id: jobId, queue: queueName!, state: await job.getState(), processed_on: job.processedOn ?? null, attempts_made: job.attemptsMade, timestamp: job.timestamp });
    }
    return buildView(snap, live, this.kinds[snap.kind].stage?.(snap));
  }

  async close(): Promise<void> {
    await this.flow.close().catch(() => undefined);
  }
}

export function progressOf(snap: Pick<WorkflowSnapshot, 'states' | 'status'>, stage?: string) {
  const count = (s: string) => [...snap.states.values()].filter((x) => x === s).length;
  const total = snap.states.size;
  const settled = count('completed') + count('failed') + count('skipped') + count('cancelled');
  return {
    status: snap.status,
    ...(stage ? { stage } : {}),
    total,
    completed: count('completed'),
    failed: count('failed'),
    skipped: count('skipped'),
    cancelled: count('cancelled'),
    queued: count('queued'),
    waiting: count('waiting'),
    percent: total ? Math.round((settled / total) * 100) : 0,
  };
}
