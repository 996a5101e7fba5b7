// `hydra pull <model> [--node ID]... [--insecure]`: pull a model onto the cluster's Ollama nodes through the API
// (POST /api/pull at HYDRA_URL), showing each node's progress; exits 0 only when every target node has the model.
import { parseArgs } from 'node:util';
import { ApiError, HydraApi } from './api-client.js';
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

/** The answer's NDJSON lines as they arrive (a last line without its newline included). */
async function* ndjson(body: ReadableStream<Uint8Array>, api: HydraApi): AsyncGenerator<PullLine> {
  const decoder = new TextDecoder();
  let buf = '';
  const parse = (line: string): PullLine => {
    try {
      return JSON.parse(line) as PullLine;
    } catch {
      throw new ApiError(`the server at ${api.base} sent a pull line that is not JSON (${line.slice(0, 80)}): is HYDRA_URL a Hydra API?`, false);
    }
  };
  try {
    for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (line) yield parse(line);
      }
    }
  } catch (e) {
    if (e instanceof ApiError) throw e;
    throw new ApiError(`the Hydra API at ${api.base} broke off the pull (${(e as Error).message}): run the pull again`, true);
  }
  buf += decoder.decode();
  if (buf.trim()) yield parse(buf.trim());
}

export async function pull(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const o = options(argv);
  const api = HydraApi.fromEnv(env, 'hydra pull');
  const tty = process.stdout.isTTY === true;
  const view = new PullProgress({ tty, columns: tty && process.stdout.columns > 0 ? process.stdout.columns : Number.MAX_SAFE_INTEGER });
  try {
    const res = await api.stream('/api/pull', { model: o.model, stream: true, ...(o.nodes.length > 0 ? { nodes: o.nodes } : {}), ...(o.insecure ? { insecure: true } : {}) });
    if (!res.body) throw new ApiError(`the Hydra API at ${api.base} answered the pull with an empty body`, true);
    for await (const line of ndjson(res.body, api)) {
      const out = view.apply(line);
      if (out) process.stdout.write(out);
      if (view.end) break;
    }
    const end = view.end;
    if (!end) throw new ApiError(`the Hydra API at ${api.base} ended the pull before saying how it went (no "success" or error line): run the pull again`, true);
    if (!end.ok) throw new ApiError(end.error, false);
    const on = view.nodeIds;
    process.stdout.write(`pulled ${o.model}${on.length > 0 ? ` on ${on.join(', ')}` : ''}\n`);
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    process.stderr.write(`hydra pull: ${e.message}\n`);
    process.exitCode = 1;
  }
}
