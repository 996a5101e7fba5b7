// Queue names and keys, the job catalog, the lifecycle protocol, connections, the enqueue side (single and bulk, its replica ack, batches, webhook deliveries), the token stream, the Lua loader and the BullMQ internals Hydra reads.
export * from './keys.js';
export * from './connection.js';
export * from './catalog.js';
export * from './lifecycle.js';
export * from './producer.js';
export * from './bulk-add.js';
export * from './batch-store.js';
export * from './deliveries.js';
export * from './replica-ack.js';
export * from './submit.js';
export * from './token-stream.js';
export * from './scripts.js';
export * from './bullmq-internals.js';
export * from './job-end.js';
export * from './end-write.js';
