// `hydra run -m MODEL [--type T] [--system S] [--priority P] [--json] "prompt"`: submit one job through the API and
// stream its tokens to stdout as they arrive; Ctrl-C cancels the job on its node (DELETE) and exits 130 once the API
// has confirmed the end. Exit codes: 0 done, 1 the job failed (or the API refused it), 2 usage, 130 cancelled.
import { parseArgs } from 'node:util';
import type { Hydra, JobRequest, JobStreamEvent, JobView } from '../../libs/client/index.js';
import { clientFromEnv, describeFailure, failureJson, isReported } from './client.js';

const USAGE = 'usage: hydra run -m MODEL [--type generate|chat|embed] [--system S] [--priority 1-10] [-o KEY=VALUE]... [--json] ["prompt" | < prompt.txt]';
const TYPES = ['generate', 'chat', 'embed'] as const;
/** How long to wait, after Ctrl-C, for the job's end to show in its stream before exiting anyway (ms). */
const CANCEL_CONFIRM_MS = 10_000;
const EXIT_INTERRUPTED = 130;

interface RunOptions {
  model: string;
  type: (typeof TYPES)[number];
  system?: string;
  priority?: number;
  /** Inference options (`options` of the request: temperature, num_predict, ...). */
  options?: Record<string, unknown>;
  json: boolean;
  prompt?: string;
}

