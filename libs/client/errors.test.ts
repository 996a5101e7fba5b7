// Error answers to typed errors: Hydra's body, Ollama's and OpenAI's, and bodies that are no JSON at all.
import { describe, expect, it } from 'vitest';
import {
  BadRequestError,
  ConflictError,
  errorFromAnswer,
  HydraApiError,
  IdempotencyConflictError,
  NotFoundError,
  RateLimitedError,
  ServerError,
  TimedOutError,
  UnauthorizedError,
  UnavailableError,
  UnsatisfiableError,
} from './errors.js';

const req = { method: 'POST', path: '/v1/jobs' };
const headers = (h: Record<string, string> = {}) => new Headers(h);
const hydraBody = (code: string, extra: Record<string, unknown> = {}) => JSON.stringify({ error: { code, message: `msg ${code}`, retryable: false, ...extra } });

describe('errorFromAnswer', () => {
  it.each([
    [400, 'bad_request', BadRequestError],
    [401, 'unauthorized', UnauthorizedError],
    [404, 'not_found', NotFoundError],
    [404, 'model_not_found', NotFoundError],
    [409, 'conflict', ConflictError],
    [409, 'cancelled', ConflictError],
    [422, 'unsatisfiable', UnsatisfiableError],
    [422, 'idempotency_conflict', IdempotencyConflictError],
    [429, 'rate_limited', RateLimitedError],
    [503, 'unavailable', UnavailableError],
    [504, 'timeout', TimedOutError],
    [502, 'backend_error', ServerError],
    [507, 'out_of_memory', ServerError],
  ])('%i %s → %o', (status, code, cls) => {
    const e = errorFromAnswer(status, headers({ 'x-request-id': 'req-1' }), hydraBody(code), req);
    expect(e).toBeInstanceOf(cls);
    expect(e).toBeInstanceOf(HydraApiError);
    expect(e).toMatchObject({ code, status, message: `msg ${code}`, retryable: false, requestId: 'req-1', method: 'POST', path: '/v1/jobs', name: cls.name });
  });

  it('names the bad fields of a 400', () => {
    const fields = [{ field: 'model', problem: 'is required' }, { field: 'priority', problem: 'must be at most 10' }];
    const e = errorFromAnswer(400, headers(), hydraBody('bad_request', { details: { fields } }), req) as BadRequestError;
    expect(e.fields).toEqual(fields);
    expect(e.details).toEqual({ fields });
  });

  it('reads Retry-After (seconds, or details.retry_after_s) and keeps retryable', () => {
    const r = errorFromAnswer(429, headers({ 'retry-after': '7' }), hydraBody('rate_limited', { retryable: true }), req) as RateLimitedError;
    expect(r.retryAfter).toBe(7);
    expect(r.retryable).toBe(true);
    const u = errorFromAnswer(503, headers(), hydraBody('unavailable', { retryable: true, details: { retry_after_s: 2 } }), req) as UnavailableError;
    expect(u.retryAfter).toBe(2);
  });

  it('understands Ollama ({error: "..."}) and text bodies; derives code and retryable from the status', () => {
    const o = errorFromAnswer(400, headers(), JSON.stringify({ error: 'unknown node(s) gpu-zz' }), { method: 'POST', path: '/api/pull' });
    expect(o).toBeInstanceOf(BadRequestError);
    expect(o).toMatchObject({ code: 'bad_request', message: 'unknown node(s) gpu-zz', retryable: false });
    const t = errorFromAnswer(502, headers(), '<html>Bad Gateway</html>', req);
    expect(t).toBeInstanceOf(ServerError);
    expect(t).toMatchObject({ code: 'internal', message: '<html>Bad Gateway</html>', retryable: true });
    expect(errorFromAnswer(500, headers(), '', req).message).toBe('HTTP 500');
  });

  it('keeps the answer as the error body (a failed wait carries the job view)', () => {
    const view = { id: 'j1', state: 'failed', error: { code: 'backend_error', message: 'boom' } };
    const e = errorFromAnswer(502, headers(), JSON.stringify(view), req);
    expect(e).toMatchObject({ code: 'backend_error', message: 'boom', body: view });
  });
});
