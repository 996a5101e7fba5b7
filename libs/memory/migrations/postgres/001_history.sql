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
  request JSONB NOT NULL,
  routing JSONB,
  prompt_tokens INTEGER,
  completion_tokens INTEGER,
  submitted_at BIGINT NOT NULL,
  started_at BIGINT,
  finished_at BIGINT NOT NULL,
  queued_ms DOUBLE PRECISION,
  total_ms DOUBLE PRECISION NOT NULL,
  load_ms DOUBLE PRECISION,
  prompt_eval_ms DOUBLE PRECISION,
  eval_ms DOUBLE PRECISION,
  workflow_id TEXT,
  workflow_step TEXT,
  stored_at BIGINT NOT NULL
);
CREATE INDEX history_finished ON history (finished_at, uid);
CREATE INDEX history_model ON history (model, finished_at);
CREATE INDEX history_node ON history (node, finished_at);
CREATE INDEX history_request ON history (request_id);
CREATE INDEX history_workflow ON history (workflow_id);
-- Text search over prompt and answer: the 'simple' configuration (no stemming, any language), as SQLite's FTS5.
CREATE INDEX history_text ON history USING gin (to_tsvector('simple', prompt || ' ' || coalesce(answer, '')));
