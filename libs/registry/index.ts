// Node registry in Redis: register/heartbeat with a TTL, list live nodes, and atomic memory reservations per node.
import type { Redis } from 'ioredis';
import type { NodeRecord } from '../core/index.js';
import type { HydraKeys } from '../queue/index.js';

export interface NodeView extends NodeRecord {
  /** Jobs holding a reservation on this node right now (all its worker processes). */
  active_jobs: number;
  /** Reserved memory (MB) by running jobs. */
  reserved_mb: number;
}

/**
 * Reserve memory for one job on a node, atomically across every worker process sharing the node id.
 * Entries: field = job id, value = "model|mb|expiresAtMs". Memory counts once per distinct model
 * (concurrent requests share a loaded model); idle loaded models are not counted because the backend
 * evicts them to make room. Expired entries (a crashed worker) are dropped here.
 * Returns {1, used} when admitted, {0, used} when it does not fit.
 */
const RESERVE_LUA = `
local now = tonumber(ARGV[5])
local entries = redis.call('HGETALL', KEYS[1])
local perModel = {}
local total = 0
for i = 1, #entries, 2 do
  local f, v = entries[i], entries[i + 1]
  local model, mb, exp = string.match(v, '^(.*)|(%d+)|(%d+)$')
  if model == nil or tonumber(exp) <= now then
    redis.call('HDEL', KEYS[1], f)
  elseif f ~= ARGV[1] then
    mb = tonumber(mb)
    local cur = perModel[model]
    if cur == nil then perModel[model] = mb; total = total + mb
    elseif cur < mb then perModel[model] = mb; total = total + mb - cur end
  end
end
local need = tonumber(ARGV[3])
local cur = perModel[ARGV[2]]
local add = need
if cur ~= nil then add = math.max(0, need - cur) end
if total + add > tonumber(ARGV[4]) then return {0, total} end
local ttl = tonumber(ARGV[6])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. ARGV[3] .. '|' .. (now + ttl))
redis.call('PEXPIRE', KEYS[1], ttl * 4)
local used = total + add
if used > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], used) end
return {1, used}
`;

/** Push the expiry of this process's live entries forward (lock renewal). */
const RENEW_LUA = `
local exp = tonumber(ARGV[1])
for i = 3, #ARGV do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v then
    local model, mb = string.match(v, '^(.*)|(%d+)|%d+$')
    redis.call('HSET', KEYS[1], ARGV[i], model .. '|' .. mb .. '|' .. exp)
  end
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 4)
return 1
`;

type Reserver = Redis & {
  hydraReserve(k1: string, k2: string, jobId: string, model: string, mb: string, cap: string, now: string, ttl: string): Promise<[number, number]>;
  hydraRenew(k1: string, ...args: string[]): Promise<number>;
};

export class NodeRegistry {
  private readonly r: Reserver;

  constructor(
    redis: Redis,
    private readonly keys: HydraKeys,
  ) {
    this.r = redis as Reserver;
    if (!('hydraReserve' in redis)) {
      redis.defineCommand('hydraReserve', { numberOfKeys: 2, lua: RESERVE_LUA });
      redis.defineCommand('hydraRenew', { numberOfKeys: 1, lua: RENEW_LUA });
    }
  }

  /** Write the node's record with a TTL (a node that stops heartbeating disappears). */
  async heartbeat(rec: NodeRecord, ttlMs: number): Promise<void> {
    await this.r
      .multi()
      .set(this.keys.node(rec.id), JSON.stringify(rec), 'PX', ttlMs)
      .zadd(this.keys.nodes, rec.last_heartbeat, rec.id)
      .exec();
  }

  async deregister(id: string): Promise<void> {
    await this.r.multi().del(this.keys.node(id)).zrem(this.keys.nodes, id).exec();
  }

  /** Live nodes (record not expired), with their active jobs and reserved memory. */
  async list(now: number): Promise<NodeView[]> {
    const ids = await this.r.zrange(this.keys.nodes, '0', '-1');
    if (ids.length === 0) return [];
    const p = this.r.pipeline();
    for (const id of ids) p.get(this.keys.node(id)).hgetall(this.keys.reservations(id));
    const res = (await p.exec()) ?? [];
    const out: NodeView[] = [];
    const dead: string[] = [];
    ids.forEach((id, i) => {
      const raw = res[2 * i]?.[1] as string | null;
      if (!raw) return void dead.push(id);
      const resv = (res[2 * i + 1]?.[1] ?? {}) as Record<string, string>;
      let active = 0;
      const perModel = new Map<string, number>();
      for (const v of Object.values(resv)) {
        const m = /^(.*)\|(\d+)\|(\d+)$/.exec(v);
        if (!m || Number(m[3]) <= now) continue;
        active++;
        perModel.set(m[1]!, Math.max(perModel.get(m[1]!) ?? 0, Number(m[2])));
      }
      const reserved = [...perModel.values()].reduce((a, b) => a + b, 0);
      out.push({ ...(JSON.parse(raw) as NodeRecord), active_jobs: active, reserved_mb: reserved });
    });
    if (dead.length) await this.r.zrem(this.keys.nodes, ...dead);
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  async reserve(nodeId: string, jobId: string, model: string, mb: number, capacityMb: number, now: number, ttlMs: number): Promise<{ ok: boolean; usedMb: number }> {
    const [ok, used] = await this.r.hydraReserve(
      this.keys.reservations(nodeId),
      this.keys.reservationPeak(nodeId),
      jobId,
      model,
      String(Math.ceil(mb)),
      String(Math.floor(capacityMb)),
      String(now),
      String(ttlMs),
    );
    return { ok: ok === 1, usedMb: used };
  }

  async release(nodeId: string, jobId: string): Promise<void> {
    await this.r.hdel(this.keys.reservations(nodeId), jobId);
  }

  async renew(nodeId: string, jobIds: string[], now: number, ttlMs: number): Promise<void> {
    if (jobIds.length) await this.r.hydraRenew(this.keys.reservations(nodeId), String(now + ttlMs), String(ttlMs), ...jobIds);
  }

  /** Highest reserved memory (MB) ever admitted on a node: for tests and metrics. */
  async peakReservedMb(nodeId: string): Promise<number> {
    return Number((await this.r.get(this.keys.reservationPeak(nodeId))) ?? 0);
  }
}
