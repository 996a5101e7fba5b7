// The typed Hydra client (`import { Hydra } from 'hydra/client'`): jobs, resumable token streams, nodes, workflows,
// batches, typed errors. Loads nothing server-side (no Redis, no express): the CLI and the tests use it too.
export { Hydra, jobEventOf, type HydraOptions, type RequestOptions, type StreamOptions } from './hydra.js';
export {
  BadRequestError,
  ConflictError,
  errorFromAnswer,
  HydraApiError,
  HydraConnectionError,
  IdempotencyConflictError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitedError,
  ServerError,
  TimedOutError,
  UnauthorizedError,
  UnavailableError,
  UnsatisfiableError,
  WaitTimeoutError,
  type ConnectionProblem,
  type FieldProblem,
} from './errors.js';
export { ndjsonLines } from './ndjson.js';
export { SseParser, type SseMessage } from './sse.js';
export type * from './types.js';
