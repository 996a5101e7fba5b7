// L4 vectors in PostgreSQL (the history's database, its own small pool): rows for VectorIndex, float32 in BYTEA.
// No pgvector: the search runs in JS over the cached vectors (VectorIndex); the database stores and hands out rows.
import pg from 'pg';
import { loadMigrations } from './migrations.js';
import { encodeVector, VectorIndex, type RawVector, type SourceRow, type VectorItem, type VectorProgress, type VectorRows } from './vectors.js';

/** The history store's migration lock: both run the same numbered migrations. */
const MIGRATION_LOCK = 0x487964726;
/** Rows per INSERT: 10 parameters × 500 stays far below PostgreSQL's 65535. */
const ROWS_PER_STATEMENT = 500;

class PostgresVectorRows implements VectorRows {
  readonly dialect = 'postgres' as const;

  constructor(private readonly pool: pg.Pool) {}

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

  async upsert(items: readonly VectorItem[], progress: VectorProgress | undefined, now: number): Promise<number> {
    if (items.length === 0 && !progress) return 0;
    // The last of each id wins within a batch (ON CONFLICT cannot touch one row twice in a statement).
    const unique = [...new Map(items.map((it) => [it.id, it])).values()];
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      for (let i = 0; i < unique.length; i += ROWS_PER_STATEMENT) {
        const chunk = unique.slice(i, i + ROWS_PER_STATEMENT);
        const params: unknown[] = [];
        const tuples = chunk.map((it) => {
          const start = params.length;
          params.push(it.id, it.namespace, it.embed_model, it.kind, it.source, it.model, it.text, it.vector.length, encodeVector(it.vector), it.created_at ?? now);
          return `(${Array.from({ length: 10 }, (_, j) => `$${start + j + 1}`).join(', ')})`;
        });
        // A replaced row takes a new seq, so caches read it as new.
        await c.query(
          `INSERT INTO vectors (id, namespace, embed_model, kind, source, model, text, dims, vector, created_at) VALUES ${tuples.join(', ')}
           ON CONFLICT (id) DO UPDATE SET seq = nextval(pg_get_serial_sequence('vectors', 'seq')), namespace = excluded.namespace,
             embed_model = excluded.embed_model, kind = excluded.kind, source = excluded.source, model = excluded.model, text = excluded.text,
             dims = excluded.dims, vector = excluded.vector, created_at = excluded.created_at`,
          params,
        );
      }
      if (progress) {
        await c.query(
          `INSERT INTO vector_progress (namespace, embed_model, last_seq, updated_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (namespace, embed_model) DO UPDATE SET last_seq = greatest(vector_progress.last_seq, excluded.last_seq), updated_at = excluded.updated_at`,
          [progress.namespace, progress.embed_model, progress.seq, now],
        );
      }
      await c.query('COMMIT');
      return unique.length;
    } catch (e) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      c.release();
    }
  }

  async since(seq: number, limit: number): Promise<RawVector[]> {
    const r = await this.pool.query<RawVector & { seq: string }>('SELECT seq, id, namespace, embed_model, kind, model, dims, vector FROM vectors WHERE seq > $1 ORDER BY seq LIMIT $2', [seq, limit]);
    return r.rows.map((row) => ({ ...row, seq: Number(row.seq) }));
  }

  async details(ids: readonly string[]): Promise<Map<string, { text: string; source: string | null; created_at: number }>> {
    const r = await this.pool.query<{ id: string; text: string; source: string | null; created_at: string }>('SELECT id, text, source, created_at FROM vectors WHERE id = ANY($1)', [ids]);
    return new Map(r.rows.map((row) => [row.id, { text: row.text, source: row.source, created_at: Number(row.created_at) }]));
  }

  async count(namespace?: string): Promise<number> {
    const r = namespace === undefined ? await this.pool.query<{ n: string }>('SELECT count(*) AS n FROM vectors') : await this.pool.query<{ n: string }>('SELECT count(*) AS n FROM vectors WHERE namespace = $1', [namespace]);
    return Number(r.rows[0]?.n ?? 0);
  }

  async progress(namespace: string, embedModel: string): Promise<number> {
    const r = await this.pool.query<{ last_seq: string }>('SELECT last_seq FROM vector_progress WHERE namespace = $1 AND embed_model = $2', [namespace, embedModel]);
    return Number(r.rows[0]?.last_seq ?? 0);
  }

  async setProgress(p: VectorProgress, now: number): Promise<void> {
    await this.upsert([], p, now);
  }

  async historyAfter(seq: number, limit: number): Promise<SourceRow[]> {
    const r = await this.pool.query<SourceRow & { seq: string }>('SELECT seq, uid, kind, type, outcome, model, request_id, prompt, answer FROM history WHERE seq > $1 ORDER BY seq LIMIT $2', [seq, limit]);
    return r.rows.map((row) => ({ ...row, seq: Number(row.seq) }));
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** The vector store in the PostgreSQL database at `url`, migrated. Throws when it cannot be reached (the caller retries). */
export async function openPostgresVectors(url: string, opts: { onError?: (e: Error) => void } = {}): Promise<VectorIndex> {
  const pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 3000, idleTimeoutMillis: 30_000, statement_timeout: 30_000 });
  pool.on('error', (e) => opts.onError?.(e));
  const rows = new PostgresVectorRows(pool);
  try {
    await rows.migrate();
  } catch (e) {
    await pool.end().catch(() => undefined);
    throw e;
  }
  return new VectorIndex(rows);
}
