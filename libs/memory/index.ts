// Hydra's memory beyond the L1 cache: the results history (L2 SQLite / L3 PostgreSQL) that outlives Redis retention,
// and its vectors (L4) for semantic search. Workers append records to a Redis stream (writer), the API drains it into
// the store (drainer) and queries it; with MEMORY_EMBED_MODEL the cluster embeds the stored texts (history-embedder).
export * from './record.js';
export * from './store.js';
export * from './writer.js';
export * from './factory.js';
export * from './drainer.js';
export { BadCursorError } from './query-sql.js';
export * from './vectors.js';
export * from './embedder.js';
export * from './history-embedder.js';
