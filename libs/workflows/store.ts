// Workflow state in Redis, and every Redis call the workflow code makes: created in one MULTI, advanced by one Lua
// call per settled step (scripts/wf-settle.lua, idempotent), cancelled by one (scripts/wf-cancel.lua), read in one round trip.
import { appendEnd, appendEntry, loadScript, loadStreamEnd, STREAM_MAXLEN, type DoneMessage, type HydraKeys, type JobLifecycle, type RedisClient } from '../queue/index.js';
import { WORKFLOW_QUEUE, type StepDef, type StepError, type StepRecord, type StepState, type WorkflowKind, type WorkflowSnapshot, type WorkflowStatus } from './types.js';

const SCRIPTS = new URL('./scripts/', import.meta.url);

/** What a step's call is rendered and routed with: the workflow's own fields. */
export type WorkflowContext = Pick<WorkflowSnapshot, 'id' | 'kind' | 'priority' | 'cache' | 'input' | 'settings' | 'request_id' | 'api_key_id'>;

export interface SettleResult {
  result: 'settled' | 'already_settled' | 'unknown';
  status: WorkflowStatus;
  pending: number;
  /** Steps claimed by this call (their dependencies are now met), with their definitions. */
  ready: StepDef[];
  /** Every step's state after this call ('settled' only). */
  states: Map<string, StepState>;
  /** Why the workflow winds down, while it is not running. */
  error: StepError | null;
}

export interface CancelOutcome {
  status: WorkflowStatus | 'unknown';
  pending: number;
  /** Steps whose jobs were added (or are being added): the caller cancels each. */
  queued: string[];
  error: StepError | null;
}

export interface CreateInput {
  id: string;
  kind: WorkflowKind;
  name?: string | undefined;
  priority: number;
  cache?: boolean | undefined;
  input: Record<string, string | number | boolean>;
  settings: Record<string, unknown>;
  request_id: string | null;
  api_key_id: string | null;
  steps: StepDef[];
  now: number;
}

/** A step job just added, as its index, the workflow stream and the wake-up record it. */
export interface QueuedStep {
  step: string;
  jobId: string;
  queue: string;
  model: string;
}

type Script = (keys: readonly string[], argv: readonly (string | number)[]) => Promise<string>;

const parseError = (raw: unknown): StepError | null => (typeof raw === 'string' && raw ? (JSON.parse(raw) as StepError) : null);
/** cjson encodes an empty Lua table as an object. */
const list = <T>(v: unknown): T[] => (Array.isArray(v) ? (v as T[]) : []);
const cacheFlag = (v: string | null | undefined): boolean | undefined => (v === 'true' ? true : v === 'false' ? false : undefined);
const json = <T>(s: string | null | undefined, dflt: T): T => (s ? (JSON.parse(s) as T) : dflt);

