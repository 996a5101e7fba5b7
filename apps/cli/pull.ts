// `hydra pull <model> [--node ID]... [--insecure]`: pull a model onto the cluster's Ollama nodes through the API
// (POST /api/pull at HYDRA_URL), showing each node's progress; exits 0 only when every target node has the model.
import { parseArgs } from 'node:util';
import { HydraConnectionError, type Hydra } from '../../libs/client/index.js';
import { CliError, clientFromEnv, describeFailure, isReported } from './client.js';
import { PullProgress, type PullLine } from './pull-progress.js';

const USAGE = 'usage: hydra pull <model> [--node ID]... [--insecure]';

interface PullOptions {
  model: string;
  /** Target nodes (the API's `nodes`); none: every healthy Ollama node that can hold the model (the API decides). */
  nodes: string[];
  insecure: boolean;
}

function options(argv: string[]): PullOptions {
  const fail = (msg: string): never => {
    process.stderr.write(`hydra pull: ${msg}\n${USAGE}\n`);
    process.exit(2);
  };
  let parsed: { values: { node?: string[]; insecure?: boolean }; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options: { node: { type: 'string', multiple: true }, insecure: { type: 'boolean' } }, allowPositionals: true, strict: true });
  } catch (e) {
    return fail((e as Error).message);
  }
  const [model, ...extra] = parsed.positionals;
  if (!model) return fail('name the model to pull, e.g. hydra pull qwen3:14b');
  if (extra.length > 0) return fail(`one model at a time; got also ${extra.join(' ')}`);
  const nodes = parsed.values.node ?? [];
  if (nodes.some((n) => n === '')) return fail('--node needs a node id (hydra status lists them)');
  return { model, nodes, insecure: parsed.values.insecure === true };
}

/** POST /api/pull's NDJSON lines as they arrive, in the CLI's words when the stream breaks or is not the API's. */
async function* lines(api: Hydra, body: unknown): AsyncGenerator<PullLine> {
  try {
    yield* api.ndjson<PullLine>('POST', '/api/pull', { body });
  } catch (e) {
    if (e instanceof HydraConnectionError && e.problem === 'dropped') throw new CliError(`the Hydra API at ${api.url} broke off the pull (${(e.cause as Error | undefined)?.message ?? e.message}): run the pull again`, true);
    throw e;
  }
}

export async function pull(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const o = options(argv);
  const api = clientFromEnv(env, 'hydra pull');
  const tty = process.stdout.isTTY === true;
  const view = new PullProgress({ tty, columns: tty && process.stdout.columns > 0 ? process.stdout.columns : Number.MAX_SAFE_INTEGER });
  try {
    const body = { model: o.model, stream: true, ...(o.nodes.length > 0 ? { nodes: o.nodes } : {}), ...(o.insecure ? { insecure: true } : {}) };
    for await (const line of lines(api, body)) {
      const out = view.apply(line);
      if (out) process.stdout.write(out);
      if (view.end) break;
    }
    const end = view.end;
    if (!end) throw new CliError(`the Hydra API at ${api.url} ended the pull before saying how it went (no "success" or error line): run the pull again`, true);
    if (!end.ok) throw new CliError(end.error, false);
    const on = view.nodeIds;
    process.stdout.write(`pulled ${o.model}${on.length > 0 ? ` on ${on.join(', ')}` : ''}\n`);
  } catch (e) {
    if (!isReported(e)) throw e;
    process.stderr.write(`hydra pull: ${describeFailure(e, api)}\n`);
    process.exitCode = 1;
  }
}
