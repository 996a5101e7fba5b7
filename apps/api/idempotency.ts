// Idempotent submits: an `Idempotency-Key` header on a POST that creates work (a job, a workflow) makes a retry of the
// same request return the original job instead of a second one. The first request claims the key in Redis (SET NX:
// concurrent duplicates cannot both win) with the id it is about to create and a fingerprint of the request; a
// later one with the same key and the same request gets that id, one with a different request a 422 naming the
// conflict. Keys are per API key (the key id; one scope for all without API_KEYS) and live IDEMPOTENCY_TTL_S.
import { createHash } from 'node:crypto';
import type { Request } from 'express';
import { ErrorCode, HydraError } from '../../libs/core/index.js';
import { keyIdOf } from './auth.js';
import type { ApiContext } from './context.js';

export const IDEMPOTENCY_HEADER = 'idempotency-key';
/** Set on an answer that replays an earlier request's job (Stripe's and others' name for it). */
export const REPLAYED_HEADER = 'Idempotent-Replayed';

export type Claim =
  /** No Idempotency-Key: an ordinary submit. */
  | { kind: 'none' }
  /** This request holds the key: create the work under `id`; `release` if it is refused before anything was added. */
  | { kind: 'new'; id: string; release: () => Promise<void> }
  /** An earlier request with the same key and the same body created `id`. */
  | { kind: 'replay'; id: string; at: number };

interface Stored {
  /** Fingerprint of method, path and body. */
  f: string;
  id: string;
  what: 'job' | 'workflow' | 'batch';
  path: string;
  at: number;
}

/** JSON with object keys sorted, so the same body written in another key order has the same fingerprint. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .filter((k) => o[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** Visible ASCII and spaces, 1-255 characters (what HTTP header values carry safely). */
const VALID = /^[\x21-\x7e][\x20-\x7e]{0,254}$/;

/** Compare-and-delete: only the request that claimed the key releases it. */
const RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

/**
 * Claim the request's Idempotency-Key for `what` with the id `newId` gives, or find the earlier request's. Throws
 * bad_request for a malformed key and idempotency_conflict (422) for the same key with a different request.
 */
export async function claimIdempotency(ctx: ApiContext, req: Request, what: Stored['what'], newId: () => string): Promise<Claim> {
  const raw = req.header(IDEMPOTENCY_HEADER);
  if (raw === undefined) return { kind: 'none' };
  if (!VALID.test(raw)) {
    throw new HydraError(ErrorCode.BadRequest, 'Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is a good one), without leading spaces', {
      details: { problems: [{ field: 'Idempotency-Key', problem: 'must be 1 to 255 visible ASCII characters' }] },
    });
  }
  const scope = keyIdOf(req, ctx.config.API_KEYS) ?? 'open';
  const key = ctx.keys.idempotency(scope, sha256(raw));
  const path = `${req.method} ${req.baseUrl}${req.path}`;
  const f = sha256(`${path}\n${canonicalJson(req.body)}`);
  const ttl = ctx.config.IDEMPOTENCY_TTL_S;
  for (let tries = 0; tries < 3; tries++) {
    const mine: Stored = { f, id: newId(), what, path, at: Date.now() };
    const value = JSON.stringify(mine);
    if ((await ctx.redis.set(key, value, 'EX', ttl, 'NX')) === 'OK') {
      return { kind: 'new', id: mine.id, release: async () => void (await ctx.redis.eval(RELEASE, 1, key, value).catch(() => undefined)) };
    }
    const found = await ctx.redis.get(key);
    if (found === null) continue; // expired or released between the two: try to claim it again
    let earlier: Stored;
    try {
      earlier = JSON.parse(found) as Stored;
    } catch {
      throw new HydraError(ErrorCode.Internal, `the record of Idempotency-Key "${raw}" is unreadable`);
    }
    if (earlier.f !== f) {
      throw new HydraError(
        ErrorCode.IdempotencyConflict,
        `Idempotency-Key "${raw}" was used ${new Date(earlier.at).toISOString()} for a different request (${earlier.path}, ${earlier.what} ${earlier.id}); ` +
          'a key stands for one request: send the same request again to get that one, or use a new key for a new request',
        { details: { original: { what: earlier.what, id: earlier.id, path: earlier.path, at: new Date(earlier.at).toISOString() } } },
      );
    }
    return { kind: 'replay', id: earlier.id, at: earlier.at };
  }
  throw new HydraError(ErrorCode.Unavailable, `Idempotency-Key "${raw}" is being claimed and released by other requests; retry shortly`, { retryable: true, details: { retry_after_s: 1 } });
}
