// The DAG coordinator: starts a workflow as a BullMQ flow (parent + gate + ready steps), advances it when steps settle,
// winds it down on failure or cancel, and shows it. Ending it is finaliser.ts, crash repair is repair.ts, and every
// Redis read and write is the store's.
//
// Premature finalisation: BullMQ moves a parent out of waiting-children as soon as its current children are done, but
// a DAG adds steps while it runs. Every workflow therefore has a gate child in a queue nobody consumes; it is removed
// only when the settle script reports no pending step, so the parent cannot run before the last step settled. If the
// gate is lost anyway, the finaliser re-adds it and moves the parent back to waiting-children.
// Redelivery: steps have deterministic job ids and the settle script is idempotent (only a `queued` step settles),
// so a step that ran twice after a worker crash counts down its dependents once and they are enqueued once.
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { FlowProducer } from 'bullmq';
import { cacheDecision, cacheKeyOf, type L1Cache } from '../cache/index.js';
import type { Config } from '../config/index.js';
import { ErrorCode, HydraError, InferenceCallSchema, type InferResult, type NodeRecord } from '../core/index.js';
import type { Logger } from '../logger/index.js';
import { bullConnection, buildInferJob, checkPayload, type Producer, type RedisClient } from '../queue/index.js';
import { planRoute, type RecentNode } from '../scheduling/index.js';
import { WorkflowFinaliser } from './finaliser.js';
import { parentQueueKey, stepJob, workflowFlow, type PreparedJob } from './jobs.js';
import { workflowKinds, type KindHandler, type KindHandlers } from './kinds/index.js';
import { WorkflowRepair, type StepAdvancer } from './repair.js';
import { WorkflowStore, type WorkflowContext } from './store.js';
import {
  FINAL_STATUSES,
  GATE_QUEUE,
  gateJobId,
  outputOf,
  stepJobId,
  WORKFLOW_QUEUE,
  type StepDef,
  type StepError,
  type StepJobInfo,
  type StepOutcome,
  type StepRecord,
  type StepState,
  type WorkflowKind,
  type WorkflowSnapshot,
  type WorkflowStatus,
} from './types.js';
import { buildView, progressOf, type LiveStep, type WorkflowView } from './view.js';

export interface CoordinatorDeps {
  redis: RedisClient;
  producer: Producer;
  /** Registered nodes, for routing steps as they become ready. */
  nodes: () => Promise<NodeRecord[]>;
  /** L1 cache shared with single jobs; null disables it for steps. */
  cache: L1Cache | null;
  logger: Logger;
  /** The handler of each workflow kind. */
  kinds: KindHandlers;
  /** Host names that count as local for prefer_local. */
  localHosts: readonly string[];
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
  /** The id of the HTTP request that created it (the access log's); every step job carries it as `request_id`. */
  request_id?: string | undefined;
  /** The submitting API key's id (`k_` + 16 hex, auth.ts keyIdOf; never the key): in every step job and the history. */
  api_key_id?: string | undefined;
  /** Webhook: the workflow's view is POSTed here when it ends (the workflow job carries it; apps/worker/workflow-finaliser.ts). */
  callback_url?: string | undefined;
  steps: StepDef[];
}

interface Prepared {
  jobs: PreparedJob[];
  /** Steps answered from the cache or that could not be routed: settled without a job. */
  settled: { step: string; record: StepRecord }[];
}

/** Workflow ids are job ids: no ':' and never all digits (BullMQ). */
export const newWorkflowId = (): string => `wf-${randomUUID()}`;

const CANCELLED_BY_USER: StepError = { code: ErrorCode.Cancelled, message: 'the workflow was cancelled (DELETE /v1/workflows/:id)' };

const queuedIn = (states: ReadonlyMap<string, StepState>): string[] => [...states].flatMap(([step, s]) => (s === 'queued' ? [step] : []));

export class Coordinator implements StepAdvancer {
  readonly store: WorkflowStore;
  /** The workflow job's processor and its end announcement (the worker's workflow finaliser runs them). */
  readonly finaliser: WorkflowFinaliser;
  /** The crash repair sweep (the worker's workflow finaliser runs it on a timer). */
  readonly repair: WorkflowRepair;
  private readonly flow: FlowProducer;

