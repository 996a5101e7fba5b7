// Maps what went wrong talking to an HTTP inference server to a HydraError: a stable code, whether a retry can help, and a message naming the server.
import { ErrorCode, HydraError, type BackendProbe } from '../../../libs/core/index.js';
import type { Logger } from '../../../libs/logger/index.js';

/** Error text that means the model did not fit (Ollama: "model requires more system memory ..."). */
const OUT_OF_MEMORY = /requires more system memory|out of memory|insufficient memory|not enough memory|cudaMalloc failed/i;
/** Error text that means the server does not have the model. */
const MODEL_MISSING = /model\b.*\b(not found|does not exist)|no such model|unknown model/i;

/** Transport failures: the server is down, went away, or did not answer in time. */
const TRANSPORT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'HPE_INVALID_CHUNK_SIZE',
  'HPE_INVALID_EOF_STATE',
]);

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

/** `label` names the server in messages, e.g. "ollama at http://10.0.0.5:11434". */
export function errorFromStatus(label: string, status: number, message: string): HydraError {
  const details = { status, backend_message: message };
  const what = `${label} answered ${status}: ${message}`;
  if (OUT_OF_MEMORY.test(message)) {
    return new HydraError(ErrorCode.OutOfMemory, `${what} (the model does not fit in this node's memory; a node with more free memory may run it)`, { retryable: true, details });
  }
  if (status === 404 || MODEL_MISSING.test(message)) {
    return new HydraError(ErrorCode.ModelNotFound, `${what} (pull the model on that server, or send the job to a node that has it)`, { retryable: false, details });
  }
  if (status === 401 || status === 403) {
    return new HydraError(ErrorCode.BackendError, `${what} (check the API key configured for this backend)`, { retryable: false, details });
  }
  const retryable = status >= 500 || status === 408 || status === 429;
  return new HydraError(ErrorCode.BackendError, what, { retryable, details });
}

/** An `{"error": ...}` inside a 200 stream: the server failed mid-answer. */
export function errorFromStreamMessage(label: string, message: string): HydraError {
  if (OUT_OF_MEMORY.test(message) || MODEL_MISSING.test(message)) return errorFromStatus(label, 500, message);
  return new HydraError(ErrorCode.BackendError, `${label} failed mid-stream: ${message}`, { retryable: true, details: { backend_message: message } });
}

export function cancelledError(label: string, cause?: unknown): HydraError {
  return new HydraError(ErrorCode.Cancelled, `the request to ${label} was cancelled`, { retryable: false, cause });
}

/** Why a probe stopped when the caller's signal aborted: its own deadline (AbortSignal.timeout) or a cancellation. */
function probeAbortReason(label: string, signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  return reason instanceof Error && reason.name === 'TimeoutError' ? `${label} did not answer before the probe deadline` : `probe of ${label} was cancelled`;
}

/** A failed probe (probes never throw): why — its own timeout, the caller's deadline or cancel, or the error itself. */
export function failedProbe(label: string, e: unknown, timeout: AbortSignal, timeoutMs: number, signal: AbortSignal | undefined, log: Logger): BackendProbe {
  const error = timeout.aborted
    ? `${label} did not answer within ${timeoutMs} ms`
    : signal?.aborted
      ? probeAbortReason(label, signal)
      : e instanceof Error
        ? e.message
        : String(e);
  log.debug({ err: error }, 'probe failed');
  return { healthy: false, error, models_available: [], models_loaded: [] };
}

function errorCode(e: unknown): string | undefined {
  for (let cur: unknown = e, depth = 0; cur && depth < 4; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * Anything thrown while sending a request or reading its answer. `signal` is the caller's: when it aborted, the
 * result is `cancelled` whatever undici threw. Connection and timeout failures are `backend_unavailable` (retryable).
 */
export function errorFromTransport(label: string, e: unknown, signal?: AbortSignal): HydraError {
  if (signal?.aborted) return cancelledError(label, e);
  if (e instanceof HydraError) return e;
  const code = errorCode(e);
  const message = e instanceof Error ? e.message : String(e);
  if (code && TIMEOUT_CODES.has(code)) {
    return new HydraError(ErrorCode.BackendUnavailable, `${label} did not answer in time (${code}): ${message}`, { retryable: true, cause: e, details: { code } });
  }
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'EAI_AGAIN') {
    return new HydraError(ErrorCode.BackendUnavailable, `${label} is unreachable (${code}): is the server running?`, { retryable: true, cause: e, details: { code } });
  }
  if ((code && TRANSPORT_CODES.has(code)) || (e instanceof Error && e.name === 'SocketError')) {
    return new HydraError(ErrorCode.BackendUnavailable, `${label} closed the connection before the answer was complete (${code ?? 'socket error'}): ${message}`, { retryable: true, cause: e, details: { code } });
  }
  if (e instanceof Error && (e.name === 'AbortError' || e.name === 'TimeoutError')) {
    return new HydraError(ErrorCode.BackendUnavailable, `${label} did not answer in time: ${message}`, { retryable: true, cause: e });
  }
  if (e instanceof SyntaxError) {
    return new HydraError(ErrorCode.BackendError, `${label} sent an answer that could not be parsed: ${message}`, { retryable: true, cause: e });
  }
  return new HydraError(ErrorCode.BackendError, `${label} request failed: ${message}`, { retryable: true, cause: e, details: code ? { code } : undefined });
}

/** The error text of a failed answer: `{"error": "..."}`, `{"error": {"message": ...}}`, `{"message": ...}` or the raw text. */
export function errorMessageOf(text: string): string {
  const trimmed = text.trim();
  try {
    const v = JSON.parse(trimmed) as unknown;
    if (v && typeof v === 'object') {
      const o = v as { error?: unknown; message?: unknown; detail?: unknown };
      if (typeof o.error === 'string') return o.error;
      if (o.error && typeof o.error === 'object' && typeof (o.error as { message?: unknown }).message === 'string') return (o.error as { message: string }).message;
      if (typeof o.message === 'string') return o.message;
      if (typeof o.detail === 'string') return o.detail;
    }
  } catch {
    // not JSON: use the text
  }
  return trimmed.slice(0, 500) || '(empty answer)';
}
