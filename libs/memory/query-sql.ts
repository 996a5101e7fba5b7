// The SQL both dialects share for GET /v1/history and its stats: filters, text search, keyset paging, groups.
import { decodeCursor, searchWords, type HistoryQuery, type StatsQuery } from './store.js';

export interface Dialect {
  name: 'sqlite' | 'postgres';
  /** The placeholder of the n-th parameter (1-based). */
  param(n: number): string;
  /** A condition true when prompt or answer hold every word (`words` non-empty), using parameter `p`. */
  textMatch(p: string): string;
  /** The text-search parameter for `words`. */
  textParam(words: string[]): string;
  /** The UTC day (YYYY-MM-DD) of finished_at. */
  day: string;
}

export class BadCursorError extends Error {}

/** WHERE clause and parameters for the filters of `q` (the cursor included). */
export function whereOf(q: Omit<HistoryQuery, 'limit'>, d: Dialect): { sql: string; params: unknown[] } {
  const conds: string[] = [];
  const params: unknown[] = [];
  const p = (v: unknown): string => {
    params.push(v);
    return d.param(params.length);
  };
  if (q.kind) conds.push(`kind = ${p(q.kind)}`);
  if (q.model) conds.push(`model = ${p(q.model)}`);
  if (q.node) conds.push(`node = ${p(q.node)}`);
  if (q.outcome) conds.push(`outcome = ${p(q.outcome)}`);
  if (q.request_id) conds.push(`request_id = ${p(q.request_id)}`);
  if (q.api_key_id) conds.push(`api_key_id = ${p(q.api_key_id)}`);
  if (q.workflow_id) conds.push(`workflow_id = ${p(q.workflow_id)}`);
  if (q.since !== undefined) conds.push(`finished_at >= ${p(q.since)}`);
  if (q.until !== undefined) conds.push(`finished_at < ${p(q.until)}`);
  if (q.q) {
    const words = searchWords(q.q);
    if (words.length > 0) conds.push(d.textMatch(p(d.textParam(words))));
    else {
      // Only punctuation: a plain substring match (escaped, so % and _ are literal).
      const like = `%${q.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      const a = p(like);
      const b = p(like);
      conds.push(`(prompt LIKE ${a} ESCAPE '\\' OR answer LIKE ${b} ESCAPE '\\')`);
    }
  }
  if (q.cursor !== undefined) {
    const c = decodeCursor(q.cursor);
    if (!c) throw new BadCursorError('cursor is not one this server gave out: pass next_cursor from the previous page unchanged');
    const f1 = p(c.finished_at);
    const f2 = p(c.finished_at);
    const u = p(c.uid);
    conds.push(`(finished_at < ${f1} OR (finished_at = ${f2} AND uid < ${u}))`);
  }
  return { sql: conds.length ? `WHERE ${conds.join(' AND ')}` : '', params };
}

export function pageSql(q: HistoryQuery, d: Dialect): { sql: string; params: unknown[] } {
  const w = whereOf(q, d);
  w.params.push(q.limit + 1);
  return { sql: `SELECT * FROM history ${w.sql} ORDER BY finished_at DESC, uid DESC LIMIT ${d.param(w.params.length)}`, params: w.params };
}

/**
 * Aggregates per model, node or day over jobs (workflows are counted by their steps). Percentiles are nearest-rank:
 * the smallest total_ms with at least that share of the group at or below it (PostgreSQL's percentile_disc).
 */
export function statsSql(q: StatsQuery, d: Dialect): { sql: string; params: unknown[] } {
  const w = whereOf({ kind: 'job', since: q.since, until: q.until }, d);
  const key = q.by === 'day' ? d.day : `coalesce(${q.by}, '')`;
  const common = `count(*) AS jobs,
      sum(CASE WHEN outcome = 'completed' THEN 1 ELSE 0 END) AS completed,
      sum(CASE WHEN outcome = 'failed' THEN 1 ELSE 0 END) AS failed,
      sum(CASE WHEN outcome = 'cancelled' THEN 1 ELSE 0 END) AS cancelled,
      coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
      coalesce(sum(completion_tokens), 0) AS completion_tokens,
      avg(total_ms) AS avg_total_ms,
      min(finished_at) AS first_at,
      max(finished_at) AS last_at`;
  if (d.name === 'postgres') {
    return {
      sql: `SELECT ${key} AS key, ${common},
        percentile_disc(0.5) WITHIN GROUP (ORDER BY total_ms) AS p50_total_ms,
        percentile_disc(0.95) WITHIN GROUP (ORDER BY total_ms) AS p95_total_ms
        FROM history ${w.sql} GROUP BY 1 ORDER BY 2 DESC, 1`,
      params: w.params,
    };
  }
  return {
    sql: `WITH r AS (SELECT *, ${key} AS key,
        row_number() OVER (PARTITION BY ${key} ORDER BY total_ms) AS rn,
        count(*) OVER (PARTITION BY ${key}) AS n
        FROM history ${w.sql})
      SELECT key, ${common},
        min(CASE WHEN rn >= 0.5 * n THEN total_ms END) AS p50_total_ms,
        min(CASE WHEN rn >= 0.95 * n THEN total_ms END) AS p95_total_ms
      FROM r GROUP BY key ORDER BY jobs DESC, key`,
    params: w.params,
  };
}
