// Hydra's memory beyond the L1 cache: the results history (L2 SQLite / L3 PostgreSQL) that outlives Redis retention.
// Workers append records to a Redis stream (writer), the API drains it into the store (drainer) and queries it.
export * from './record.js';
export * from './store.js';
export * from './writer.js';
export * from './factory.js';
export * from './drainer.js';
export { BadCursorError } from './query-sql.js';