  constructor(private readonly d: CoordinatorDeps) {
    this.store = new WorkflowStore(d.redis, d.producer.keys, d.producer.lifecycle, d.retentionS);
    this.finaliser = new WorkflowFinaliser({ store: this.store, producer: d.producer, kinds: d.kinds, cache: d.cache, logger: d.logger });
    this.repair = new WorkflowRepair({ store: this.store, producer: d.producer, logger: d.logger, steps: this });
    this.flow = new FlowProducer({ connection: bullConnection(d.redis), prefix: d.producer.keys.prefix, skipVersionCheck: true });
    this.flow.on('error', () => {}); // errors surface on the calls themselves
  }

  /** Throws `unsatisfiable` naming the step when a step's model can never run on the registered nodes. */
  checkRoutable(steps: readonly StepDef[], nodes: NodeRecord[], label: (s: StepDef) => string = (s) => `step "${s.id}"`, recent: readonly RecentNode[] = []): void {
    for (const s of steps) {
      try {
        planRoute({ model: s.call.model, ...s.routing }, nodes, this.d.localHosts, recent);
      } catch (e) {
        if (e instanceof HydraError) throw new HydraError(e.code, `${label(s)}: ${e.message}`, { details: { step: s.id, ...(e.details as object) } });
        throw e;
      }
    }
  }

  /** Create the state, add the parent with its gate and every step that can start, settle cached ones. */
  async start(w: StartInput): Promise<{ id: string }> {
    const id = w.id ?? newWorkflowId();
    const { producer } = this.d;
    await producer.registerQueue({ kind: 'workflow', name: WORKFLOW_QUEUE });
    const ctx: WorkflowContext = { id, kind: w.kind, priority: w.priority, cache: w.cache, input: w.input ?? {}, settings: w.settings ?? {}, request_id: w.request_id ?? null, api_key_id: w.api_key_id ?? null };
    const ready = await this.store.create({ ...ctx, name: w.name, steps: w.steps, now: Date.now() });
    try {
      const prep = await this.prepare(ctx, ready);
      await this.registerQueues(prep.jobs);
      await this.flow.add(workflowFlow(producer, { id, kind: w.kind, name: w.name, steps: w.steps.length, priority: w.priority, callback_url: w.callback_url }, prep.jobs));
      await this.store.stepsQueued(id, prep.jobs.map(queuedStep));
      for (const s of prep.settled) await this.settle(id, s.step, s.record);
    } catch (e) {
      await this.store.discard(id).catch(() => undefined);
      throw e;
    }
    return { id };
  }

  /** Render, cache-check and route the given (claimed) steps. */
  private async prepare(ctx: WorkflowContext, defs: readonly StepDef[]): Promise<Prepared> {
    const out: Prepared = { jobs: [], settled: [] };
    if (defs.length === 0) return out;
    const { cache } = this.d;
    const handler = this.d.kinds[ctx.kind];
    const nodes = await this.d.nodes();
    const now = Date.now();
    for (const def of defs) {
      const step = def.id;
      try {
        const records = await this.store.outputs(ctx.id, handler.needs(def));
        const call = InferenceCallSchema.parse(handler.render(def, { input: ctx.input, settings: ctx.settings, records }));
        const key = cache && cacheDecision(call, def.cache ?? ctx.cache).use ? cacheKeyOf(call) : undefined;
        const hit = cache && key ? await cache.get<InferResult>(key) : null;
        if (hit) {
          out.settled.push({
            step,
            record: { state: 'completed', job_id: hit.source_job_id ?? null, model: call.model, node_id: hit.value.node_id ?? null, output: outputOf(hit.value), cached: true, finished_at: now, result: hit.value },
          });
          continue;
        }
        const { plan, payload } = buildInferJob(call, { ...def.routing, priority: ctx.priority, timeout_ms: def.timeout_ms }, nodes, this.d.localHosts, now);
        // detach: a client that watches a step's token stream and leaves must not cancel the step (DELETE the workflow).
        // request_id: steps added later (by this worker-side coordinator) carry the creating request's id, as the first do.
        const full = checkPayload('infer', {
          ...payload,
          ...(key ? { cache_key: key } : {}),
          ...(ctx.request_id ? { request_id: ctx.request_id } : {}),
          ...(ctx.api_key_id ? { api_key_id: ctx.api_key_id } : {}),
          workflow: { id: ctx.id, step },
          detach: true,
        });
        out.jobs.push({ step, jobId: stepJobId(ctx.id, step), queue: plan.queueInfo, payload: full });
      } catch (e) {
        const err = e instanceof HydraError ? e : new HydraError(ErrorCode.BadRequest, `step "${step}" could not be built: ${(e as Error).message}`);
        out.settled.push({ step, record: { state: 'failed', job_id: null, model: def.call.model, node_id: null, error: { code: err.code, message: err.message }, finished_at: now } });
      }
    }
    return out;
  }

