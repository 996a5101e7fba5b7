// Node registry in Redis: register/heartbeat with a TTL, list live nodes, and atomic memory reservations per node.
import { randomUUID } from 'node:crypto';
import type { NodeRecord } from '../core/index.js';
import { asHash, asPairs, loadScript, replyCode, type HydraKeys, type RedisClient, type ScriptCall } from '../queue/index.js';
import { parsePerf } from './perf.js';
import { recentModelsEntry } from './recent-models.js';
import { RESERVE_OUTCOMES, reserveCall, type ReserveOutcome, type ReserveRequest } from './take.js';

export { jobTaker, type JobTaker, type ReserveOutcome, type ReserveRequest, type TakeOutcome, type TakeRequest } from './take.js';

export interface NodeView extends NodeRecord {
  /** Jobs holding a reservation on this node right now (all its worker processes). */
  active_jobs: number;
  /** Reserved memory (MB) by running jobs. */
  reserved_mb: number;
  /** Running jobs per model (reservations), to compare with the backend's per-model limit `parallel`. */
  inflight_by_model: Record<string, number>;
  /** Live worker processes serving this node id; `slots` is the sum of theirs. */
  processes: number;
}

/**
 * How old the shared registry snapshot may be when read (NodeRegistry.shared), for every process that reads it: rebuilt
 * at most this often by whichever process finds it older, and dropped at once when a node joins, leaves or changes what
 * routing looks at. 250 ms made the API rebuild it 4 times a second under load: 80 Redis commands a job at 200 nodes
 * (bench:scale).
 */
export const REGISTRY_SNAPSHOT_MAX_AGE_MS = 500;

/** This lib's Lua (reserve.lua, renew.lua, leave.lua, fence.lua): one atomic step across every process of a node. */
const REGISTRY_SCRIPTS = new URL('./scripts/', import.meta.url);

export class NodeRegistry {
  private readonly reserveScript: ScriptCall<[string, number]>;
  private readonly renewScript: ScriptCall<number>;
  private readonly leaveScript: ScriptCall<[string, number]>;
  private readonly fenceScript: ScriptCall<[string, string?]>;
  private readonly snapshotScript: ScriptCall<[string, string, string, string]>;
  private readonly storeScript: ScriptCall<number>;
  private readonly readNodesScript: ScriptCall<string[]>;
  /** The snapshot this instance last read (`shared`): its Redis build time and the nodes in it. */
  private held: { at: string; nodes: NodeView[] } | null = null;
  /** Each node's record as `list` last read it, raw and parsed (records are never mutated: views are copies). */
  private parsed = new Map<string, { raw: string; rec: NodeRecord }>();

  constructor(
    private readonly r: RedisClient,
    private readonly keys: HydraKeys,
  ) {
    this.reserveScript = loadScript(r, REGISTRY_SCRIPTS, 'reserve');
    this.renewScript = loadScript(r, REGISTRY_SCRIPTS, 'renew');
    this.leaveScript = loadScript(r, REGISTRY_SCRIPTS, 'leave');
    this.fenceScript = loadScript(r, REGISTRY_SCRIPTS, 'fence');
    this.snapshotScript = loadScript(r, REGISTRY_SCRIPTS, 'snapshot');
    this.storeScript = loadScript(r, REGISTRY_SCRIPTS, 'snapshot-store');
    this.readNodesScript = loadScript(r, REGISTRY_SCRIPTS, 'read-nodes');
  }

  /**
   * Write the node's record with a TTL (a node that stops heartbeating disappears). With `procId`, also this worker
   * process's membership of the node (its slots, live for `ttlMs`): `list` sums slots over live processes.
   */
  async heartbeat(rec: NodeRecord, ttlMs: number, procId?: string, opts: { unchanged?: boolean } = {}): Promise<void> {
    const m = this.r.multi();
    // Unless the caller knows nothing that routing looks at changed since its last beat (a join, a health change,
    // other models loaded do), the shared snapshot is dropped, so every process sees the new record at its next read.
    if (!opts.unchanged) this.dropShared(m, rec.id);
    await m
      .set(this.keys.node(rec.id), JSON.stringify(rec), 'PX', ttlMs)
      .zadd(this.keys.nodes, rec.last_heartbeat, rec.id)
      .hset(this.keys.nodeProcs(rec.id), procId ?? 'default', `${rec.slots}|${rec.last_heartbeat + ttlMs}`)
      .pexpire(this.keys.nodeProcs(rec.id), ttlMs * 4)
      // What this node has, remembered past its TTL (MODEL_GRACE_MS): recent-models.ts.
      .hset(...recentModelsEntry(this.keys, rec))
      .exec();
  }

