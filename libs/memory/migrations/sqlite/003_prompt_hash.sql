-- The L2 answer of an exact repeat (apps/api/l2-cache.ts) looks a prompt up by its hash, not by scanning a model's
-- rows of the last CACHE_TTL_S and comparing their prompts. Rows stored before this migration have no hash and are
-- not found that way (they age past CACHE_TTL_S within the hour anyway).
ALTER TABLE history ADD COLUMN prompt_hash TEXT;
CREATE INDEX history_prompt_hash ON history (prompt_hash, finished_at);