export class WorkflowStore {
  private readonly settleScript: Script;
  private readonly cancelScript: Script;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: HydraKeys,
    private readonly lifecycle: JobLifecycle,
    private readonly retentionS: number,
  ) {
    loadStreamEnd(redis);
    this.settleScript = loadScript<string>(redis, SCRIPTS, 'wf-settle');
    this.cancelScript = loadScript<string>(redis, SCRIPTS, 'wf-cancel');
  }

  /** Every key of one workflow, in the settle script's KEYS order. */
  allKeys(id: string): string[] {
    const k = this.keys;
    return [k.workflow(id), k.workflowSteps(id), k.workflowDeps(id), k.workflowDefs(id), k.workflowDependents(id), k.workflowSatisfied(id), k.workflowResults(id), k.stream(id), k.workflowOrder(id)];
  }

  /** Write the whole definition at once; steps without dependencies start claimed (`queued`). Returns those. */
  async create(w: CreateInput): Promise<StepDef[]> {
    const k = this.keys;
    const ready = w.steps.filter((s) => s.depends_on.length === 0);
    const rdeps = new Map<string, string[]>();
    for (const s of w.steps) for (const d of s.depends_on) rdeps.set(d, [...(rdeps.get(d) ?? []), s.id]);
    const m = this.redis.multi();
    m.hset(k.workflow(w.id), {
      id: w.id,
      kind: w.kind,
      name: w.name ?? '',
      status: 'running',
      priority: String(w.priority),
      cache: w.cache === undefined ? '' : String(w.cache),
      input: JSON.stringify(w.input),
      settings: JSON.stringify(w.settings),
      request_id: w.request_id ?? '',
      api_key_id: w.api_key_id ?? '',
      created_at: String(w.now),
      updated_at: String(w.now),
      pending: String(w.steps.length),
    });
    m.rpush(k.workflowOrder(w.id), ...w.steps.map((s) => s.id));
    m.hset(k.workflowDefs(w.id), Object.fromEntries(w.steps.map((s) => [s.id, JSON.stringify(s)])));
    m.hset(k.workflowSteps(w.id), Object.fromEntries(w.steps.map((s) => [s.id, s.depends_on.length === 0 ? 'queued' : 'waiting'])));
    m.hset(k.workflowDeps(w.id), Object.fromEntries(w.steps.map((s) => [s.id, String(s.depends_on.length)])));
    if (rdeps.size > 0) m.hset(k.workflowDependents(w.id), Object.fromEntries([...rdeps].map(([d, ids]) => [d, JSON.stringify(ids)])));
    m.zadd(k.workflowsOpen, w.now, w.id);
    await m.exec();
    return ready;
  }

  /** Undo `create` (the flow could not be added). */
  async discard(id: string): Promise<void> {
    await this.redis.multi().del(...this.allKeys(id)).zrem(this.keys.workflowsOpen, id).exec();
  }

  /** The workflow's own fields, or null when it is gone. */
  async context(id: string): Promise<WorkflowContext | null> {
    const [kind, priority, cache, input, settings, requestId, keyId] = await this.redis.hmget(this.keys.workflow(id), 'kind', 'priority', 'cache', 'input', 'settings', 'request_id', 'api_key_id');
    if (!kind) return null;
    return { id, kind: kind as WorkflowKind, priority: Number(priority ?? 5), cache: cacheFlag(cache), input: json(input, {}), settings: json(settings, {}), request_id: requestId || null, api_key_id: keyId || null };
  }

  async defs(id: string, steps: readonly string[]): Promise<StepDef[]> {
    if (steps.length === 0) return [];
    const raw = await this.redis.hmget(this.keys.workflowDefs(id), ...steps);
    return raw.flatMap((v) => (v ? [JSON.parse(v) as StepDef] : []));
  }

  /** Records of the given steps (those that have settled). */
  async outputs(id: string, steps: readonly string[]): Promise<Map<string, StepRecord>> {
    if (steps.length === 0) return new Map();
    const vals = await this.redis.hmget(this.keys.workflowResults(id), ...steps);
    const out = new Map<string, StepRecord>();
    steps.forEach((s, i) => {
      const v = vals[i];
      if (v) out.set(s, JSON.parse(v) as StepRecord);
    });
    return out;
  }

  async states(id: string): Promise<Map<string, StepState>> {
    return new Map(Object.entries(await this.redis.hgetall(this.keys.workflowSteps(id))) as [string, StepState][]);
  }

  async settle(id: string, step: string, record: StepRecord, opts: { newSteps?: readonly StepDef[]; event: unknown; now: number }): Promise<SettleResult> {
    const newSteps = opts.newSteps?.length ? JSON.stringify(opts.newSteps.map((s) => ({ id: s.id, def: JSON.stringify(s), deps: s.depends_on }))) : '';
    const raw = await this.settleScript(this.allKeys(id), [
      step,
      record.state,
      JSON.stringify(record),
      opts.now,
      newSteps,
      JSON.stringify(record.error ?? { code: 'internal', message: `step ${step} failed` }),
      JSON.stringify(opts.event),
      STREAM_MAXLEN,
    ]);
    const o = JSON.parse(raw) as { result: SettleResult['result']; status: WorkflowStatus; pending: number; ready?: unknown; states?: Record<string, StepState>; error?: unknown };
    return {
      result: o.result,
      status: o.status,
      pending: o.pending,
      ready: list<{ def: string }>(o.ready).map((r) => JSON.parse(r.def) as StepDef),
      states: new Map(Object.entries(o.states ?? {})),
      error: parseError(o.error),
    };
  }

  async cancel(id: string, error: StepError, now: number): Promise<CancelOutcome> {
    const k = this.keys;
    const raw = await this.cancelScript([k.workflow(id), k.workflowSteps(id), k.stream(id)], [now, JSON.stringify(error), STREAM_MAXLEN]);
    const o = JSON.parse(raw) as { status: CancelOutcome['status']; pending: number; queued?: unknown; error?: unknown };
    return { status: o.status, pending: o.pending, queued: list<string>(o.queued), error: parseError(o.error) };
  }

  /** After step jobs were added: where each lives (GET /v1/jobs/:id works on steps), a step event each, workers woken. */
  async stepsQueued(id: string, jobs: readonly QueuedStep[]): Promise<void> {
    if (jobs.length === 0) return;
    const m = this.redis.multi();
    for (const j of jobs) {
      this.lifecycle.index(m, j.jobId, j.queue);
      appendEntry(m, this.keys.stream(id), 'step', JSON.stringify({ step: j.step, state: 'queued', job_id: j.jobId, queue: j.queue, model: j.model, stream_url: `/v1/jobs/${j.jobId}/stream` }));
    }
    for (const q of new Set(jobs.map((j) => j.queue))) this.lifecycle.wake(m, q);
    await m.exec();
  }

  /** Mark the workflow finished (by the finaliser) and let every key expire after the retention. */
  async finish(id: string, status: WorkflowStatus, payload: { result?: unknown; error?: StepError }, now: number): Promise<void> {
    const k = this.keys;
    const m = this.redis.multi();
    m.hset(k.workflow(id), {
      status,
      finished_at: String(now),
      updated_at: String(now),
      ...(payload.result !== undefined ? { result: JSON.stringify(payload.result) } : {}),
      ...(payload.error ? { error: JSON.stringify(payload.error) } : {}),
    });
    m.zrem(k.workflowsOpen, id);
    for (const key of this.allKeys(id)) m.expire(key, this.retentionS);
    await m.exec();
  }

  /** The terminal stream entry and the done message of a finished workflow, in one write. */
  async announceEnd(id: string, body: unknown, msg: DoneMessage): Promise<void> {
    await this.lifecycle.done(appendEnd(this.redis.multi(), this.keys.stream(id), msg.state === 'completed' ? 'done' : 'error', body, this.retentionS), msg).exec();
    // Count retention: the state of workflows older than the retained ones leaves with their jobs (lifecycle.ts retire).
    await this.lifecycle.retire('workflow', WORKFLOW_QUEUE, msg.state === 'completed' ? 'completed' : 'failed', id, (w) => [...this.allKeys(w), this.keys.jobIndex(w)]);
  }

  /** What the end announcement says: the final status with its result or error, or null while not finished. */
  async ending(id: string): Promise<{ status: WorkflowStatus; result: unknown; error: StepError | null; finished_at: number } | null> {
    const [status, result, error, finished] = await this.redis.hmget(this.keys.workflow(id), 'status', 'result', 'error', 'finished_at');
    if (!status) return null;
    return { status: status as WorkflowStatus, result: json<unknown>(result, null), error: parseError(error), finished_at: Number(finished) };
  }

  async exists(id: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.workflow(id))) === 1;
  }

  async status(id: string): Promise<{ status: WorkflowStatus; pending: number; updated_at: number } | null> {
    const [status, pending, updated] = await this.redis.hmget(this.keys.workflow(id), 'status', 'pending', 'updated_at');
    return status ? { status: status as WorkflowStatus, pending: Number(pending), updated_at: Number(updated) } : null;
  }

  async snapshot(id: string): Promise<WorkflowSnapshot | null> {
    const k = this.keys;
    const [meta, defs, states, records, order] = (await this.redis
      .multi()
      .hgetall(k.workflow(id))
      .hgetall(k.workflowDefs(id))
      .hgetall(k.workflowSteps(id))
      .hgetall(k.workflowResults(id))
      .lrange(k.workflowOrder(id), 0, -1)
      .exec())!.map(([err, v]) => {
      if (err) throw err;
      return v;
    }) as [Record<string, string>, Record<string, string>, Record<string, string>, Record<string, string>, string[]];
    if (!meta.status) return null;
    return {
      id,
      kind: meta.kind as WorkflowKind,
      name: meta.name || null,
      status: meta.status as WorkflowStatus,
      priority: Number(meta.priority ?? 5),
      cache: cacheFlag(meta.cache),
      input: json(meta.input, {}),
      settings: json(meta.settings, {}),
      created_at: Number(meta.created_at),
      finished_at: meta.finished_at ? Number(meta.finished_at) : null,
      request_id: meta.request_id || null,
      api_key_id: meta.api_key_id || null,
      pending: Number(meta.pending ?? 0),
      error: parseError(meta.error),
      failed_step: meta.failed_step ?? null,
      result: json<unknown>(meta.result, undefined),
      defs: new Map(Object.entries(defs).map(([s, v]) => [s, JSON.parse(v) as StepDef])),
      states: new Map(Object.entries(states).map(([s, v]) => [s, v as StepState])),
      records: new Map(Object.entries(records).map(([s, v]) => [s, JSON.parse(v) as StepRecord])),
      order,
    };
  }

  /** Workflows not finalised yet, oldest first. */
  async open(limit: number): Promise<string[]> {
    return this.redis.zrange(this.keys.workflowsOpen, '0', String(limit - 1));
  }

  /** Forget an open workflow (finished or gone) in the repair sweep's list. */
  async closeOpen(id: string): Promise<void> {
    await this.redis.zrem(this.keys.workflowsOpen, id);
  }

  /** One repair sweep at a time across processes: true when `owner` holds the lock for `ms`. */
  async lockSweep(owner: string, ms: number): Promise<boolean> {
    return (await this.redis.set(this.keys.workflowSweepLock, owner, 'PX', ms, 'NX')) === 'OK';
  }

  async unlockSweep(owner: string): Promise<void> {
    if ((await this.redis.get(this.keys.workflowSweepLock)) === owner) await this.redis.del(this.keys.workflowSweepLock);
  }
}
