// The cache key of an inference call (a hash of the whole normalized request) and the policy that decides whether to use it. Pure.
import { createHash } from 'node:crypto';
import type { InferenceCall } from '../core/index.js';
import { canonicalModel } from '../scheduling/index.js';

/** Bumped when the normalization changes, so old entries are never read with a new meaning. */
const KEY_VERSION = 'v1';

/** JSON with object keys sorted at every level: equal values give equal text whatever the key order. */
export function canonicalJson(v: unknown): string {
  if (v === undefined) return 'null';
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(v as Record<string, unknown>)
    .filter(([, x]) => x !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
}

/**
 * What decides the answer: type, model (canonical: `llama3` = `llama3:latest`), prompt or messages (with images),
 * system, format, input, and every option. `keep_alive` only says how long the model stays loaded, so it is left out.
 */
function normalizeCall(call: InferenceCall): Record<string, unknown> {
  const { keep_alive: _keepAlive, ...rest } = call;
  return { ...rest, model: canonicalModel(call.model) };
}

/** Hex SHA-256 of the normalized call. */
export function cacheKeyOf(call: InferenceCall): string {
  return hashKey(normalizeCall(call));
}

/** Hex SHA-256 of any JSON value (e.g. a whole orchestration request), in the same key space. */
export function hashKey(value: unknown): string {
  return createHash('sha256').update(`${KEY_VERSION}\n${canonicalJson(value)}`).digest('hex');
}

/** Sampling that gives the same answer every time: temperature 0 or a fixed seed. Embeddings are deterministic. */
export function isDeterministic(call: InferenceCall): boolean {
  if (call.type === 'embed') return true;
  return call.options?.temperature === 0 || call.options?.seed !== undefined;
}

export interface CacheDecision {
  /** Look up before enqueueing, store after completion. */
  use: boolean;
  /** Why, in words (shown to users). */
  reason: string;
}

/**
 * `cache: false` bypasses, `cache: true` forces; unset caches only deterministic requests,
 * so two sampled answers to one prompt are never served as one.
 */
export function cacheDecision(call: InferenceCall, requested: boolean | undefined): CacheDecision {
  return cachePolicy(isDeterministic(call), requested);
}

export function cachePolicy(deterministic: boolean, requested: boolean | undefined): CacheDecision {
  if (requested === false) return { use: false, reason: 'cache: false' };
  if (requested === true) return { use: true, reason: 'cache: true' };
  if (deterministic) return { use: true, reason: 'deterministic (temperature 0, a seed, or embeddings)' };
  return { use: false, reason: 'not deterministic (set options.temperature to 0 or a seed, or cache: true)' };
}
