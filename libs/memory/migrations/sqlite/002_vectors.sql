-- L4: one embedding vector per stored text (a history row's prompt or answer, or any text upserted under a namespace).
-- seq only grows (AUTOINCREMENT; an upsert deletes and inserts): readers keep a watermark and read only newer rows.
-- vector: dims little-endian float32 values (4 × dims bytes). Times are ms since epoch.
CREATE TABLE vectors (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  namespace TEXT NOT NULL,
  embed_model TEXT NOT NULL,
  kind TEXT NOT NULL,
  source TEXT,
  model TEXT,
  text TEXT NOT NULL,
  dims INTEGER NOT NULL,
  vector BLOB NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX vectors_source ON vectors (source);
-- How far the history has been embedded, per namespace and embed model: the last history rowid handled.
CREATE TABLE vector_progress (
  namespace TEXT NOT NULL,
  embed_model TEXT NOT NULL,
  last_seq INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (namespace, embed_model)
);
