// Workflow state in Redis: created in one MULTI, advanced by one Lua call per settled step (idempotent), cancelled by one Lua call.
import type { Redis } from 'ioredis';
import type { HydraKeys } from '../queue/index.js';
import {
  type StepDef,
  type StepError,
  type StepRecord,
  type StepState,
  type WorkflowKind,
  type WorkflowSnapshot,
  type WorkflowStatus,
} from './types.js';

/**
 * Settle one step. Idempotent: a step that is not `queued` (already settled, e.g. a redelivered completion or a
 * second reconcile) changes nothing and returns 'dup', so dependents are never counted down twice.
 * New steps (the orchestrator's next stage) are added in the same call, before this step settles, so `pending`
 * never touches 0 between a stage and the stage it spawns. A satisfied step (completed, or optional and failed)
 * counts down its dependents; one that reaches 0 is claimed (`queued`) here, so exactly one caller enqueues it.
 * A required step that fails turns the workflow to `failing` and skips every step that has not started.
 *
 * KEYS: meta steps deps defs rdeps sat res stream order
 * ARGV: step outcome recordJson now newStepsJson errorJson eventJson
 * Returns {'ok'|'dup'|'unknown', status, pending, ready...}
 */
const SETTLE_LUA = `
local id, outcome = ARGV[1], ARGV[2]
local cur = redis.call('HGET', KEYS[2], id)
local status = redis.call('HGET', KEYS[1], 'status')
if not status or not cur then return {'unknown', status or '', '0'} end
if cur ~= 'queued' then return {'dup', status, redis.call('HGET', KEYS[1], 'pending') or '0'} end
local pending = tonumber(redis.call('HGET', KEYS[1], 'pending'))
local ready = {}
local function optional(sid)
  local d = redis.call('HGET', KEYS[4], sid)
  return d ~= false and cjson.decode(d).optional == true
end
if ARGV[5] ~= '' and status == 'running' then
  local added = 0
  for _, ns in ipairs(cjson.decode(ARGV[5])) do
    if redis.call('HSETNX', KEYS[4], ns.id, ns.def) == 1 then
      added = added + 1
      redis.call('RPUSH', KEYS[9], ns.id)
      local unmet = 0
      for _, d in ipairs(ns.deps) do
        local rd = cjson.decode(redis.call('HGET', KEYS[5], d) or '[]')
        table.insert(rd, ns.id)
        redis.call('HSET', KEYS[5], d, cjson.encode(rd))
        if redis.call('SISMEMBER', KEYS[6], d) == 0 then unmet = unmet + 1 end
      end
      redis.call('HSET', KEYS[3], ns.id, unmet)
      if unmet == 0 then
        redis.call('HSET', KEYS[2], ns.id, 'queued')
        table.insert(ready, ns.id)
      else
        redis.call('HSET', KEYS[2], ns.id, 'waiting')
      end
    end
  end
  pending = pending + added
end
redis.call('HSET', KEYS[2], id, outcome)
redis.call('HSET', KEYS[7], id, ARGV[3])
pending = pending - 1
local sat = outcome == 'completed' or optional(id)
if sat then redis.call('SADD', KEYS[6], id) end
if status == 'running' then
  if sat then
    local rd = redis.call('HGET', KEYS[5], id)
    if rd then
      for _, dep in ipairs(cjson.decode(rd)) do
        local n = redis.call('HINCRBY', KEYS[3], dep, -1)
        if n <= 0 and redis.call('HGET', KEYS[2], dep) == 'waiting' then
          redis.call('HSET', KEYS[2], dep, 'queued')
          table.insert(ready, dep)
        end
      end
    end
  else
    status = 'failing'
    redis.call('HSET', KEYS[1], 'status', status, 'error', ARGV[6], 'failed_step', id)
    local all = redis.call('HGETALL', KEYS[2])
    for i = 1, #all, 2 do
      if all[i + 1] == 'waiting' then
        redis.call('HSET', KEYS[2], all[i], 'skipped')
        pending = pending - 1
      end
    end
    for _, r in ipairs(ready) do
      redis.call('HSET', KEYS[2], r, 'skipped')
      pending = pending - 1
    end
    ready = {}
  end
end
redis.call('HSET', KEYS[1], 'pending', pending, 'updated_at', ARGV[4])
redis.call('XADD', KEYS[8], 'MAXLEN', '~', '10000', '*', 'e', 'step', 'd', ARGV[7])
local out = {'ok', status, tostring(pending)}
for _, r in ipairs(ready) do table.insert(out, r) end
return out
`;

