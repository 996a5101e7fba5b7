// Queue names and keys, the job catalog, connections and the enqueue side.
export * from './keys.js';
export * from './connection.js';
export * from './catalog.js';
export * from './producer.js';
export * from './submit.js';
