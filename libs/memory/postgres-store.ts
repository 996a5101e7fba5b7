// The production history store: PostgreSQL through a small pg pool; one multi-row INSERT per batch, in a transaction.
import pg from 'pg';
import { loadMigrations } from './migrations.js';
import { pageSql, statsSql, type Dialect } from './query-sql.js';
import type { HistoryRecord } from './record.js';
import { COLUMNS, encodeCursor, promptHashOf, rowToRecord, rowValues, statsRow, type HistoryPage, type HistoryQuery, type HistoryRow, type HistoryStore, type StatsQuery, type StatsRow } from './store.js';

/** Rows per INSERT statement: 31 columns × 200 stays far below PostgreSQL's 65535 parameters. */
const ROWS_PER_STATEMENT = 200;
/** Serialises migrations of several API replicas starting at once (pg_advisory_xact_lock key). */
const MIGRATION_LOCK = 0x487964726;

const POSTGRES: Dialect = {
  name: 'postgres',
  param: (n) => `$${n}`,
  textMatch: (p) => `to_tsvector('simple', prompt || ' ' || coalesce(answer, '')) @@ to_tsquery('simple', ${p})`,
  // Words only (letters, digits), each a term, all required.
  textParam: (words) => words.join(' & '),
  day: `to_char(to_timestamp(finished_at / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')`,
};

export class PostgresHistoryStore implements HistoryStore {
  readonly dialect = 'postgres' as const;
  private readonly pool: pg.Pool;

  constructor(url: string, opts: { onError?: (e: Error) => void } = {}) {
    // Short timeouts: the drainer retries a batch that fails, and a query waits no longer than an HTTP client would.
    this.pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 3000, idleTimeoutMillis: 30_000, statement_timeout: 30_000 });
    // An idle client that loses its server emits here; without a listener the process would die.
    this.pool.on('error', (e) => opts.onError?.(e));
  }

  async migrate(): Promise<void> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await c.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
      const done = new Set((await c.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
      for (const m of loadMigrations('postgres')) {
        if (done.has(m.version)) continue;
        await c.query(m.sql);
        await c.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, Date.now()]);
      }
      await c.query('COMMIT');
    } catch (e) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      c.release();
    }
  }

  async insert(records: readonly HistoryRecord[]): Promise<number> {
    if (records.length === 0) return 0;
    const now = Date.now();
    const c = await this.pool.connect();
    let n = 0;
    try {
      await c.query('BEGIN');
      for (let i = 0; i < records.length; i += ROWS_PER_STATEMENT) {
        const chunk = records.slice(i, i + ROWS_PER_STATEMENT);
        const params: unknown[] = [];
        const tuples = chunk.map((r) => {
          const vals = rowValues(r, now);
          const start = params.length;
          params.push(...vals);
          return `(${vals.map((_, j) => `$${start + j + 1}`).join(', ')})`;
        });
        const res = await c.query(`INSERT INTO history (${COLUMNS.join(', ')}) VALUES ${tuples.join(', ')} ON CONFLICT (uid) DO NOTHING`, params);
        n += res.rowCount ?? 0;
      }
      await c.query('COMMIT');
      return n;
    } catch (e) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      c.release();
    }
  }

  async query(q: HistoryQuery): Promise<HistoryPage> {
    const { sql, params } = pageSql(q, POSTGRES);
    const rows = (await this.pool.query<Record<string, unknown>>(sql, params)).rows;
    const more = rows.length > q.limit;
    const page = rows.slice(0, q.limit);
    const last = page.at(-1);
    return { items: page.map(rowToRecord), next_cursor: more && last ? encodeCursor({ finished_at: Number(last.finished_at), uid: String(last.uid) }) : null };
  }

  async prune(before: number): Promise<{ rows: number; vectors: number }> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const vectors = (await c.query('DELETE FROM vectors WHERE source IN (SELECT uid FROM history WHERE finished_at < $1)', [before])).rowCount ?? 0;
      const rows = (await c.query('DELETE FROM history WHERE finished_at < $1', [before])).rowCount ?? 0;
      await c.query('COMMIT');
      return { rows, vectors };
    } catch (e) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      c.release();
    }
  }

  async findAnswers(q: { model: string; type: string; prompt: string; since: number }): Promise<HistoryRow[]> {
    const sql = "SELECT * FROM history WHERE prompt_hash = $1 AND finished_at >= $2 AND model = $3 AND type = $4 AND outcome = 'completed' AND prompt = $5 ORDER BY finished_at DESC LIMIT 5";
    return (await this.pool.query<Record<string, unknown>>(sql, [promptHashOf(q.model, q.type, q.prompt), q.since, q.model, q.type, q.prompt])).rows.map(rowToRecord);
  }

  async get(uid: string): Promise<HistoryRow | null> {
    const row = (await this.pool.query<Record<string, unknown>>('SELECT * FROM history WHERE uid = $1', [uid])).rows[0];
    return row ? rowToRecord(row) : null;
  }

  async stats(q: StatsQuery): Promise<StatsRow[]> {
    const { sql, params } = statsSql(q, POSTGRES);
    return (await this.pool.query<Record<string, unknown>>(sql, params)).rows.map(statsRow);
  }

  async count(): Promise<number> {
    return Number((await this.pool.query<{ n: string }>('SELECT count(*) AS n FROM history')).rows[0]?.n ?? 0);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
