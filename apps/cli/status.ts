// `hydra status [--watch] [--interval S]`: the cluster's nodes and queues as a table, read from the API (HYDRA_URL).
import { parseArgs } from 'node:util';
import { ApiError, HydraApi } from './api-client.js';
import { renderStatus, type StatusNode, type StatusQueue, type StatusSnapshot } from './status-table.js';

async function snapshot(api: HydraApi): Promise<StatusSnapshot> {
  const [nodes, stats] = await Promise.all([api.getJson('/v1/nodes'), api.getJson('/v1/cluster/stats')]);
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
  const api = HydraApi.fromEnv(env, 'hydra status');
  if (!watch) {
    try {
      process.stdout.write(`${renderStatus(await snapshot(api), api.base, Date.now())}\n`);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
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
      frame = renderStatus(await snapshot(api), api.base, Date.now());
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
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
