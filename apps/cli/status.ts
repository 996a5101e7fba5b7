// `hydra status [--watch] [--interval S]`: the cluster's nodes and queues as a table, read from the API (HYDRA_URL).
import { parseArgs } from 'node:util';
import { loadConfigOrExit } from '../../libs/config/index.js';
import { renderStatus, type StatusNode, type StatusQueue, type StatusSnapshot } from './status-table.js';

/** Longest wait for one answer of the API; a slower API is reported as not answering. */
const REQUEST_TIMEOUT_MS = 10_000;

/** Why no table: `retry` when another try may succeed (API down, Redis away), so --watch keeps going. */
class StatusError extends Error {
  constructor(
    message: string,
    readonly retry: boolean,
  ) {
    super(message);
  }
}

async function getJson(base: string, path: string, key: string | undefined): Promise<unknown> {
  let r: Response;
  try {
    r = await fetch(`${base}${path}`, { headers: key ? { authorization: `Bearer ${key}` } : {}, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  } catch (e) {
    const err = e as Error & { cause?: { code?: string; message?: string } };
    const why = err.name === 'TimeoutError' ? `no answer within ${REQUEST_TIMEOUT_MS / 1000} s` : (err.cause?.code ?? err.cause?.message ?? err.message);
    throw new StatusError(`cannot reach the Hydra API at ${base} (${why}): is it running? Start one with "hydra up", or set HYDRA_URL to its address`, true);
  }
  const text = await r.text();
  if (r.status === 401) {
    throw new StatusError(
      key
        ? `the Hydra API at ${base} refused the key in HYDRA_API_KEY (401): set HYDRA_API_KEY to one of the API's API_KEYS`
        : `the Hydra API at ${base} needs an API key (401): set HYDRA_API_KEY to one of the API's API_KEYS`,
      false,
    );
  }
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    /* reported below */
  }
  if (!r.ok) {
    const msg = (body as { error?: { message?: string } } | null)?.error?.message ?? text.slice(0, 200);
    throw new StatusError(`the Hydra API at ${base} answered ${r.status} to GET ${path}: ${msg}`, r.status >= 500 || r.status === 429);
  }
  if (body === null) throw new StatusError(`the server at ${base} answered GET ${path} with something other than JSON: is HYDRA_URL a Hydra API?`, false);
  return body;
}

async function snapshot(base: string, key: string | undefined): Promise<StatusSnapshot> {
  const [nodes, stats] = await Promise.all([getJson(base, '/v1/nodes', key), getJson(base, '/v1/cluster/stats', key)]);
  return {
    nodes: ((nodes as { nodes?: StatusNode[] }).nodes ?? []).filter((n) => typeof n?.id === 'string'),
    queues: (stats as { queues?: Record<string, StatusQueue> }).queues ?? {},
  };
}

function options(argv: string[]): { watch: boolean; intervalMs: number } {
  const fail = (msg: string): never => {
    process.stderr.write(`hydra status: ${msg}\nusage: hydra status [--watch] [--interval S]\n`);
    process.exit(2);
  };
  let values: { watch?: boolean; interval?: string };
  try {
    ({ values } = parseArgs({ args: argv, options: { watch: { type: 'boolean', short: 'w' }, interval: { type: 'string', short: 'n' } }, strict: true }));
  } catch (e) {
    return fail((e as Error).message);
  }
  const s = values.interval === undefined ? 2 : Number(values.interval);
  if (!Number.isFinite(s) || s < 0.2 || s > 3600) return fail(`--interval must be a number of seconds from 0.2 to 3600, got "${values.interval}"`);
  return { watch: values.watch === true, intervalMs: Math.round(s * 1000) };
}

/** On a terminal: home, each line cleared to its end, the rest of the screen cleared; so a frame redraws in place. */
const redraw = (frame: string): string => `\x1b[H${frame.split('\n').join('\x1b[K\n')}\x1b[K\n\x1b[J`;

export async function status(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const { watch, intervalMs } = options(argv);
  const config = loadConfigOrExit(env, 'hydra status');
  const base = config.HYDRA_URL.replace(/\/+$/, '');
  const key = config.HYDRA_API_KEY;
  if (!watch) {
    try {
      process.stdout.write(`${renderStatus(await snapshot(base, key), base, Date.now())}\n`);
    } catch (e) {
      if (!(e instanceof StatusError)) throw e;
      process.stderr.write(`hydra status: ${e.message}\n`);
      process.exitCode = 1;
    }
    return;
  }
  // --watch: until Ctrl-C. In place on a terminal; otherwise (a pipe, a file) one frame per interval, appended.
  const tty = process.stdout.isTTY === true;
  const stop = () => {
    if (tty) process.stdout.write('\x1b[?25h\n');
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  if (tty) process.stdout.write('\x1b[?25l\x1b[2J');
  for (;;) {
    let frame: string;
    try {
      frame = renderStatus(await snapshot(base, key), base, Date.now());
    } catch (e) {
      if (!(e instanceof StatusError)) throw e;
      if (!e.retry) {
        if (tty) process.stdout.write('\x1b[?25h');
        process.stderr.write(`hydra status: ${e.message}\n`);
        process.exitCode = 1;
        return;
      }
      frame = `hydra status: ${e.message}\n(trying again every ${intervalMs / 1000} s; Ctrl-C to stop)`;
    }
    process.stdout.write(tty ? redraw(frame) : `${frame}\n\n`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
