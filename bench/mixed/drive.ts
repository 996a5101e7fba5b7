// The open-loop client: sends each request at its arrival time whatever is still running, streams /api/chat, and
// records submit, first token, end, tokens, where it ran, or why it failed.
import { Agent, request } from 'undici';
import { NGINX_UPSTREAM } from './nginx.js';
import { ROUTED_BY } from './routers.js';
import type { WorkRequest } from './workload.js';

export interface Outcome {
  i: number;
  model: string;
  numPredict: number;
  ok: boolean;
  /** HTTP status, null when the connection failed. */
  status: number | null;
  /** Why it failed, as a class: status and the error text with numbers and ids taken out. */
  error?: string;
  /** Wall-clock ms after the run's start. */
  submitMs: number;
  firstTokenMs?: number;
  endMs?: number;
  /** Output tokens (eval_count of the final line). */
  tokens?: number;
  /** Node id or upstream address that served it, when the router says. */
  node?: string;
  /** Hydra's job id (x-hydra-job-id). */
  jobId?: string;
  /** Hydra: submit → a worker took the job, wall ms (from the job record). */
  queuedMs?: number;
}

/** Numbers, ids and addresses out, so errors of one kind count together. */
export function errorClass(text: string): string {
  return text
    .replace(/"[^"]*"|'[^']*'/g, '"…"')
    .replace(/[0-9a-f]{8}-[0-9a-f-]{27}/gi, 'ID')
    .replace(/\d+(\.\d+)?/g, 'N')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 100);
}

interface ChatLine {
  message?: { content?: string; thinking?: string };
  done?: boolean;
  eval_count?: number;
  error?: string;
}

export interface DriveOptions {
  url: string;
  requests: readonly WorkRequest[];
  timeScale: number;
  /** Give up on one request after this long (wall ms). */
  maxRequestMs: number;
  /** Called as requests finish (progress). */
  onDone?: (o: Outcome, done: number) => void;
}

/** Sends every request at `atS / timeScale` wall seconds after the start, none waiting for another. */
export async function drive(o: DriveOptions): Promise<{ outcomes: Outcome[]; wallMs: number }> {
  const agent = new Agent({ connections: null, headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: 30_000 });
  const t0 = performance.now();
  const now = (): number => performance.now() - t0;
  const outcomes: Outcome[] = [];
  const running: Promise<void>[] = [];
  for (const w of o.requests) {
    const wait = (w.atS * 1000) / o.timeScale - now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    running.push(
      one(o.url, w, agent, now, o.maxRequestMs).then((out) => {
        outcomes.push(out);
        o.onDone?.(out, outcomes.length);
      }),
    );
  }
  await Promise.all(running);
  const wallMs = now();
  await agent.close();
  return { outcomes: outcomes.sort((a, b) => a.i - b.i), wallMs };
}

async function one(url: string, w: WorkRequest, agent: Agent, now: () => number, maxMs: number): Promise<Outcome> {
  const out: Outcome = { i: w.i, model: w.model, numPredict: w.numPredict, ok: false, status: null, submitMs: now() };
  const body = { model: w.model, messages: [{ role: 'user', content: w.prompt }], stream: true, options: { num_predict: w.numPredict, sim_answer_tokens: w.numPredict, temperature: 0.7 } };
  try {
    const r = await request(`${url}/api/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), dispatcher: agent, signal: AbortSignal.timeout(maxMs) });
    out.status = r.statusCode;
    const node = r.headers[ROUTED_BY] ?? r.headers[NGINX_UPSTREAM];
    if (typeof node === 'string') out.node = node;
    const job = r.headers['x-hydra-job-id'];
    if (typeof job === 'string') out.jobId = job;
    if (r.statusCode !== 200) {
      const text = await r.body.text();
      let msg = text;
      try {
        msg = String((JSON.parse(text) as { error?: unknown }).error ?? text);
      } catch {
        /* not JSON */
      }
      out.error = `HTTP ${r.statusCode}: ${errorClass(msg)}`;
      out.endMs = now();
      return out;
    }
    let buf = '';
    let final: ChatLine | undefined;
    r.body.setEncoding('utf8');
    for await (const chunk of r.body) {
      buf += chunk as string;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const text = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!text) continue;
        const line = JSON.parse(text) as ChatLine;
        if (line.error) {
          out.error = `stream error: ${errorClass(line.error)}`;
          continue;
        }
        if (out.firstTokenMs === undefined && (line.message?.content || line.message?.thinking)) out.firstTokenMs = now();
        if (line.done) final = line;
      }
    }
    out.endMs = now();
    if (!out.error && !final) out.error = 'stream ended without a done line';
    if (final && !out.error) {
      out.ok = true;
      out.tokens = final.eval_count ?? 0;
    }
  } catch (e) {
    const err = e as Error & { code?: string; cause?: { code?: string } };
    out.error = err.name === 'TimeoutError' ? `client gave up after ${maxMs} ms` : `connection: ${err.code ?? err.cause?.code ?? errorClass(err.message)}`;
    out.endMs = now();
  }
  return out;
}
