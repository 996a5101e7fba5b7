// The client's errors: one class per family of the API's error codes (each carrying the code, retryable, status,
// details and the X-Request-Id), and HydraConnectionError for answers that never came (or were not the API's).

/** A field the API named in a 400 (`details.fields` of Hydra's error body). */
export interface FieldProblem {
  field: string;
  problem: string;
}

interface ApiErrorInit {
  code: string;
  message: string;
  retryable: boolean;
  status: number;
  details?: unknown;
  requestId?: string | undefined;
  method: string;
  path: string;
  body?: unknown;
}

/** An error answer of the API (any non-2xx), in Hydra's `{error: {code, message, retryable, details?}}` terms. */
export class HydraApiError extends Error {
  /** Hydra's stable error code (libs/core/errors.ts), e.g. `not_found`; derived from the status when the body had none. */
  readonly code: string;
  readonly retryable: boolean;
  /** The HTTP status. */
  readonly status: number;
  readonly details: unknown;
  /** The answer's X-Request-Id: the API's access log and the worker's log lines carry it. */
  readonly requestId: string | undefined;
  /** The request that got this answer, e.g. `POST` `/v1/jobs`. */
  readonly method: string;
  readonly path: string;
  /** The parsed answer (e.g. the job view of a `wait` whose job failed), or its text when it was not JSON. */
  readonly body: unknown;

  constructor(init: ApiErrorInit) {
    super(init.message);
    this.name = new.target.name;
    this.code = init.code;
    this.retryable = init.retryable;
    this.status = init.status;
    this.details = init.details;
    this.requestId = init.requestId;
    this.method = init.method;
    this.path = init.path;
    this.body = init.body;
  }
}

/** 400: the request was malformed; `fields` names each bad field and why. */
export class BadRequestError extends HydraApiError {
  get fields(): FieldProblem[] {
    const f = (this.details as { fields?: unknown } | undefined)?.fields;
    return Array.isArray(f) ? f.filter((p): p is FieldProblem => typeof p?.field === 'string' && typeof p?.problem === 'string') : [];
  }
}
/** 401: no API key, or one the API does not know. */
export class UnauthorizedError extends HydraApiError {}
/** 404: no such job, workflow, batch, route or model. */
export class NotFoundError extends HydraApiError {}
/** 409: the subject's state forbids it (e.g. cancelling a job that already ended), or it was cancelled. */
export class ConflictError extends HydraApiError {}
/** 422 `idempotency_conflict`: the Idempotency-Key was used before with a different request. */
export class IdempotencyConflictError extends HydraApiError {}
/** 422 `unsatisfiable`: no registered node could ever run the request (too large, unknown model). */
export class UnsatisfiableError extends HydraApiError {}
/** 413: the body or the prompt is over the API's limit. */
export class PayloadTooLargeError extends HydraApiError {}
/** 429: over the rate limit or the queue depth; `retryAfter` in seconds when the API said. */
export class RateLimitedError extends HydraApiError {
  constructor(
    init: ApiErrorInit,
    readonly retryAfter: number | undefined,
  ) {
    super(init);
  }
}
/** 503: Redis away, the API draining, the backend unavailable: retry shortly. */
export class UnavailableError extends HydraApiError {
  constructor(
    init: ApiErrorInit,
    readonly retryAfter: number | undefined,
  ) {
    super(init);
  }
}
/** 504: the job or the wait ran out of time. */
export class TimedOutError extends HydraApiError {}
/** Any other 5xx, and job failures (backend error, out of memory, poison pill). */
export class ServerError extends HydraApiError {}

/** `wait` reached its deadline before the job ended (the job goes on). */
export class WaitTimeoutError extends Error {
  constructor(
    readonly jobId: string,
    /** The job's state at the deadline. */
    readonly state: string,
    ms: number,
  ) {
    super(`job ${jobId} was still ${state} after ${ms} ms`);
    this.name = 'WaitTimeoutError';
  }
}

/** Why no answer came: the API unreachable, no answer in time, the connection dropped, or not the API's answer. */
export type ConnectionProblem = 'unreachable' | 'timeout' | 'dropped' | 'protocol';

/** No usable answer from the API at `url`. Retryable unless the answer was there but was not the API's (`protocol`). */
export class HydraConnectionError extends Error {
  readonly retryable: boolean;
  constructor(
    message: string,
    readonly problem: ConnectionProblem,
    readonly url: string,
    /** A system error code when there was one (ECONNREFUSED, ENOTFOUND, ...). */
    readonly errno?: string,
    opts: { cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'HydraConnectionError';
    this.retryable = problem !== 'protocol';
  }
}

/** The code an error answer without Hydra's body stands for (Ollama's `{error: "..."}`, a proxy's page). */
const CODE_OF_STATUS: Record<number, string> = { 400: 'bad_request', 401: 'unauthorized', 404: 'not_found', 409: 'conflict', 413: 'payload_too_large', 422: 'unsatisfiable', 429: 'rate_limited', 503: 'unavailable', 504: 'timeout' };

/** Seconds from a Retry-After header (seconds or an HTTP date), or `details.retry_after_s`. */
function retryAfterOf(header: string | null, details: unknown): number | undefined {
  if (header) {
    const s = Number(header);
    if (Number.isFinite(s)) return Math.max(0, s);
    const at = Date.parse(header);
    if (Number.isFinite(at)) return Math.max(0, (at - Date.now()) / 1000);
  }
  const d = (details as { retry_after_s?: unknown } | undefined)?.retry_after_s;
  return typeof d === 'number' ? d : undefined;
}

/**
 * The error an answer stands for, from its status, headers and body text. Understands Hydra's error body, Ollama's
 * `{error: "..."}` and OpenAI's `{error: {message, type, code}}`; anything else keeps the start of the body.
 */
export function errorFromAnswer(status: number, headers: { get(name: string): string | null }, text: string, req: { method: string; path: string }): HydraApiError {
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON: the start of the text is the message */
  }
  const e = (body as { error?: unknown } | null)?.error;
  const obj = typeof e === 'object' && e !== null ? (e as { code?: unknown; message?: unknown; retryable?: unknown; details?: unknown }) : undefined;
  const code = typeof obj?.code === 'string' ? obj.code : (CODE_OF_STATUS[status] ?? (status >= 500 ? 'internal' : 'error'));
  const message = typeof e === 'string' ? e : typeof obj?.message === 'string' ? obj.message : text.trim().slice(0, 200) || `HTTP ${status}`;
  const retryable = typeof obj?.retryable === 'boolean' ? obj.retryable : status >= 500 || status === 429;
  const init: ApiErrorInit = { code, message, retryable, status, details: obj?.details, requestId: headers.get('x-request-id') ?? undefined, ...req, body: body ?? text };
  const retryAfter = retryAfterOf(headers.get('retry-after'), obj?.details);
  if (code === 'idempotency_conflict') return new IdempotencyConflictError(init);
  if (code === 'unsatisfiable') return new UnsatisfiableError(init);
  if (status === 400 || code === 'bad_request') return new BadRequestError(init);
  if (status === 401) return new UnauthorizedError(init);
  if (status === 404) return new NotFoundError(init);
  if (status === 409) return new ConflictError(init);
  if (status === 413) return new PayloadTooLargeError(init);
  if (status === 429) return new RateLimitedError(init, retryAfter);
  if (status === 503) return new UnavailableError(init, retryAfter);
  if (status === 504) return new TimedOutError(init);
  if (status >= 500) return new ServerError(init);
  return new HydraApiError(init);
}
