// The Hydra API as the CLI's commands reach it: the typed client (libs/client) at HYDRA_URL with HYDRA_API_KEY, and
// every way a request can fail (no answer, 401, an error answer) turned into one message that says what to do.
import { Hydra, HydraApiError, HydraConnectionError } from '../../libs/client/index.js';
import { loadConfigOrExit } from '../../libs/config/index.js';

/** Longest wait for the API to start answering (for JSON: to answer whole); a slower API is reported as not answering. */
const REQUEST_TIMEOUT_MS = 10_000;

/** A failure a command found itself (a pull that ended without its last line...); `retryable` as the client's errors. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

/** From HYDRA_URL and HYDRA_API_KEY; a bad value exits with the config's message, named after `command`. */
export function clientFromEnv(env: NodeJS.ProcessEnv, command: string): Hydra {
  const config = loadConfigOrExit(env, command);
  // '' rather than undefined: the key is the config's (validated) or none, never the client's own read of the env.
  return new Hydra({ url: config.HYDRA_URL, apiKey: config.HYDRA_API_KEY ?? '', timeoutMs: REQUEST_TIMEOUT_MS });
}

/** Whether `e` is a failure the CLI explains (anything else is a bug and keeps its stack). */
export const isReported = (e: unknown): e is HydraApiError | HydraConnectionError | CliError => e instanceof HydraApiError || e instanceof HydraConnectionError || e instanceof CliError;

/** The one line a command prints for a failure: what happened, and what to do about it. */
export function describeFailure(e: HydraApiError | HydraConnectionError | CliError, hydra: Hydra): string {
  if (e instanceof CliError) return e.message;
  if (e instanceof HydraConnectionError) {
    if (e.problem === 'protocol') return `${e.message.replace(/: is it a Hydra API\?$/, '')}: is HYDRA_URL a Hydra API?`;
    if (e.problem === 'dropped') return `${e.message}: run the command again`;
    return `${e.message}: is it running? Start one with "hydra up", or set HYDRA_URL to its address`;
  }
  if (e.status === 401) {
    return hydra.hasKey
      ? `the Hydra API at ${hydra.url} refused the key in HYDRA_API_KEY (401): set HYDRA_API_KEY to one of the API's API_KEYS`
      : `the Hydra API at ${hydra.url} needs an API key (401): set HYDRA_API_KEY to one of the API's API_KEYS`;
  }
  return `the Hydra API at ${hydra.url} answered ${e.status} to ${e.method} ${e.path}: ${e.message} [${e.code}]`;
}

/** `--json` output of a failure: the API's code, message and retryable, as scripts read them. */
export function failureJson(e: HydraApiError | HydraConnectionError | CliError, hydra: Hydra): { error: { code: string; message: string; retryable: boolean; status?: number } } {
  if (e instanceof HydraApiError) return { error: { code: e.code, message: e.message, retryable: e.retryable, status: e.status } };
  const code = e instanceof HydraConnectionError ? (e.problem === 'protocol' ? 'bad_response' : 'unreachable') : 'failed';
  return { error: { code, message: describeFailure(e, hydra), retryable: e.retryable } };
}