function options(argv: string[]): RunOptions {
  const fail = (msg: string): never => {
    process.stderr.write(`hydra run: ${msg}\n${USAGE}\n`);
    process.exit(2);
  };
  let parsed: { values: { model?: string; type?: string; system?: string; priority?: string; option?: string[]; json?: boolean }; positionals: string[] };
  try {
    parsed = parseArgs({
      args: argv,
      options: { model: { type: 'string', short: 'm' }, type: { type: 'string', short: 't' }, system: { type: 'string', short: 's' }, priority: { type: 'string', short: 'p' }, option: { type: 'string', short: 'o', multiple: true }, json: { type: 'boolean' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    return fail((e as Error).message);
  }
  const v = parsed.values;
  if (!v.model) return fail('name the model with -m, e.g. hydra run -m qwen3:4b "why is the sky blue?"');
  const type = (v.type ?? 'generate') as RunOptions['type'];
  if (!TYPES.includes(type)) return fail(`--type must be one of ${TYPES.join(', ')}, got "${v.type}"`);
  const priority = v.priority === undefined ? undefined : Number(v.priority);
  if (priority !== undefined && !(Number.isInteger(priority) && priority >= 1 && priority <= 10)) return fail(`--priority must be a whole number from 1 to 10, got "${v.priority}"`);
  let options: Record<string, unknown> | undefined;
  for (const kv of v.option ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) return fail(`-o takes KEY=VALUE (e.g. -o temperature=0), got "${kv}"`);
    options ??= {};
    options[kv.slice(0, eq)] = valueOf(kv.slice(eq + 1));
  }
  const prompt = parsed.positionals.length > 0 ? parsed.positionals.join(' ') : undefined;
  return { model: v.model, type, json: v.json === true, ...(options ? { options } : {}), ...(v.system !== undefined ? { system: v.system } : {}), ...(priority !== undefined ? { priority } : {}), ...(prompt !== undefined ? { prompt } : {}) };
}

/** An option's value: JSON when it reads as JSON (numbers, booleans, arrays), else the text itself. */
function valueOf(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

async function readStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) text += String(chunk);
  return text.replace(/\n$/, '');
}

function requestOf(o: RunOptions, prompt: string): JobRequest {
  const common = { model: o.model, ...(o.priority !== undefined ? { priority: o.priority } : {}), ...(o.options ? { options: o.options as JobRequest['options'] } : {}) };
  if (o.type === 'chat') return { type: 'chat', ...common, messages: [...(o.system !== undefined ? [{ role: 'system' as const, content: o.system }] : []), { role: 'user' as const, content: prompt }] };
  if (o.type === 'embed') return { type: 'embed', ...common, input: prompt };
  return { type: 'generate', ...common, prompt, ...(o.system !== undefined ? { system: o.system } : {}) };
}

/** The answer text of a finished view (or embeddings as JSON). */
const answerOf = (v: JobView): string => v.result?.response ?? v.result?.message?.content ?? (v.result?.embeddings ? JSON.stringify(v.result.embeddings) : '');

/** Writes what the job produces: the text itself, or (--json) one JSON object per event. */
class Output {
  private lastChar = '\n';
  /** After Ctrl-C: tokens still in flight are not printed (the user asked to stop). */
  muted = false;
  constructor(private readonly json: boolean) {}
  event(e: Record<string, unknown>): void {
    if (this.json) process.stdout.write(`${JSON.stringify(e)}\n`);
  }
  text(t: string): void {
    if (this.json || this.muted || !t) return;
    process.stdout.write(t);
    this.lastChar = t.at(-1)!;
  }
  note(t: string): void {
    if (!this.json) process.stderr.write(`${this.lastChar === '\n' ? '' : '\n'}${t}\n`);
  }
  end(): void {
    if (!this.json && this.lastChar !== '\n') process.stdout.write('\n');
    this.lastChar = '\n';
  }
}

export async function run(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const o = options(argv);
  let prompt = o.prompt;
  if (prompt === undefined) {
    if (process.stdin.isTTY) {
      process.stderr.write(`hydra run: give the prompt as an argument or on stdin\n${USAGE}\n`);
      process.exit(2);
    }
    prompt = await readStdin();
  }
  const api = clientFromEnv(env, 'hydra run');
  const out = new Output(o.json);
  const fail = (e: unknown): void => {
    if (!isReported(e)) throw e;
    if (o.json) out.event({ event: 'error', ...failureJson(e, api) });
    process.stderr.write(`hydra run: ${describeFailure(e, api)}\n`);
    process.exitCode = 1;
  };
  try {
    process.exitCode = await runJob(api, requestOf(o, prompt), out);
  } catch (e) {
    fail(e);
  }
}

/** Submit, stream to the end, and say how it ended: 0 done, 1 failed, 130 cancelled by Ctrl-C. */
async function runJob(api: Hydra, req: JobRequest, out: Output): Promise<number> {
  let interrupted = false;
  let id: string | undefined;
  /** Aborts the stream when the cancelled job's end did not show in time, or on a second Ctrl-C. */
  const giveUp = new AbortController();
  let cancelling: Promise<void> | undefined;
  const cancel = (jobId: string) => {
    cancelling ??= api.cancel(jobId).then(
      (a) => {
        out.event({ event: 'cancel', ...a });
        out.note(`hydra run: ${a.state === 'cancelled' ? `job ${jobId} cancelled` : `cancelling job ${jobId} (its node is aborting the request)`}`);
        setTimeout(() => giveUp.abort(new Error('no end seen after the cancel')), CANCEL_CONFIRM_MS).unref();
      },
      (e: unknown) => {
        out.note(`hydra run: could not cancel job ${jobId}: ${isReported(e) ? describeFailure(e, api) : String(e)}`);
        giveUp.abort(e);
      },
    );
  };
  const onSigint = () => {
    if (interrupted) return giveUp.abort(new Error('interrupted twice'));
    interrupted = true;
    out.muted = true;
    if (id) cancel(id);
  };
  process.on('SIGINT', onSigint);
  try {
    const a = await api.submit(req);
    if (a.status === 200) {
      // A cache hit (no job ran), or an embed that finished within the submit.
      out.event({ event: 'done', id: a.id, result: a.result, cached: a.cached === true });
      out.text(answerOf(a));
      out.end();
      return 0;
    }
    id = a.id;
    out.event({ event: 'submitted', id: a.id, queue: a.queue, state: a.state });
    if (interrupted) cancel(id);
    try {
      for await (const e of api.stream(id, { signal: giveUp.signal })) {
        const code = shown(e, out, id);
        if (code !== undefined) {
          if (cancelling) await cancelling;
          return interrupted ? EXIT_INTERRUPTED : code;
        }
      }
    } catch (e) {
      // Ctrl-C and the stream gave up (no end in time, or a second Ctrl-C): the cancel was still asked for.
      if (interrupted && giveUp.signal.aborted) return EXIT_INTERRUPTED;
      throw e;
    }
    return 1;
  } finally {
    process.off('SIGINT', onSigint);
    if (interrupted && !id) process.exitCode = EXIT_INTERRUPTED;
  }
}

/** Show one stream event; returns the exit code when it was the last one. */
function shown(e: JobStreamEvent, out: Output, id: string): number | undefined {
  out.event(e as unknown as Record<string, unknown>);
  switch (e.event) {
    case 'token':
      out.text(e.text);
      return undefined;
    case 'thinking':
      if (e.text) out.note(`[thinking] ${e.text.trim()}`);
      return undefined;
    case 'retry':
      out.note(`hydra run: attempt ${e.data.attempt ?? '?'} of job ${id} failed on ${e.data.node_id ?? 'its node'}${e.data.error ? ` (${e.data.error.message})` : ''}; it runs again, the answer may repeat`);
      return undefined;
    case 'requeued':
      out.note(`hydra run: job ${id} went back to its queue (${e.data.reason ?? 'its node drained'}); it starts over`);
      return undefined;
    case 'done':
      if (e.result?.embeddings) out.text(JSON.stringify(e.result.embeddings));
      out.end();
      return 0;
    case 'error':
      out.end();
      out.note(`hydra run: job ${id} ${e.error.code === 'cancelled' ? 'was cancelled' : 'failed'}: ${e.error.message} [${e.error.code}]`);
      return 1;
    default:
      return undefined;
  }
}
