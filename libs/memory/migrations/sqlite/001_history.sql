-- The results history: one row per finished job (per attempt that ended it) or workflow. Times are ms since epoch.
CREATE TABLE history (
  uid TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  request_id TEXT,
  api_key_id TEXT,
  model TEXT,
  type TEXT NOT NULL,
  node TEXT,
  queue TEXT,
  priority INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  error_code TEXT,
  error_message TEXT,
  prompt TEXT NOT NULL,
  answer TEXT,
  request TEXT NOT NULL,
  routing TEXT,
  prompt_tokens INTEGER,
  completion_tokens INTEGER,
  submitted_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER NOT NULL,
  queued_ms REAL,
  total_ms REAL NOT NULL,
  load_ms REAL,
  prompt_eval_ms REAL,
  eval_ms REAL,
  workflow_id TEXT,
  workflow_step TEXT,
  stored_at INTEGER NOT NULL
);
CREATE INDEX history_finished ON history (finished_at, uid);
CREATE INDEX history_model ON history (model, finished_at);
CREATE INDEX history_node ON history (node, finished_at);
CREATE INDEX history_request ON history (request_id);
CREATE INDEX history_workflow ON history (workflow_id);

-- Text search over prompt and answer (FTS5, bundled in better-sqlite3's SQLite), kept in step by a trigger. Rows are
-- never updated; deletes (pruning) remove their text too.
CREATE VIRTUAL TABLE history_fts USING fts5 (prompt, answer, content = 'history', content_rowid = 'rowid');
CREATE TRIGGER history_fts_insert AFTER INSERT ON history BEGIN
  INSERT INTO history_fts (rowid, prompt, answer) VALUES (new.rowid, new.prompt, new.answer);
END;
CREATE TRIGGER history_fts_delete AFTER DELETE ON history BEGIN
  INSERT INTO history_fts (history_fts, rowid, prompt, answer) VALUES ('delete', old.rowid, old.prompt, old.answer);
END;