/**
 * Cancel: a running workflow turns `cancelling`, steps that have not started are skipped, and the queued ones
 * are returned so the caller removes or aborts their jobs (each then settles as cancelled).
 * KEYS: meta steps stream   ARGV: now errorJson
 * Returns {status, pending, queued...}
 */
const CANCEL_LUA = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'unknown', '0'} end
local pending = tonumber(redis.call('HGET', KEYS[1], 'pending'))
local queued = {}
if status == 'running' or status == 'failing' then
  if status == 'running' then
    status = 'cancelling'
    redis.call('HSET', KEYS[1], 'status', status, 'error', ARGV[2])
  end
  local all = redis.call('HGETALL', KEYS[2])
  for i = 1, #all, 2 do
    if all[i + 1] == 'waiting' then
      redis.call('HSET', KEYS[2], all[i], 'skipped')
      pending = pending - 1
    elseif all[i + 1] == 'queued' then
      table.insert(queued, all[i])
    end
  end
  redis.call('HSET', KEYS[1], 'pending', pending, 'updated_at', ARGV[1])
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', '10000', '*', 'e', 'cancelling', 'd', ARGV[2])
end
local out = {status, tostring(pending)}
for _, q in ipairs(queued) do table.insert(out, q) end
return out
`;

type Scripted = Redis & {
  hydraWfSettle(...args: string[]): Promise<string[]>;
  hydraWfCancel(...args: string[]): Promise<string[]>;
};

export interface NewStep {
  def: StepDef;
}

export interface SettleResult {
  result: 'ok' | 'dup' | 'unknown';
  status: WorkflowStatus;
  pending: number;
  ready: string[];
}

export interface CreateInput {
  id: string;
  kind: WorkflowKind;
  name?: string | undefined;
  priority: number;
  cache?: boolean | undefined;
  input: Record<string, string | number | boolean>;
  settings: Record<string, unknown>;
  steps: StepDef[];
  now: number;
}

export class WorkflowStore {
  private readonly r: Scripted;

  constructor(
    redis: Redis,
    private readonly keys: HydraKeys,
  ) {
    this.r = redis as Scripted;
    if (!('hydraWfSettle' in redis)) {
      redis.defineCommand('hydraWfSettle', { numberOfKeys: 9, lua: SETTLE_LUA });
      redis.defineCommand('hydraWfCancel', { numberOfKeys: 3, lua: CANCEL_LUA });
    }
  }

  /** Every key of one workflow. */
  allKeys(id: string): string[] {
    const k = this.keys;
    return [
      k.workflow(id),
      k.workflowSteps(id),
      k.workflowDeps(id),
      k.workflowDefs(id),
      k.workflowDependents(id),
      k.workflowSatisfied(id),
      k.workflowResults(id),
      k.stream(id),
      k.workflowOrder(id),
    ];
  }

  /** Write the whole definition at once; steps without dependencies start claimed (`queued`). Returns those ids. */
  async create(w: CreateInput): Promise<string[]> {
    const k = this.keys;
    const ready = w.steps.filter((s) => s.depends_on.length === 0).map((s) => s.id);
    const rdeps = new Map<string, string[]>();
    for (const s of w.steps) for (const d of s.depends_on) rdeps.set(d, [...(rdeps.get(d) ?? []), s.id]);
    const m = this.r.multi();
    m.hset(k.workflow(w.id), {
      id: w.id,
      kind: w.kind,
      name: w.name ?? '',
      status: 'running',
      priority: String(w.priority),
      cache: w.cache === undefined ? '' : String(w.cache),
      input: JSON.stringify(w.input),
      settings: JSON.stringify(w.settings),
      created_at: String(w.now),
      updated_at: String(w.now),
      pending: String(w.steps.length),
    });
    m.rpush(k.workflowOrder(w.id), ...w.steps.map((s) => s.id));
    m.hset(k.workflowDefs(w.id), Object.fromEntries(w.steps.map((s) => [s.id, JSON.stringify(s)])));
    m.hset(k.workflowSteps(w.id), Object.fromEntries(w.steps.map((s) => [s.id, s.depends_on.length === 0 ? 'queued' : 'waiting'])));
    m.hset(k.workflowDeps(w.id), Object.fromEntries(w.steps.map((s) => [s.id, String(s.depends_on.length)])));
    if (rdeps.size > 0) m.hset(k.workflowDependents(w.id), Object.fromEntries([...rdeps].map(([d, list]) => [d, JSON.stringify(list)])));
    m.zadd(k.workflowsOpen, w.now, w.id);
    await m.exec();
    return ready;
  }

  async settle(id: string, step: string, record: StepRecord, opts: { newSteps?: StepDef[]; event: unknown; now: number }): Promise<SettleResult> {
    const newSteps = opts.newSteps?.length ? JSON.stringify(opts.newSteps.map((s) => ({ id: s.id, def: JSON.stringify(s), deps: s.depends_on }))) : '';
    const out = await this.r.hydraWfSettle(
      ...this.allKeys(id),
      step,
      record.state,
      JSON.stringify(record),
      String(opts.now),
      newSteps,
      JSON.stringify(record.error ?? { code: 'internal', message: `step ${step} failed` }),
      JSON.stringify(opts.event),
    );
    return { result: out[0] as SettleResult['result'], status: out[1] as WorkflowStatus, pending: Number(out[2]), ready: out.slice(3) };
  }

  async cancel(id: string, error: StepError, now: number): Promise<{ status: WorkflowStatus | 'unknown'; pending: number; queued: string[] }> {
    const k = this.keys;
    const out = await this.r.hydraWfCancel(k.workflow(id), k.workflowSteps(id), k.stream(id), String(now), JSON.stringify(error));
    return { status: out[0] as WorkflowStatus, pending: Number(out[1]), queued: out.slice(2) };
  }

  /** Mark the workflow finished (by the finaliser) and let every key expire after `retentionS`. */
  async finish(id: string, status: WorkflowStatus, payload: { result?: unknown; error?: StepError }, now: number, retentionS: number): Promise<void> {
    const k = this.keys;
    const m = this.r.multi();
    m.hset(k.workflow(id), {
      status,
      finished_at: String(now),
      updated_at: String(now),
      ...(payload.result !== undefined ? { result: JSON.stringify(payload.result) } : {}),
      ...(payload.error ? { error: JSON.stringify(payload.error) } : {}),
    });
    m.zrem(k.workflowsOpen, id);
    for (const key of this.allKeys(id)) m.expire(key, retentionS);
    await m.exec();
  }

  async exists(id: string): Promise<boolean> {
    return (await this.r.exists(this.keys.workflow(id))) === 1;
  }

  async status(id: string): Promise<{ status: WorkflowStatus; pending: number; updated_at: number } | null> {
    const [status, pending, updated] = await this.r.hmget(this.keys.workflow(id), 'status', 'pending', 'updated_at');
    return status ? { status: status as WorkflowStatus, pending: Number(pending), updated_at: Number(updated) } : null;
  }

  async snapshot(id: string): Promise<WorkflowSnapshot | null> {
    const k = this.keys;
    const [meta, defs, states, records, order] = (await this.r
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
    const json = <T>(s: string | undefined, dflt: T): T => (s ? (JSON.parse(s) as T) : dflt);
    return {
      id,
      kind: meta.kind as WorkflowKind,
      name: meta.name || null,
      status: meta.status as WorkflowStatus,
      priority: Number(meta.priority ?? 5),
      cache: meta.cache === 'true' ? true : meta.cache === 'false' ? false : undefined,
      input: json(meta.input, {}),
      settings: json(meta.settings, {}),
      created_at: Number(meta.created_at),
      finished_at: meta.finished_at ? Number(meta.finished_at) : null,
      pending: Number(meta.pending ?? 0),
      error: json<StepError | null>(meta.error, null),
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
    return this.r.zrange(this.keys.workflowsOpen, '0', String(limit - 1));
  }

  async outputs(id: string, steps: readonly string[]): Promise<Map<string, StepRecord>> {
    if (steps.length === 0) return new Map();
    const vals = await this.r.hmget(this.keys.workflowResults(id), ...steps);
    const out = new Map<string, StepRecord>();
    steps.forEach((s, i) => {
      const v = vals[i];
      if (v) out.set(s, JSON.parse(v) as StepRecord);
    });
    return out;
  }
}
