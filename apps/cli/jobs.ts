// `hydra jobs [--limit N] [--state S] [--model M] [--json]`, `hydra job ID [--json]`, `hydra cancel ID [--json]`:
// recent jobs as a table, one job's view, a cancel. --json prints the API's answer as is (errors as {"error": ...}).
// Exit codes: 0 ok, 1 not found / refused / unreachable, 2 usage.
import { parseArgs } from 'node:util';
import type { Hydra, JobSummary, JobView } from '../../libs/client/index.js';
import { clientFromEnv, describeFailure, failureJson, isReported } from './client.js';

const USAGES = {
  jobs: 'usage: hydra jobs [--limit N] [--state waiting|active|delayed|completed|failed] [--model M] [--json]',
  job: 'usage: hydra job ID [--json]',
  cancel: 'usage: hydra cancel ID [--json]',
} as const;
type Command = keyof typeof USAGES;

function usageError(cmd: Command, msg: string): never {
  process.stderr.write(`hydra ${cmd}: ${msg}\n${USAGES[cmd]}\n`);
  process.exit(2);
}

function parse(cmd: Command, argv: string[], strings: readonly string[] = []): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  const options: Record<string, { type: 'string' | 'boolean' }> = { json: { type: 'boolean' } };
  for (const s of strings) options[s] = { type: 'string' };
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true }) as { values: Record<string, string | boolean | undefined>; positionals: string[] };
  } catch (e) {
    return usageError(cmd, (e as Error).message);
  }
}

/** One id, no more. */
function idOf(cmd: Command, positionals: string[]): string {
  const [id, ...more] = positionals;
  if (!id) return usageError(cmd, 'name the job (hydra jobs lists recent ones)');
  if (more.length > 0) return usageError(cmd, `one job at a time; got also ${more.join(' ')}`);
  return id;
}

/** Run a command's request; a failure prints its message (and with --json its JSON) and exits 1. */
async function attempt<T>(cmd: Command, api: Hydra, json: boolean, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (e) {
    if (!isReported(e)) throw e;
    if (json) process.stdout.write(`${JSON.stringify(failureJson(e, api))}\n`);
    process.stderr.write(`hydra ${cmd}: ${describeFailure(e, api)}\n`);
    process.exitCode = 1;
    return undefined;
  }
}

/** "12s", "5m", "3h", "2d" ago. */
export function ago(iso: string | null, now: number): string {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/** The jobs as an aligned table, newest first. */
export function renderJobs(jobs: readonly JobSummary[], now: number): string {
  if (jobs.length === 0) return 'no jobs';
  const head = ['ID', 'STATE', 'TYPE', 'MODEL', 'PRI', 'NODE', 'CREATED', 'FINISHED'];
  const rows = jobs.map((j) => [j.id, j.state, j.type, j.model, String(j.priority), j.node_id ?? '-', `${ago(j.created_at, now)} ago`, j.finished_at ? `${ago(j.finished_at, now)} ago` : '-']);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

/** One job's view as `field: value` lines, the answer (or error) last. */
export function renderJob(v: JobView): string {
  const lines: [string, unknown][] = [
    ['id', v.id],
    ['state', v.state],
    ['type', v.type],
    ['model', v.model],
    ['queue', v.queue],
    ['priority', v.priority],
    ['node', v.node_id ?? v.result?.node_id ?? v.routing_decision?.selected_node],
    ['attempts', v.attempts_made !== undefined ? `${v.attempts_made}/${v.attempts_max ?? '?'}` : undefined],
    ['queue position', v.queue_position],
    ['estimated start', v.estimated_start],
    ['submitted', v.submitted_at],
    ['started', v.started_at],
    ['finished', v.finished_at],
    ['error', v.error ? `${v.error.message} [${v.error.code}]` : undefined],
  ];
  const shown = lines.filter(([, x]) => x !== undefined && x !== null).map(([k, x]) => `${`${k}:`.padEnd(16)}${String(x)}`);
  const answer = v.result?.response ?? v.result?.message?.content;
  return [...shown, ...(answer !== undefined ? ['', answer] : [])].join('\n');
}

export async function jobs(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const { values, positionals } = parse('jobs', argv, ['limit', 'state', 'model']);
  if (positionals.length > 0) usageError('jobs', `unexpected ${positionals.join(' ')}`);
  const limit = values.limit === undefined ? undefined : Number(values.limit);
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1 && limit <= 200)) usageError('jobs', `--limit must be a whole number from 1 to 200, got "${values.limit}"`);
  const api = clientFromEnv(env, 'hydra jobs');
  const json = values.json === true;
  const list = await attempt('jobs', api, json, () =>
    api.jobs({ ...(limit !== undefined ? { limit } : {}), ...(typeof values.state === 'string' ? { state: values.state } : {}), ...(typeof values.model === 'string' ? { model: values.model } : {}) }),
  );
  if (list) process.stdout.write(json ? `${JSON.stringify({ jobs: list })}\n` : `${renderJobs(list, Date.now())}\n`);
}

export async function job(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const { values, positionals } = parse('job', argv);
  const id = idOf('job', positionals);
  const api = clientFromEnv(env, 'hydra job');
  const json = values.json === true;
  const view = await attempt('job', api, json, () => api.job(id));
  if (view) process.stdout.write(json ? `${JSON.stringify(view)}\n` : `${renderJob(view)}\n`);
}

export async function cancel(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const { values, positionals } = parse('cancel', argv);
  const id = idOf('cancel', positionals);
  const api = clientFromEnv(env, 'hydra cancel');
  const json = values.json === true;
  const a = await attempt('cancel', api, json, () => api.cancel(id));
  if (a) process.stdout.write(json ? `${JSON.stringify(a)}\n` : a.state === 'cancelled' ? `cancelled ${id}\n` : `cancelling ${id}: its node is aborting the request\n`);
}
