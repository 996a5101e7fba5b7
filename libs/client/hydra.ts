// The typed Hydra client: one class over fetch for jobs, token streams (resumed with Last-Event-ID after a dropped
// connection), nodes, workflows and batches. Error answers become typed errors (errors.ts). Nothing server-side is
// loaded: it runs anywhere fetch does.
import { errorFromAnswer, HydraApiError, HydraConnectionError, RateLimitedError, UnavailableError, WaitTimeoutError } from './errors.js';
import { ndjsonLines } from './ndjson.js';
import { SseParser, type SseMessage } from './sse.js';
import type {
  BatchPage,
  BatchRequest,
  BatchResult,
  BatchView,
  CancelAnswer,
  ClusterStats,
  JobFailure,
  JobListQuery,
  JobRequest,
  JobStreamEvent,
  JobSummary,
  JobView,
  NodeInfo,
  SubmitAnswer,
  WorkflowRequest,
  WorkflowStreamEvent,
  WorkflowView,
} from './types.js';

export interface HydraOptions {
  /** The API's address; default HYDRA_URL from the environment (in Node), else http://127.0.0.1:8080. */
  url?: string;
  /** Sent as `Authorization: Bearer`; default HYDRA_API_KEY from the environment (in Node). */
  apiKey?: string;
  /** A fetch to use instead of the global one (tests, proxies, instrumentation). */
  fetch?: typeof fetch;
  /** Longest wait for an answer (for a stream: for its headers), ms. Default 30 000. */
  timeoutMs?: number;
  /** Stream resumption: reconnects in a row without a new event before giving up (default 10), first delay (ms, 250, doubling to at most 5 s). */
  reconnect?: { attempts?: number; delayMs?: number; maxDelayMs?: number };
}

export interface StreamOptions {
  /** Ends the stream: the iterator throws the signal's reason (an AbortError unless told otherwise). */
  signal?: AbortSignal;
  /** Resume after this event id (an earlier stream's last `id`): only later events are sent. */
  lastEventId?: string;
}

export interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Overrides the client's timeoutMs for this request. */
  timeoutMs?: number;
}

const FINAL_STATES: ReadonlySet<string> = new Set(['completed', 'failed', 'cancelled']);
const DEFAULT_URL = 'http://127.0.0.1:8080';
const enc = encodeURIComponent;

