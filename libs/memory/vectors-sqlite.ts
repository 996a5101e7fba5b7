// L4 vectors in the embedded SQLite file (beside the history, its own connection): rows for VectorIndex, float32 BLOBs.
// Synchronous like the history store: an upsert of a batch or a cache refresh holds the event loop for a few ms.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { loadMigrations } from './migrations.js';
import { encodeVector, VectorIndex, type RawVector, type SourceRow, type VectorItem, type VectorProgress, type VectorRows } from './vectors.js';

const BUSY_TIMEOUT_MS = 250;
/** Ids per details query (SQLite's default limit of bound parameters is 32766). */
const IDS_PER_QUERY = 500;

class SqliteVectorRows implements VectorRows {
  readonly dialect = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly upsertMany: Database.Transaction<(items: readonly VectorItem[], progress: VectorProgress | undefined, now: number) => number>;
  private readonly sinceStmt: Database.Statement;

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    this.migrate();
    // Delete then insert: the row takes a new seq (AUTOINCREMENT never reuses one), so caches read it as new.
    const del = this.db.prepare('DELETE FROM vectors WHERE id = ?');
    const ins = this.db.prepare('INSERT INTO vectors (id, namespace, embed_model, kind, source, model, text, dims, vector, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    const prog = this.db.prepare(
      'INSERT INTO vector_progress (namespace, embed_model, last_seq, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (namespace, embed_model) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq), updated_at = excluded.updated_at',
    );
    this.upsertMany = this.db.transaction((items: readonly VectorItem[], progress: VectorProgress | undefined, now: number) => {
      for (const it of items) {
        del.run(it.id);
        ins.run(it.id, it.namespace, it.embed_model, it.kind, it.source, it.model, it.text, it.vector.length, encodeVector(it.vector), it.created_at ?? now);
      }
      if (progress) prog.run(progress.namespace, progress.embed_model, progress.seq, now);
      return items.length;
    });
    this.sinceStmt = this.db.prepare('SELECT seq, id, namespace, embed_model, kind, model, dims, vector FROM vectors WHERE seq > ? ORDER BY seq LIMIT ?');
  }

  /** The same numbered migrations as the history store (the tables live in one file). */
  private migrate(): void {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    const done = new Set((this.db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version));
    for (const m of loadMigrations('sqlite')) {
      if (done.has(m.version)) continue;
      this.db.transaction(() => {
        // Another connection may have applied it meanwhile: check again inside the write lock.
        if (this.db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?').get(m.version)) return;
        this.db.exec(m.sql);
        this.db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
      }).immediate();
    }
  }

  async upsert(items: readonly VectorItem[], progress: VectorProgress | undefined, now: number): Promise<number> {
    if (items.length === 0 && !progress) return 0;
    return this.upsertMany.immediate(items, progress, now);
  }

  async since(seq: number, limit: number): Promise<RawVector[]> {
    return this.sinceStmt.all(seq, limit) as RawVector[];
  }

  async details(ids: readonly string[]): Promise<Map<string, { text: string; source: string | null; created_at: number }>> {
    const out = new Map<string, { text: string; source: string | null; created_at: number }>();
    for (let i = 0; i < ids.length; i += IDS_PER_QUERY) {
      const chunk = ids.slice(i, i + IDS_PER_QUERY);
      const rows = this.db.prepare(`SELECT id, text, source, created_at FROM vectors WHERE id IN (${chunk.map(() => '?').join(', ')})`).all(...chunk) as { id: string; text: string; source: string | null; created_at: number }[];
      for (const r of rows) out.set(r.id, { text: r.text, source: r.source, created_at: Number(r.created_at) });
    }
    return out;
  }

  async count(namespace?: string): Promise<number> {
    const r = (namespace === undefined ? this.db.prepare('SELECT count(*) AS n FROM vectors').get() : this.db.prepare('SELECT count(*) AS n FROM vectors WHERE namespace = ?').get(namespace)) as { n: number };
    return r.n;
  }

  async progress(namespace: string, embedModel: string): Promise<number> {
    const r = this.db.prepare('SELECT last_seq FROM vector_progress WHERE namespace = ? AND embed_model = ?').get(namespace, embedModel) as { last_seq: number } | undefined;
    return r?.last_seq ?? 0;
  }

  async setProgress(p: VectorProgress, now: number): Promise<void> {
    await this.upsert([], p, now);
  }

  async historyAfter(seq: number, limit: number): Promise<SourceRow[]> {
    return this.db.prepare('SELECT rowid AS seq, uid, kind, type, outcome, model, request_id, prompt, answer FROM history WHERE rowid > ? ORDER BY rowid LIMIT ?').all(seq, limit) as SourceRow[];
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

/** The vector store in the SQLite file at `path` (migrated; the history's file by default). */
export function openSqliteVectors(path: string): VectorIndex {
  return new VectorIndex(new SqliteVectorRows(path));
}
