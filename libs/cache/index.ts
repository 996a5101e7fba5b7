// L1 response cache in Redis: a key per normalized request, a policy for what may be cached, TTL, a size cap, hit/miss counts.
export * from './cache-key.js';
export * from './l1-cache.js';