  private async registerQueues(jobs: readonly PreparedJob[]): Promise<void> {
    for (const j of jobs) await this.d.producer.registerQueue(j.queue);
  }

  /** Add newly ready steps as children of the waiting workflow job. */
  private async addSteps(id: string, jobs: readonly PreparedJob[]): Promise<void> {
    await this.registerQueues(jobs);
    for (const j of jobs) {
      const spec = stepJob(this.d.producer, j);
      await this.d.producer.queue(spec.queueName).add(spec.name, spec.data, { ...spec.opts, parent: { id, queue: parentQueueKey(this.d.producer) } });
    }
    await this.store.stepsQueued(id, jobs.map(queuedStep));
  }

  async addClaimed(id: string, steps: readonly string[]): Promise<void> {
    const ctx = await this.store.context(id);
    if (!ctx) return;
    const prep = await this.prepare(ctx, await this.store.defs(id, steps));
    await this.addSteps(id, prep.jobs);
    for (const s of prep.settled) await this.settle(id, s.step, s.record);
  }

  /** A step job ended for good (the worker's after-job hook, after BullMQ counted the attempt). Idempotent. */
  async stepFinished(ref: { id: string; step: string }, job: StepJobInfo, outcome: StepOutcome): Promise<void> {
    const started = job.processedOn;
    const base = { job_id: job.id ?? stepJobId(ref.id, ref.step), finished_at: Date.now(), ...(started ? { started_at: started, queued_ms: Math.max(0, started - job.timestamp) } : {}) };
    let record: StepRecord;
    if (outcome.state === 'completed') {
      const r = outcome.result;
      record = { state: 'completed', ...base, model: r.model, node_id: r.node_id, output: outputOf(r), attempts: job.attemptsMade, result: r };
    } else {
      const [def] = await this.store.defs(ref.id, [ref.step]);
      record = { state: outcome.error.code === ErrorCode.Cancelled ? 'cancelled' : 'failed', ...base, model: def?.call.model ?? '', node_id: null, error: outcome.error, attempts: job.attemptsMade };
    }
    await this.settle(ref.id, ref.step, record);
  }

  /** Settle one step and everything that follows from it: expansions, newly ready steps, cached steps, wind-down, release. */
  async settle(id: string, step: string, record: StepRecord): Promise<void> {
    const ctx = await this.store.context(id);
    if (!ctx) return; // expired or never existed
    const handler = this.d.kinds[ctx.kind];
    const work: { step: string; record: StepRecord }[] = [{ step, record }];
    while (work.length > 0) {
      const item = work.shift()!;
      // Kinds that expand or name a stage read the whole state: the records other steps left since the last settle.
      let snap: WorkflowSnapshot | null = null;
      let newSteps: StepDef[] = [];
      if (handler.expand || handler.stage) {
        snap = await this.store.snapshot(id);
        const def = snap?.defs.get(item.step);
        if (!snap || !def || snap.states.get(item.step) !== 'queued') continue;
        if (handler.expand && snap.status === 'running') newSteps = handler.expand(snap, def, item.record);
      }
      const r = item.record;
      const event = { step: item.step, state: r.state, node_id: r.node_id, ...(r.cached ? { cached: true } : {}), ...(r.error ? { error: r.error } : {}) };
      const res = await this.store.settle(id, item.step, r, { newSteps, event, now: Date.now() });
      if (res.result !== 'settled') {
        this.d.logger.debug({ workflow: id, step: item.step, result: res.result }, 'step already settled');
        continue;
      }
      this.d.logger.info({ workflow: id, ...(ctx.request_id ? { requestId: ctx.request_id } : {}), step: item.step, state: r.state, pending: res.pending, ready: res.ready.length }, 'workflow step settled');
      if (res.ready.length > 0) {
        const prep = await this.prepare(ctx, res.ready);
        await this.addSteps(id, prep.jobs).catch((e: Error) => this.d.logger.error({ workflow: id, err: e.message }, 'could not add ready steps; the reconcile sweep retries'));
        work.push(...prep.settled);
      }
      if (res.status === 'failing' || res.status === 'cancelling') await this.windDown(id, queuedIn(res.states), res.error);
      await this.reportProgress(id, handler, { states: res.states, status: res.status }, snap && { snap, newSteps, settled: item });
      if (res.pending <= 0) await this.release(id);
    }
  }

