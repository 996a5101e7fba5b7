// The embedded history store: one SQLite file (better-sqlite3, WAL), written by the drainer in one transaction per batch.
// better-sqlite3 is synchronous: each call holds the event loop for its duration (a 500-row batch: a few ms), so
// pages are capped (MAX_PAGE) and the busy timeout is short.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { loadMigrations } from './migrations.js';
import { pageSql, statsSql, type Dialect } from './query-sql.js';
import type { HistoryRecord } from './record.js';
import { COLUMNS, encodeCursor, promptHashOf, rowToRecord, rowValues, statsRow, type HistoryPage, type HistoryQuery, type HistoryRow, type HistoryStore, type StatsQuery, type StatsRow } from './store.js';

/** How long a write waits for another connection's lock before it fails (the drainer then retries the batch), ms. */
const BUSY_TIMEOUT_MS = 250;

const SQLITE: Dialect = {
  name: 'sqlite',
  param: () => '?',
  textMatch: (p) => `rowid IN (SELECT rowid FROM history_fts WHERE history_fts MATCH ${p})`,
  // Each word quoted: FTS5 reads them as terms (all required), never as query syntax.
  textParam: (words) => words.map((w) => `"${w}"`).join(' '),
  day: `strftime('%Y-%m-%d', finished_at / 1000, 'unixepoch')`,
};

export class SqliteHistoryStore implements HistoryStore {
  readonly dialect = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly insertRow: Database.Statement;
  private readonly insertMany: Database.Transaction<(records: readonly HistoryRecord[], now: number) => number>;

  constructor(readonly path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    // WAL + NORMAL: a power cut may lose the last transactions but never corrupts; those records are XACKed, so the
    // loss is the last second or so of history at worst.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    this.migrateNow();
    this.insertRow = this.db.prepare(`INSERT OR IGNORE INTO history (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})`);
    this.insertMany = this.db.transaction((records: readonly HistoryRecord[], now: number) => {
      let n = 0;
      for (const r of records) n += this.insertRow.run(...rowValues(r, now)).changes;
      return n;
    });
  }

  private migrateNow(): void {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    const done = new Set((this.db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version));
    for (const m of loadMigrations('sqlite')) {
      if (done.has(m.version)) continue;
      this.db.transaction(() => {
        this.db.exec(m.sql);
        this.db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
      }).immediate();
    }
  }

  migrate(): Promise<void> {
    this.migrateNow();
    return Promise.resolve();
  }

  async insert(records: readonly HistoryRecord[]): Promise<number> {
    if (records.length === 0) return 0;
    return this.insertMany.immediate(records, Date.now());
  }

  // async: a bad cursor or a busy file rejects like PostgreSQL's errors do, never throws synchronously.
  async query(q: HistoryQuery): Promise<HistoryPage> {
    const { sql, params } = pageSql(q, SQLITE);
    const rows = this.db.prepare(sql).all(...params) as Record<string, unknown>[];
    const more = rows.length > q.limit;
    const page = rows.slice(0, q.limit);
    const last = page.at(-1);
    return { items: page.map(rowToRecord), next_cursor: more && last ? encodeCursor({ finished_at: Number(last.finished_at), uid: String(last.uid) }) : null };
  }

  async stats(q: StatsQuery): Promise<StatsRow[]> {
    const { sql, params } = statsSql(q, SQLITE);
    return (this.db.prepare(sql).all(...params) as Record<string, unknown>[]).map(statsRow);
  }

  async prune(before: number): Promise<{ rows: number; vectors: number }> {
    const run = this.db.transaction((t: number) => {
      const vectors = this.db.prepare('DELETE FROM vectors WHERE source IN (SELECT uid FROM history WHERE finished_at < ?)').run(t).changes;
      const rows = this.db.prepare('DELETE FROM history WHERE finished_at < ?').run(t).changes;
      return { rows, vectors };
    });
    return run.immediate(before);
  }

  findAnswers(q: { model: string; type: string; prompt: string; since: number }): Promise<HistoryRow[]> {
    const rows = this.db
      .prepare("SELECT * FROM history WHERE prompt_hash = ? AND finished_at >= ? AND model = ? AND type = ? AND outcome = 'completed' AND prompt = ? ORDER BY finished_at DESC LIMIT 5")
      .all(promptHashOf(q.model, q.type, q.prompt), q.since, q.model, q.type, q.prompt) as Record<string, unknown>[];
    return Promise.resolve(rows.map(rowToRecord));
  }

  get(uid: string): Promise<HistoryRow | null> {
    const row = this.db.prepare('SELECT * FROM history WHERE uid = ?').get(uid) as Record<string, unknown> | undefined;
    return Promise.resolve(row ? rowToRecord(row) : null);
  }

  count(): Promise<number> {
    return Promise.resolve((this.db.prepare('SELECT count(*) AS n FROM history').get() as { n: number }).n);
  }

  close(): Promise<void> {
    if (this.db.open) this.db.close();
    return Promise.resolve();
  }
}
