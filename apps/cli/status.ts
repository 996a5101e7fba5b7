// `hydra status [--watch] [--interval S] [--days N]`: the cluster's nodes and queues as a table, and the results
// history's totals per model over the last N days, read from the API (HYDRA_URL).
import { parseArgs } from 'node:util';
import { HydraApiError, type Hydra } from '../../libs/client/index.js';
import { clientFromEnv, describeFailure, isReported } from './client.js';
import { renderStatus, type StatusHistory, type StatusHistoryRow, type StatusNode, type StatusQueue, type StatusSnapshot } from './status-table.js';

/** The history's per-model totals, or why there are none: 404 is an API with MEMORY_URL=off (or older than it). */
async function history(api: Hydra, days: number): Promise<StatusHistory> {
  try {
    const body = await api.request<{ groups?: StatusHistoryRow[] }>('GET', `/v1/history/stats?by=model&since=${days}d`);
    return { days, groups: (body.groups ?? []).filter((g) => typeof g?.key === 'string') };
  } catch (e) {
    if (e instanceof HydraApiError && e.status !== 401) return { days, groups: null, note: e.status === 404 ? 'off (MEMORY_URL=off)' : describeFailure(e, api) };
    throw e;
  }
}

async function snapshot(api: Hydra, days: number): Promise<StatusSnapshot> {
  const [nodes, stats, hist] = await Promise.all([api.request('GET', '/v1/nodes'), api.cluster(), days > 0 ? history(api, days) : undefined]);
  return {
    nodes: ((nodes as { nodes?: StatusNode[] }).nodes ?? []).filter((n) => typeof n?.id === 'string'),
    queues: (stats as { queues?: Record<string, StatusQueue> }).queues ?? {},
    ...(hist ? { history: hist } : {}),
  };
}

function options(argv: string[]): { watch: boolean; intervalMs: number; days: number } {
  const fail = (msg: string): never => {
    process.stderr.write(`hydra status: ${msg}\nusage: hydra status [--watch] [--interval S] [--days N]\n`);
    process.exit(2);
  };
  let values: { watch?: boolean; interval?: string; days?: string };
  try {
    ({ values } = parseArgs({ args: argv, options: { watch: { type: 'boolean', short: 'w' }, interval: { type: 'string', short: 'n' }, days: { type: 'string' } }, strict: true }));
  } catch (e) {
    return fail((e as Error).message);
  }
  const s = values.interval === undefined ? 2 : Number(values.interval);
  if (!Number.isFinite(s) || s < 0.2 || s > 3600) return fail(`--interval must be a number of seconds from 0.2 to 3600, got "${values.interval}"`);
  const days = values.days === undefined ? 7 : Number(values.days);
  if (!Number.isInteger(days) || days < 0 || days > 3650) return fail(`--days must be a whole number of days from 0 (no history) to 3650, got "${values.days}"`);
  return { watch: values.watch === true, intervalMs: Math.round(s * 1000), days };
}

/** On a terminal: home, each line cleared to its end, the rest of the screen cleared; so a frame redraws in place. */
const redraw = (frame: string): string => `\x1b[H${frame.split('\n').join('\x1b[K\n')}\x1b[K\n\x1b[J`;

export async function status(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const { watch, intervalMs, days } = options(argv);
  const api = clientFromEnv(env, 'hydra status');
  if (!watch) {
    try {
      process.stdout.write(`${renderStatus(await snapshot(api, days), api.url, Date.now())}\n`);
    } catch (e) {
      if (!isReported(e)) throw e;
      process.stderr.write(`hydra status: ${describeFailure(e, api)}\n`);
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
      frame = renderStatus(await snapshot(api, days), api.url, Date.now());
    } catch (e) {
      if (!isReported(e)) throw e;
      if (!e.retryable) {
        if (tty) process.stdout.write('\x1b[?25h');
        process.stderr.write(`hydra status: ${describeFailure(e, api)}\n`);
        process.exitCode = 1;
        return;
      }
      frame = `hydra status: ${describeFailure(e, api)}\n(trying again every ${intervalMs / 1000} s; Ctrl-C to stop)`;
    }
    process.stdout.write(tty ? redraw(frame) : `${frame}\n\n`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
