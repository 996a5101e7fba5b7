-- L4: one embedding vector per stored text (a history row's prompt or answer, or any text upserted under a namespace).
-- seq only grows (an upsert takes a new one): readers keep a watermark and read only newer rows.
-- vector: dims little-endian float32 values (4 × dims bytes). Times are ms since epoch.
CREATE TABLE vectors (
  seq BIGSERIAL PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  namespace TEXT NOT NULL,
  embed_model TEXT NOT NULL,
  kind TEXT NOT NULL,
  source TEXT,
  model TEXT,
  text TEXT NOT NULL,
  dims INTEGER NOT NULL,
  vector BYTEA NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX vectors_source ON vectors (source);
-- The history in insertion order, for the embedder's watermark (SQLite has its rowid for this).
ALTER TABLE history ADD COLUMN seq BIGSERIAL;
CREATE INDEX history_seq ON history (seq);
-- How far the history has been embedded, per namespace and embed model: the last history seq handled.
CREATE TABLE vector_progress (
  namespace TEXT NOT NULL,
  embed_model TEXT NOT NULL,
  last_seq BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (namespace, embed_model)
);
