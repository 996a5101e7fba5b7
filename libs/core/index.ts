// Domain types, schemas and errors. No I/O.
export * from './errors.js';
export * from './routing.js';
export * from './inference.js';
export * from './node.js';
export * from './job-request.js';
export * from './callback-url.js';
export * from './random.js';
