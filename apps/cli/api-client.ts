// The Hydra API as the CLI's commands reach it: its address (HYDRA_URL), the key (HYDRA_API_KEY), and every way a
// request can fail (no answer, 401, an error answer) turned into one message that says what to do.
import { loadConfigOrExit } from '../../libs/config/index.js';

/** Longest wait for the API to start answering (for JSON: to answer whole); a slower API is reported as not answering. */
const REQUEST_TIMEOUT_MS = 10_000;

/** Why a command got no usable answer: `retry` when another try may succeed (API down, Redis away, rate limited). */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly retry: boolean,
    /** The HTTP status of an error answer; undefined when there was none (unreachable, not JSON). */
    readonly status?: number,
  ) {
    super(message);
  }
}

/** The message of an error answer: Hydra's `{error: {message}}`, Ollama's `{error: "..."}`, else the start of the body. */
export function errorText(text: string): string {
  try {
    const e = (JSON.parse(text) as { error?: unknown } | null)?.error;
    if (typeof e === 'string') return e;
    const m = (e as { message?: unknown } | undefined)?.message;
    if (typeof m === 'string') return m;
  } catch {
    /* not JSON */
  }
  return text.slice(0, 200);
}

export class HydraApi {
  readonly base: string;

  constructor(
    url: string,
    private readonly key: string | undefined,
  ) {
    this.base = url.replace(/\/+$/, '');
  }

  /** From HYDRA_URL and HYDRA_API_KEY; a bad value exits with the config's message, named after `command`. */
  static fromEnv(env: NodeJS.ProcessEnv, command: string): HydraApi {
    const config = loadConfigOrExit(env, command);
    return new HydraApi(config.HYDRA_URL, config.HYDRA_API_KEY);
  }

  /** GET `path` and its JSON body, all within the request timeout. */
  async getJson(path: string): Promise<unknown> {
    const { res, answered } = await this.open('GET', path, undefined);
    try {
      const text = await res.text();
      let body: unknown = null;
      try {
        body = JSON.parse(text);
      } catch {
        /* reported below */
      }
      if (body === null) throw new ApiError(`the server at ${this.base} answered GET ${path} with something other than JSON: is HYDRA_URL a Hydra API?`, false);
      return body;
    } catch (e) {
      throw e instanceof ApiError ? e : this.unreachable(e);
    } finally {
      answered();
    }
  }

  /**
   * POST `body` and return the 2xx answer with its body unread, for answers that stream (NDJSON): the request
   * timeout covers the wait for the status line only, a stream may then run as long as it needs.
   */
  async stream(path: string, body: unknown): Promise<Response> {
    const { res, answered } = await this.open('POST', path, body);
    answered();
    return res;
  }

  /** Send the request; a non-2xx answer throws. `answered()` ends the timeout once the caller read what it needs. */
  private async open(method: 'GET' | 'POST', path: string, body: unknown): Promise<{ res: Response; answered: () => void }> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new DOMException(`no answer within ${REQUEST_TIMEOUT_MS / 1000} s`, 'TimeoutError')), REQUEST_TIMEOUT_MS);
    const answered = () => clearTimeout(timer);
    const headers: Record<string, string> = { ...(this.key ? { authorization: `Bearer ${this.key}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) };
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, { method, headers, signal: ac.signal, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    } catch (e) {
      answered();
      throw this.unreachable(e);
    }
    if (res.ok) return { res, answered };
    try {
      const text = await res.text().catch(() => '');
      if (res.status === 401) {
        throw new ApiError(
          this.key
            ? `the Hydra API at ${this.base} refused the key in HYDRA_API_KEY (401): set HYDRA_API_KEY to one of the API's API_KEYS`
            : `the Hydra API at ${this.base} needs an API key (401): set HYDRA_API_KEY to one of the API's API_KEYS`,
          false,
          401,
        );
      }
      throw new ApiError(`the Hydra API at ${this.base} answered ${res.status} to ${method} ${path}: ${errorText(text)}`, res.status >= 500 || res.status === 429, res.status);
    } finally {
      answered();
    }
  }

  private unreachable(e: unknown): ApiError {
    const err = e as Error & { cause?: { code?: string; message?: string } };
    const why = err.name === 'TimeoutError' ? `no answer within ${REQUEST_TIMEOUT_MS / 1000} s` : (err.cause?.code ?? err.cause?.message ?? err.message);
    return new ApiError(`cannot reach the Hydra API at ${this.base} (${why}): is it running? Start one with "hydra up", or set HYDRA_URL to its address`, true);
  }
}
