// Domain errors: a stable code, whether a retry can help, and a message that says what to do.

export const ErrorCode = {
  BadRequest: 'bad_request',
  Unsatisfiable: 'unsatisfiable',
  NotFound: 'not_found',
  Conflict: 'conflict',
  /** The same Idempotency-Key with a different request (apps/api/idempotency.ts). */
  IdempotencyConflict: 'idempotency_conflict',
  Unauthorized: 'unauthorized',
  RateLimited: 'rate_limited',
  PayloadTooLarge: 'payload_too_large',
  Unavailable: 'unavailable',
  BackendError: 'backend_error',
  BackendUnavailable: 'backend_unavailable',
  ModelNotFound: 'model_not_found',
  OutOfMemory: 'out_of_memory',
  Cancelled: 'cancelled',
  Timeout: 'timeout',
  BadModelFile: 'bad_model_file',
  PoisonPill: 'poison_pill',
  Internal: 'internal',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class HydraError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, opts: { retryable?: boolean; details?: unknown; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'HydraError';
    this.code = code;
    this.retryable = opts.retryable ?? false;
    this.details = opts.details;
  }

  toJSON(): { code: ErrorCode; message: string; retryable: boolean; details?: unknown } {
    return { code: this.code, message: this.message, retryable: this.retryable, ...(this.details === undefined ? {} : { details: this.details }) };
  }
}


/** Normalise anything thrown into a HydraError; unknown errors are internal and retryable. */
export function toHydraError(e: unknown): HydraError {
  if (e instanceof HydraError) return e;
  if (e instanceof Error && e.name === 'AbortError') return new HydraError(ErrorCode.Cancelled, 'the request was aborted', { cause: e });
  const message = e instanceof Error ? e.message : String(e);
  return new HydraError(ErrorCode.Internal, message, { retryable: true, cause: e });
}