  /** Remove the node at once (every process). */
  async deregister(id: string): Promise<void> {
    await this.dropShared(this.r.multi().del(this.keys.node(id), this.keys.nodeProcs(id)).zrem(this.keys.nodes, id), id).exec();
  }

  /** Process `procId` of node `id` leaves; the node is deregistered only with its last live process. True when it was. */
  async leave(id: string, procId: string, now: number): Promise<boolean> {
    const [code] = await this.leaveScript([this.keys.node(id), this.keys.nodes, this.keys.nodeProcs(id)], [id, procId, now]);
    const gone = replyCode('leave', code, ['gone', 'stays']) === 'gone';
    if (gone) await this.invalidateShared();
    return gone;
  }

  /** Live nodes (record not expired), with their active jobs and reserved memory. */
  async list(now: number): Promise<NodeView[]> {
    const ids = await this.r.zrange(this.keys.nodes, '0', '-1');
    if (ids.length === 0) return [];
    // One script call for every node's record and hashes (read-nodes.lua), not 4 commands per node.
    const keys = ids.flatMap((id) => [this.keys.node(id), this.keys.reservations(id), this.keys.nodeProcs(id), this.keys.nodePerf(id)]);
    const res = await this.readNodesScript(keys, []);
    const out: NodeView[] = [];
    const dead: string[] = [];
    const parsed = new Map<string, { raw: string; rec: NodeRecord }>();
    ids.forEach((id, i) => {
      const raw = res[4 * i];
      if (!raw) return void dead.push(id);
      const hash = (j: number) => asHash(asPairs(res[4 * i + j] ?? '', keys[4 * i + j]!));
      const procs = liveProcesses(hash(2), now);
      const { active, reservedMb: reserved, inflight } = readReservations(hash(1), now);
      // A record changes at its node's heartbeat (every HEARTBEAT_MS); reads in between reuse its parse.
      const known = this.parsed.get(id);
      const rec = known?.raw === raw ? known.rec : (JSON.parse(raw) as NodeRecord);
      parsed.set(id, { raw, rec });
      // Each process writes the record with its own slots; the node has the sum over its live processes.
      const slots = procs.length ? procs.reduce((a, n) => a + n, 0) : rec.slots;
      const perf = parsePerf(hash(3));
      out.push({ ...rec, slots, active_jobs: active, reserved_mb: reserved, inflight_by_model: inflight, processes: Math.max(1, procs.length), ...(Object.keys(perf).length ? { perf } : {}) });
    });
    this.parsed = parsed;
    if (dead.length) await this.r.zrem(this.keys.nodes, ...dead);
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  /**
   * `list` as of at most about `maxAgeMs` ago, shared by every process through one key (snapshot.lua): one process per
   * `maxAgeMs` builds it with `list`, every other reads one key, and a process that holds the current snapshot already
   * gets a two-field reply. Worker processes read the registry every second; each reading it whole cost 4 commands per
   * node per process (4 x N^2 a second with one process per node: bench:scale). While another process rebuilds, the
   * previous snapshot serves; one older than the build lock's life (a builder that died) is not trusted: `list` then.
   */
  async shared(maxAgeMs: number): Promise<NodeView[]> {
    const maxAge = Math.max(1, Math.floor(maxAgeMs));
    const lockMs = Math.max(1000, 4 * maxAge);
    const token = randomUUID();
    const [code, nowS, at, body] = await this.snapshotScript([this.keys.registrySnapshot, this.keys.registrySnapshotLock], [maxAge, lockMs, this.held?.at ?? '', token]);
    const what = replyCode('snapshot', code, ['same', 'fresh', 'build', 'stale', 'none']);
    if (what === 'same' && this.held?.at === at) return this.held.nodes;
    if (what === 'fresh' || (what === 'stale' && Number(nowS) - Number(at) <= lockMs + maxAge)) {
      if (this.held?.at !== at) this.held = { at, nodes: JSON.parse(body) as NodeView[] };
      return this.held.nodes;
    }
    const nodes = await this.list(Date.now());
    // Stored only if nothing dropped the snapshot (and so the lock) since this build began: snapshot-store.lua.
    if (what === 'build') {
      const stored = await this.storeScript([this.keys.registrySnapshot, this.keys.registrySnapshotLock], [token, nowS, JSON.stringify(nodes), Math.max(10_000, 20 * maxAge)]);
      if (stored === 1) this.held = { at: nowS, nodes };
    }
    return nodes;
  }

  /**
   * Drop the shared snapshot (a node joined or left, a first speed figure): the next `shared` reads the registry again.
   * The build lock goes too, so a build already under way does not store what it read before the change. Announced on
   * `channels.registry`, as every drop is, so the API drops its cached list too.
   */
  async invalidateShared(): Promise<void> {
    await this.dropShared(this.r.multi(), '').exec();
  }

  /** The snapshot and its build lock deleted, and the drop announced (payload: the node, or ''), added to `m`. */
  private dropShared<M extends ReturnType<RedisClient['multi']>>(m: M, nodeId: string): M {
    m.del(this.keys.registrySnapshot, this.keys.registrySnapshotLock).publish(this.keys.channels.registry, nodeId);
    return m;
  }

  /**
   * Admit a job of `model` needing `mb` if the node's reservations leave room under `capacityMb`, the model has a free
   * backend slot (fewer than `parallel` in flight) and the node's fence (if any) still fits beside it. `usedMb` is the
   * total then (without the job when refused).
   */
  async reserve(r: ReserveRequest): Promise<{ ok: boolean; why: ReserveOutcome; usedMb: number }> {
    const call = reserveCall(this.keys, r);
    const [code, used] = await this.reserveScript(call.keys, call.argv);
    const why = replyCode('reserve', code, RESERVE_OUTCOMES);
    return { ok: why === 'admitted', why, usedMb: used };
  }

  /**
   * Hold memory back on `nodeId` for `job` (the most urgent job it could serve that does not fit now), unless another
   * node already does: then the answer names it. The fence lives `ttlMs` unless refreshed.
   */
  async fence(nodeId: string, job: { id: string; model: string; mb: number; bullPriority: number }, now: number, ttlMs: number): Promise<{ ok: true } | { ok: false; owner: string }> {
    const [code, owner] = await this.fenceScript([this.keys.nodeFence(nodeId), this.keys.fenceClaim(job.id)], ['set', nodeId, job.id, job.model, Math.ceil(job.mb), job.bullPriority, now, ttlMs]);
    return replyCode('fence', code, ['fenced', 'claimed']) === 'fenced' ? { ok: true } : { ok: false, owner: owner ?? '' };
  }

  /** Take down `nodeId`'s fence for `jobId` (and its claim), if it is still the one standing. */
  async unfence(nodeId: string, jobId: string): Promise<void> {
    await this.fenceScript([this.keys.nodeFence(nodeId), this.keys.fenceClaim(jobId)], ['clear', nodeId, jobId, '', 0, 0, 0, 0]);
  }

  /** The job `nodeId` holds memory back for right now, if any (for /v1/nodes and tests). */
  async fenceOf(nodeId: string, now: number): Promise<{ jobId: string; model: string; mb: number } | null> {
    const raw = await this.r.get(this.keys.nodeFence(nodeId));
    const m = raw ? /^(.*)\|(.*)\|(\d+)\|(\d+)\|(\d+)$/.exec(raw) : null;
    return m && Number(m[5]) > now ? { jobId: m[1]!, model: m[2]!, mb: Number(m[3]) } : null;
  }

  async release(nodeId: string, jobId: string): Promise<void> {
    await this.r.hdel(this.keys.reservations(nodeId), jobId);
  }

  async renew(nodeId: string, jobIds: string[], now: number, ttlMs: number): Promise<void> {
    if (jobIds.length) await this.renewScript([this.keys.reservations(nodeId)], [now + ttlMs, ttlMs, ...jobIds]);
  }

  /** Highest reserved memory (MB) ever admitted on a node: for tests and metrics. */
  async peakReservedMb(nodeId: string): Promise<number> {
    return Number((await this.r.get(this.keys.reservationPeak(nodeId))) ?? 0);
  }
}
/**
 * A node's reservations hash ("token" → "model|mb|expiresAtMs", reserve.lua) read as the registry means it: live
 * entries, memory once per model (its largest entry), running jobs per model. The one parser of that format.
 */
export function readReservations(resv: Readonly<Record<string, string>>, now: number): { active: number; reservedMb: number; inflight: Record<string, number> } {
  let active = 0;
  const perModel = new Map<string, number>();
  const inflight: Record<string, number> = {};
  for (const v of Object.values(resv)) {
    const m = /^(.*)\|(\d+)\|(\d+)$/.exec(v);
    if (!m || Number(m[3]) <= now) continue;
    active++;
    inflight[m[1]!] = (inflight[m[1]!] ?? 0) + 1;
    perModel.set(m[1]!, Math.max(perModel.get(m[1]!) ?? 0, Number(m[2])));
  }
  return { active, reservedMb: [...perModel.values()].reduce((a, b) => a + b, 0), inflight };
}

/** Slots of each live process from a node's `procs` hash ("slots|expiresAtMs"). */
function liveProcesses(procs: Record<string, string>, now: number): number[] {
  const out: number[] = [];
  for (const v of Object.values(procs)) {
    const m = /^(\d+)\|(\d+)$/.exec(v);
    if (m && Number(m[2]) > now) out.push(Number(m[1]));
  }
  return out;
}

export * from './breaker-store.js';
export * from './node-list.js';
export * from './perf.js';
export * from './recent-models.js';