/** The environment when running in Node (the client also runs where there is none). */
const envVar = (name: string): string | undefined => (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[name] || undefined;

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

const parseData = (data: string): unknown => {
  try {
    return JSON.parse(data);
  } catch {
    return data;
  }
};

/** A job stream's SSE message as a typed event: token and thinking text arrive as `{"text": ...}`. */
export function jobEventOf(m: SseMessage): JobStreamEvent {
  const data = parseData(m.data);
  const text = (d: unknown): string => (typeof d === 'object' && d !== null && typeof (d as { text?: unknown }).text === 'string' ? (d as { text: string }).text : typeof d === 'string' ? d : '');
  switch (m.event) {
    case 'token':
    case 'thinking':
      return { event: m.event, id: m.id, text: text(data) };
    case 'done':
      return { event: 'done', id: m.id, result: data as Extract<JobStreamEvent, { event: 'done' }>['result'] };
    case 'error':
      return { event: 'error', id: m.id, error: (typeof data === 'object' && data !== null ? data : { code: 'internal', message: String(data) }) as JobFailure };
    case 'retry':
    case 'requeued':
      return { event: m.event, id: m.id, data: (typeof data === 'object' && data !== null ? data : {}) as never };
    case 'progress':
      return { event: 'progress', id: m.id, data };
    default:
      return { event: 'other', name: m.event, id: m.id, data };
  }
}

export class Hydra {
  /** The API's address, without a trailing slash. */
  readonly url: string;
  private readonly apiKey: string | undefined;
  private readonly fetchFn: typeof fetch;
  private readonly timeoutMs: number;
  private readonly reconnect: { attempts: number; delayMs: number; maxDelayMs: number };

  constructor(opts: HydraOptions = {}) {
    this.url = (opts.url ?? envVar('HYDRA_URL') ?? DEFAULT_URL).replace(/\/+$/, '');
    this.apiKey = opts.apiKey ?? envVar('HYDRA_API_KEY');
    this.fetchFn = opts.fetch ?? ((input, init) => fetch(input, init));
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.reconnect = { attempts: opts.reconnect?.attempts ?? 10, delayMs: opts.reconnect?.delayMs ?? 250, maxDelayMs: opts.reconnect?.maxDelayMs ?? 5000 };
  }

  /** Whether requests carry an API key. */
  get hasKey(): boolean {
    return Boolean(this.apiKey);
  }

  // ---- transport ---------------------------------------------------------------------------------------------------

  /**
   * Send a request; a non-2xx answer throws its typed error, no answer a HydraConnectionError. The timeout runs until
   * `done()`: the caller ends it once it read what it needs (the status line of a stream, the whole body of JSON).
   */
  private async send(method: string, path: string, opts: RequestOptions): Promise<{ res: Response; done: () => void; timedOut: () => boolean }> {
    const ms = opts.timeoutMs ?? this.timeoutMs;
    const timer = new AbortController();
    const t = setTimeout(() => timer.abort(new DOMException(`no answer within ${ms} ms`, 'TimeoutError')), ms);
    const done = () => clearTimeout(t);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timer.signal]) : timer.signal;
    const headers: Record<string, string> = {
      ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}),
      ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...opts.headers,
    };
    let res: Response;
    try {
      res = await this.fetchFn(`${this.url}${path}`, { method, headers, signal, ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }) });
    } catch (e) {
      done();
      if (opts.signal?.aborted) throw opts.signal.reason;
      throw this.unreachable(e, timer.signal.aborted ? ms : undefined);
    }
    if (res.ok) return { res, done, timedOut: () => timer.signal.aborted };
    try {
      const text = await res.text().catch(() => '');
      throw errorFromAnswer(res.status, res.headers, text, { method, path });
    } finally {
      done();
    }
  }

  /** Send a request and return the 2xx answer with its body unread (for streamed bodies): the timeout covers the status line. */
  async open(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
    const { res, done } = await this.send(method, path, opts);
    done();
    return res;
  }

  /** Send a request and return the JSON answer (its status too), all within the timeout. */
  async call<T>(method: string, path: string, opts: RequestOptions = {}): Promise<{ status: number; body: T; headers: Headers }> {
    const { res, done, timedOut } = await this.send(method, path, opts);
    let text: string;
    try {
      text = await res.text();
    } catch (e) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      throw timedOut() ? this.unreachable(e, opts.timeoutMs ?? this.timeoutMs) : this.dropped(`${method} ${path}`, e);
    } finally {
      done();
    }
    try {
      return { status: res.status, body: JSON.parse(text) as T, headers: res.headers };
    } catch {
      throw new HydraConnectionError(`the server at ${this.url} answered ${method} ${path} with something other than JSON: is it a Hydra API?`, 'protocol', this.url);
    }
  }

  /** The JSON body of a request's 2xx answer. */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    return (await this.call<T>(method, path, opts)).body;
  }

  /** `timedOutMs`: the request's own timeout ran out (after that many ms). */
  private unreachable(e: unknown, timedOutMs: number | undefined): HydraConnectionError {
    const err = e as Error & { cause?: { code?: string; message?: string } };
    if (timedOutMs !== undefined) return new HydraConnectionError(`cannot reach the Hydra API at ${this.url} (no answer within ${timedOutMs / 1000} s)`, 'timeout', this.url, undefined, { cause: e });
    const errno = err.cause?.code;
    const why = errno ?? err.cause?.message ?? err.message;
    return new HydraConnectionError(`cannot reach the Hydra API at ${this.url} (${why})`, 'unreachable', this.url, errno, { cause: e });
  }

  private dropped(what: string, e: unknown): HydraConnectionError {
    const why = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
    return new HydraConnectionError(`the Hydra API at ${this.url} broke off ${what} (${why})`, 'dropped', this.url, undefined, { cause: e });
  }

  // ---- jobs --------------------------------------------------------------------------------------------------------

  /**
   * POST /v1/jobs. A queued job answers 202 with its links; a cache hit (or `wait: true`) 200 with the view.
   * `idempotencyKey`: a repeat with the same key answers with the first request's job instead of adding another.
   */
  async submit(req: JobRequest, opts: { idempotencyKey?: string; signal?: AbortSignal } = {}): Promise<SubmitAnswer> {
    const r = await this.call<Record<string, unknown>>('POST', '/v1/jobs', { body: req, headers: opts.idempotencyKey ? { 'idempotency-key': opts.idempotencyKey } : {}, ...(opts.signal ? { signal: opts.signal } : {}), timeoutMs: req.wait ? Math.max(this.timeoutMs, (req.timeout_ms ?? 0) + 5000) : this.timeoutMs });
    return { ...r.body, status: r.status } as SubmitAnswer;
  }

  /**
   * Submit and return the completed job's view. The API waits for it (`wait: true`); past its wait limit the client
   * polls. A failed or cancelled job throws its error (the view is the error's `body`).
   */
  async run(req: JobRequest, opts: { idempotencyKey?: string; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<JobView> {
    const a = await this.submit({ ...req, wait: true }, opts);
    const view = a.status === 200 ? (a as JobView) : await this.wait(a.id, opts);
    if (view.state === 'completed') return view;
    throw errorFromAnswer(view.state === 'cancelled' ? 409 : 502, new Headers(), JSON.stringify({ error: view.error ?? { code: 'cancelled', message: `job ${view.id} was cancelled` }, ...view }), { method: 'GET', path: `/v1/jobs/${view.id}` });
  }

  /**
   * Poll GET /v1/jobs/:id until the job is completed, failed or cancelled (every 100 ms, slowing to 1 s), riding out
   * retryable errors (API restarts, Redis away). Past `timeoutMs` (default 10 min) throws WaitTimeoutError.
   */
  async wait(id: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<JobView> {
    const ms = opts.timeoutMs ?? 600_000;
    const deadline = Date.now() + ms;
    let every = 100;
    let state = 'unknown';
    for (;;) {
      try {
        const v = await this.job(id, opts.signal ? { signal: opts.signal } : {});
        if (FINAL_STATES.has(v.state)) return v;
        state = v.state;
      } catch (e) {
        if (opts.signal?.aborted || !(e as { retryable?: boolean }).retryable) throw e;
      }
      if (Date.now() + every > deadline) throw new WaitTimeoutError(id, state, ms);
      await sleep(every, opts.signal);
      every = Math.min(1000, Math.round(every * 1.5));
    }
  }

  /** GET /v1/jobs/:id: state, attempts, result or error, routing decision (a cancelled job: `{id, state: "cancelled"}`). */
  job(id: string, opts: { signal?: AbortSignal } = {}): Promise<JobView> {
    return this.request<JobView>('GET', `/v1/jobs/${enc(id)}`, opts);
  }

  /** GET /v1/jobs: recent jobs, newest first. */
  async jobs(q: JobListQuery = {}): Promise<JobSummary[]> {
    const qs = new URLSearchParams();
    if (q.limit !== undefined) qs.set('limit', String(q.limit));
    if (q.state) qs.set('state', q.state);
    if (q.model) qs.set('model', q.model);
    const s = qs.toString();
    return (await this.request<{ jobs: JobSummary[] }>('GET', `/v1/jobs${s ? `?${s}` : ''}`)).jobs;
  }

  /** DELETE /v1/jobs/:id: a waiting job is removed; a running one is aborted on its node (`cancelling`). */
  cancel(id: string): Promise<CancelAnswer> {
    return this.request<CancelAnswer>('DELETE', `/v1/jobs/${enc(id)}`);
  }

  /**
   * GET /v1/jobs/:id/stream as typed events until `done` or `error`. A dropped connection, a restarting API (refused
   * connections, 5xx) or a replica handing the stream over is resumed with the last event's id as Last-Event-ID,
   * after a backoff, so every event arrives once and in order. Gives up after `reconnect.attempts` tries in a row.
   * Leaving the loop early closes the connection (without `detach`, the API cancels a job whose last reader left and
   * did not come back within STREAM_RECONNECT_GRACE_MS).
   */
  stream(id: string, opts: StreamOptions = {}): AsyncGenerator<JobStreamEvent> {
    return this.sse(`/v1/jobs/${enc(id)}/stream`, opts, jobEventOf);
  }

  // ---- cluster -----------------------------------------------------------------------------------------------------

  /** GET /v1/nodes: the registry (health, memory, models, slots, measured speed). */
  async nodes(): Promise<NodeInfo[]> {
    return (await this.request<{ nodes: NodeInfo[] }>('GET', '/v1/nodes')).nodes;
  }

  /** GET /v1/cluster/stats: node totals and counts per queue. */
  cluster(): Promise<ClusterStats> {
    return this.request<ClusterStats>('GET', '/v1/cluster/stats');
  }

  // ---- workflows and batches ---------------------------------------------------------------------------------------

  readonly workflows = {
    /** POST /v1/workflows: 202 with links, or with `wait` the final view. */
    submit: async (req: WorkflowRequest, opts: { idempotencyKey?: string } = {}): Promise<WorkflowView & { status: number }> => {
      const r = await this.call<WorkflowView>('POST', '/v1/workflows', { body: req, headers: opts.idempotencyKey ? { 'idempotency-key': opts.idempotencyKey } : {}, timeoutMs: req.wait ? Math.max(this.timeoutMs, (req.timeout_ms ?? 0) + 5000) : this.timeoutMs });
      return { ...r.body, status: r.status };
    },
    get: (id: string): Promise<WorkflowView> => this.request<WorkflowView>('GET', `/v1/workflows/${enc(id)}`),
    cancel: (id: string): Promise<WorkflowView> => this.request<WorkflowView>('DELETE', `/v1/workflows/${enc(id)}`),
    /** GET /v1/workflows/:id/stream (step events, then done or error), resumed like a job's stream. */
    stream: (id: string, opts: StreamOptions = {}): AsyncGenerator<WorkflowStreamEvent> => this.sse(`/v1/workflows/${enc(id)}/stream`, opts, (m) => ({ event: m.event, id: m.id, data: parseData(m.data) })),
  };

  readonly batches = {
    /** POST /v1/batches: every request queued as its own job (202, the batch's view). */
    create: (req: BatchRequest, opts: { idempotencyKey?: string } = {}): Promise<BatchView> =>
      this.request<BatchView>('POST', '/v1/batches', { body: req, headers: opts.idempotencyKey ? { 'idempotency-key': opts.idempotencyKey } : {} }),
    /** GET /v1/batches/:id: counts, and a page of results in request order from `offset` (`next_offset` for the next). */
    get: (id: string, page: { offset?: number; limit?: number } = {}): Promise<BatchPage> => {
      const qs = new URLSearchParams();
      if (page.offset !== undefined) qs.set('offset', String(page.offset));
      if (page.limit !== undefined) qs.set('limit', String(page.limit));
      const s = qs.toString();
      return this.request<BatchPage>('GET', `/v1/batches/${enc(id)}${s ? `?${s}` : ''}`);
    },
    /** GET /v1/batches/:id/results: every result in request order, as the NDJSON lines arrive. */
    results: (id: string, opts: { signal?: AbortSignal } = {}): AsyncGenerator<BatchResult> => this.ndjson<BatchResult>('GET', `/v1/batches/${enc(id)}/results`, opts),
    /** POST /v1/batches/:id/cancel: waiting jobs removed, running ones aborted. */
    cancel: (id: string): Promise<BatchView> => this.request<BatchView>('POST', `/v1/batches/${enc(id)}/cancel`),
  };

  // ---- streamed bodies ---------------------------------------------------------------------------------------------

  /** An NDJSON answer's objects as they arrive (`body` for a POST). A line that is not JSON is a protocol error. */
  async *ndjson<T>(method: string, path: string, opts: RequestOptions = {}): AsyncGenerator<T> {
    const res = await this.open(method, path, opts);
    if (!res.body) return;
    try {
      for await (const line of ndjsonLines(res.body)) {
        try {
          yield JSON.parse(line) as T;
        } catch (e) {
          if (e instanceof SyntaxError) throw new HydraConnectionError(`the server at ${this.url} sent a line that is not JSON on ${method} ${path} (${line.slice(0, 80)})`, 'protocol', this.url);
          throw e;
        }
      }
    } catch (e) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      if (e instanceof HydraConnectionError || e instanceof HydraApiError) throw e;
      throw this.dropped(`${method} ${path}`, e);
    }
  }

  /** Whether a failed (re)connect of a stream may be tried again: no answer, or a 5xx / 429 the API marks retryable. */
  private static resumable(e: unknown): boolean {
    if (e instanceof HydraConnectionError) return e.problem !== 'protocol';
    return e instanceof HydraApiError && (e.status >= 500 || e.status === 429);
  }

  /** Delay before reconnect `n` (1-based): the server's `retry:` or Retry-After when it gave one, else doubling with jitter. */
  private reconnectDelay(n: number, hintMs: number | undefined): number {
    if (hintMs !== undefined) return Math.min(hintMs, this.reconnect.maxDelayMs * 4);
    const base = Math.min(this.reconnect.maxDelayMs, this.reconnect.delayMs * 2 ** (n - 1));
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  /** An SSE stream as mapped events until `done` or `error`, resumed from the last event id after any break. */
  private async *sse<E>(path: string, opts: StreamOptions, map: (m: SseMessage) => E): AsyncGenerator<E> {
    let last = opts.lastEventId ?? '';
    /** Reconnects in a row without a new event. */
    let tries = 0;
    let hintMs: number | undefined;
    const again = async (cause: unknown): Promise<void> => {
      if (opts.signal?.aborted) throw opts.signal.reason;
      if (!Hydra.resumable(cause) || ++tries > this.reconnect.attempts) throw cause;
      const retryAfter = cause instanceof RateLimitedError || cause instanceof UnavailableError ? cause.retryAfter : undefined;
      await sleep(this.reconnectDelay(tries, retryAfter !== undefined ? retryAfter * 1000 : hintMs), opts.signal);
    };
    for (;;) {
      let res: Response;
      try {
        res = await this.open('GET', path, { headers: { accept: 'text/event-stream', ...(last ? { 'last-event-id': last } : {}) }, ...(opts.signal ? { signal: opts.signal } : {}) });
      } catch (e) {
        await again(e);
        continue;
      }
      const parser = new SseParser();
      const decoder = new TextDecoder();
      let broke: unknown = new HydraConnectionError(`the Hydra API at ${this.url} ended ${path} before its last event`, 'dropped', this.url);
      try {
        for await (const chunk of (res.body ?? []) as AsyncIterable<Uint8Array>) {
          for (const m of parser.push(decoder.decode(chunk, { stream: true }))) {
            if (m.id) last = m.id;
            tries = 0;
            yield map(m);
            if (m.event === 'done' || m.event === 'error') return;
          }
        }
      } catch (e) {
        if (opts.signal?.aborted) throw opts.signal.reason;
        broke = this.dropped(path, e);
      }
      hintMs = parser.retryMs;
      await again(broke);
    }
  }
}
