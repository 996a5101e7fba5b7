// `hydra/client` for plain Node (package.json "exports"): loads the client's TypeScript sources through tsx's scoped
// import, so no build step is needed and nothing is registered for the rest of the importing process.
import { tsImport } from 'tsx/esm/api';

const m = await tsImport('./index.ts', import.meta.url);

// Keep in step with index.ts (libs/client/package.test.ts compares the two).
export const {
  Hydra,
  jobEventOf,
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
  ndjsonLines,
  SseParser,
} = m;