  /**
   * Stop the queued steps, through the one cancel of the lifecycle protocol: a job that has not started (or was never
   * added) settles as cancelled here; a running one is aborted on its node and settles as cancelled when it ends.
   */
  private async windDown(id: string, queued: readonly string[], why: StepError | null): Promise<void> {
    const reason = why ?? CANCELLED_BY_USER;
    const message = reason.code === ErrorCode.Cancelled ? reason.message : `not run: the workflow failed (${reason.message})`;
    for (const step of queued) {
      const jobId = stepJobId(id, step);
      const { outcome } = await this.d.producer.lifecycle.cancel(jobId, message, { flagUnknown: true });
      if (outcome === 'removed' || outcome === 'unknown') {
        await this.settle(id, step, { state: 'cancelled', job_id: jobId, model: '', node_id: null, error: { code: ErrorCode.Cancelled, message }, finished_at: Date.now() });
      }
    }
  }

  /** Every step has settled: remove the gate so BullMQ moves the workflow job to the finaliser. */
  async release(id: string): Promise<void> {
    await this.d.producer.queue(GATE_QUEUE).remove(gateJobId(id));
  }

  /**
   * Progress on the workflow job (Bull Board shows it), from the states the settle script returned. A kind that names
   * a stage reads it from the snapshot taken before settling, brought up to date with what this settle changed.
   */
  private async reportProgress(
    id: string,
    handler: KindHandler,
    now: Pick<WorkflowSnapshot, 'states' | 'status'>,
    before: { snap: WorkflowSnapshot; newSteps: readonly StepDef[]; settled: { step: string; record: StepRecord } } | null,
  ): Promise<void> {
    let stage: string | undefined;
    if (handler.stage && before) {
      const { snap, newSteps, settled } = before;
      const added = newSteps.filter((s) => !snap.defs.has(s.id) && now.states.has(s.id));
      stage = handler.stage({
        ...snap,
        ...now,
        defs: new Map([...snap.defs, ...added.map((s): [string, StepDef] => [s.id, s])]),
        order: [...snap.order, ...added.map((s) => s.id)],
        records: new Map(snap.records).set(settled.step, settled.record),
      });
    }
    await this.d.producer
      .queue(WORKFLOW_QUEUE)
      .updateJobProgress(id, progressOf(now, stage))
      .catch(() => undefined);
  }

  /** DELETE /v1/workflows/:id. */
  async cancel(id: string): Promise<{ status: WorkflowStatus }> {
    const r = await this.store.cancel(id, CANCELLED_BY_USER, Date.now());
    if (r.status === 'unknown') throw new HydraError(ErrorCode.NotFound, `no workflow with id ${id} (unknown, or removed after JOB_RETENTION_S)`);
    const status = r.status;
    if (FINAL_STATUSES.includes(status)) throw new HydraError(ErrorCode.Conflict, `workflow ${id} already ${status}; nothing to cancel`);
    await this.windDown(id, r.queued, r.error);
    if (r.pending <= 0) await this.release(id);
    return { status };
  }

  /** GET /v1/workflows/:id: the state, plus each queued step's live job state. */
  async view(id: string): Promise<WorkflowView | null> {
    const snap = await this.store.snapshot(id);
    if (!snap) return null;
    const live = new Map<string, LiveStep>();
    for (const step of queuedIn(snap.states)) {
      const jobId = stepJobId(id, step);
      const found = await this.d.producer.lifecycle.find(jobId);
      const job = found?.job;
      if (!found || !job) continue;
      live.set(step, { job_id: jobId, queue: found.queue.name, state: await job.getState(), processed_on: job.processedOn ?? null, attempts_made: job.attemptsMade, timestamp: job.timestamp });
    }
    return buildView(snap, live, this.d.kinds[snap.kind].stage?.(snap));
  }

  async close(): Promise<void> {
    await this.flow.close().catch(() => undefined);
  }
}

const queuedStep = (j: PreparedJob) => ({ step: j.step, jobId: j.jobId, queue: j.queue.name, model: j.payload.call.model });

/** The coordinator of a process: `kinds` defaults to every kind Hydra knows, `localHosts` to this machine's names. */
export function createCoordinator(
  config: Config,
  deps: Pick<CoordinatorDeps, 'redis' | 'producer' | 'nodes' | 'cache' | 'logger'> & Partial<Pick<CoordinatorDeps, 'kinds' | 'localHosts'>>,
): Coordinator {
  return new Coordinator({
    ...deps,
    kinds: deps.kinds ?? workflowKinds,
    localHosts: deps.localHosts ?? [os.hostname(), 'localhost', '127.0.0.1'],
    retentionS: config.JOB_RETENTION_S,
  });
}
