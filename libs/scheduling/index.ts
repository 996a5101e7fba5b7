// Pure scheduling policy: model sizes, routing at submit, dispatch order in the worker. No Redis, no clock reads.
export * from './models.js';
export * from './routing.js';
export * from './dispatch.js';
export * from './capabilities.js';
export * from './perf.js';
export * from './wake.js';
