// Where a node's circuit-breaker state lives: one Redis hash per node id, read and compare-and-set by every worker
// process of that node, so they share one breaker. The state is opaque JSON here; the policy lives in the worker.
import { randomUUID } from 'node:crypto';
import { loadScript, replyCode, type HydraKeys, type RedisClient, type ScriptCall } from '../queue/index.js';

/** A version token ('' = no state yet) and the state's JSON ('' = none). */
export interface VersionedState {
  version: string;
  json: string;
}

export interface BreakerStore {
  read(): Promise<VersionedState>;
  /** Write `json` if the state is still at `expected`; either way answers the state now stored. */
  swap(expected: string, json: string): Promise<{ ok: boolean; now: VersionedState }>;
}

const SCRIPTS = new URL('./scripts/', import.meta.url);

/** The store of node `nodeId`; `ttlMs` bounds how long an untouched state outlives its last write (ms). */
export function redisBreakerStore(r: RedisClient, keys: HydraKeys, nodeId: string, ttlMs: number): BreakerStore {
  const cas: ScriptCall<[string, string, string]> = loadScript(r, SCRIPTS, 'breaker-cas');
  const key = keys.nodeBreaker(nodeId);
  return {
    async read() {
      const [v, s] = await r.hmget(key, 'v', 's');
      return { version: v ?? '', json: s ?? '' };
    },
    async swap(expected, json) {
      const next = randomUUID();
      const [code, version, stored] = await cas([key], [expected, next, json, Math.ceil(ttlMs)]);
      return { ok: replyCode('breaker-cas', code, ['ok', 'conflict']) === 'ok', now: { version, json: stored } };
    },
  };
}
