// /v1/history and /v1/history/stats: finished jobs and workflows from the results history (libs/memory), filtered and
// paged, and aggregates per model, node or day over any time range the store holds.
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { ErrorCode, HydraError, zodProblems } from '../../../libs/core/index.js';
import { BadCursorError, HistoryQuerySchema, STATS_BY, type HistoryStore } from '../../../libs/memory/index.js';
import type { ApiContext } from '../context.js';
import { route } from '../errors.js';

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** A point in time: ms since epoch, an ISO date, or an age before now ("90s", "15m", "24h", "7d"). */
const instant = (now: number) =>
  z.string().transform((v, c) => {
    const age = /^(\d+)([smhd])$/.exec(v);
    if (age) return now - Number(age[1]) * UNIT_MS[age[2] as keyof typeof UNIT_MS];
    if (/^\d+$/.test(v)) return Number(v);
    const t = /^\d{4}-\d{2}-\d{2}/.test(v) ? Date.parse(v) : Number.NaN;
    if (Number.isFinite(t)) return t;
    c.addIssue({ code: 'custom', message: 'must be ms since epoch, an ISO date (2026-01-31 or 2026-01-31T12:00:00Z) or an age such as 24h or 7d' });
    return z.NEVER;
  });

const text = z.string();
function listSchema(now: number) {
  return z
    .object({
      kind: text.optional(),
      model: text.optional(),
      node: text.optional(),
      outcome: text.optional(),
      request_id: text.optional(),
      api_key_id: text.optional(),
      workflow_id: text.optional(),
      since: instant(now).optional(),
      until: instant(now).optional(),
      q: text.optional(),
      limit: z.string().regex(/^\d+$/, 'must be a whole number').transform(Number).optional(),
      cursor: text.optional(),
    })
    .strict()
    .pipe(HistoryQuerySchema);
}

function statsSchema(now: number) {
  return z
    .object({
      by: z.enum(STATS_BY, { error: `must be one of ${STATS_BY.join(', ')}` }).default('model'),
      since: instant(now).optional(),
      until: instant(now).optional(),
    })
    .strict();
}

/** The query string, parsed, or a 400 naming each bad parameter. Repeated parameters (?a=1&a=2) are refused. */
function parseQuery<T>(schema: z.ZodType<T>, req: Request): T {
  const r = schema.safeParse(req.query);
  if (r.success) return r.data;
  const fields = zodProblems(r.error).map((p) => ({ ...p, problem: p.problem.replace(/expected string, received array/, 'is given more than once') }));
  throw new HydraError(ErrorCode.BadRequest, `invalid query: ${fields.map((p) => `${p.field} ${p.problem}`).join('; ')}`, { details: { fields } });
}

/** The store, or why there is none (off: 404; not open yet: 503, retryable). */
function storeOf(ctx: ApiContext): HistoryStore {
  if (!ctx.history) throw new HydraError(ErrorCode.NotFound, 'the results history is off (MEMORY_URL=off); unset MEMORY_URL for SQLite under HYDRA_DATA_DIR, or set postgres://...');
  const s = ctx.history.current;
  if (!s) {
    const why = ctx.history.status().last_error ?? 'still opening';
    throw new HydraError(ErrorCode.Unavailable, `the results history store (MEMORY_URL) is not open yet: ${why}; retry shortly`, { retryable: true, details: { retry_after_s: 2 } });
  }
  return s;
}

/** A store that fails to answer (PostgreSQL down, SQLite file busy) is a 503: the records wait in Redis meanwhile. */
async function ask<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof BadCursorError) throw new HydraError(ErrorCode.BadRequest, `invalid query: ${e.message}`, { details: { fields: [{ field: 'cursor', problem: e.message }] } });
    throw new HydraError(ErrorCode.Unavailable, `the results history store (MEMORY_URL) did not answer: ${(e as Error).message}; retry shortly`, { retryable: true, details: { retry_after_s: 2 } });
  }
}

export function historyRouter(ctx: ApiContext): Router {
  const r = Router();
  r.get(
    '/v1/history',
    route(async (req: Request, res: Response) => {
      const q = parseQuery(listSchema(Date.now()), req);
      const store = storeOf(ctx);
      res.json(await ask(() => store.query(q)));
    }),
  );
  r.get(
    '/v1/history/stats',
    route(async (req: Request, res: Response) => {
      const q = parseQuery(statsSchema(Date.now()), req);
      const store = storeOf(ctx);
      const groups = await ask(() => store.stats(q));
      // Records not in the store yet: the stream's length (bounded by MEMORY_STREAM_MAX). Null when Redis is away.
      const waiting = await ctx.redis.xlen(ctx.keys.history).catch(() => null);
      res.json({ by: q.by, since: q.since ?? null, until: q.until ?? null, store: store.dialect, groups, drain: { ...ctx.history!.status(), waiting } });
    }),
  );
  return r;
}
