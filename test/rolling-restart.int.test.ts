// A rolling restart of two API replicas under steady load, all real processes (a simulated node, a worker, two
// `hydra api` on two ports) and clients that fail over between the ports as a load balancer would: SIGTERM replica A,
// restart it, then B. Every job an API accepted completes once and its client gets the whole answer (wait) or the
// whole token stream (resumed on the other replica with Last-Event-ID); no job is cancelled; each replica drains and
// exits within SHUTDOWN_GRACE_MS.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { HYDRA_BIN, testEnv } from './support/cluster.js';
import { FailoverClient, type Followed } from './support/failover-client.js';
import { freePort, waitFor } from './support/wait.js';

const MODEL = 'roll:1b';
const GRACE_MS = 10_000;
// The simulated node decodes a 1 GB model at 25 × 8 = 200 tokens/s: load jobs take ~1 s, the probes' jobs ~3 s, so
// work is always in flight when a replica gets SIGTERM, and all of it ends well within the grace.
const LOAD_TOKENS = 200;
const LONG_TOKENS = 600;
// A reader that leaves cancels its job after this (ms); the stream handed over at SIGTERM reconnects later than that,
// while the draining replica still runs (its long wait), so a handover counted as leaving would cancel the job.
const RECONNECT_GRACE_MS = 1000;
const SLOW_RECONNECT_MS = 2000;
const WAIT_CLIENTS = 4;
const STREAM_CLIENTS = 3;

interface Proc {
  name: string;
  proc: ChildProcess;
  output(): string;
  alive(): boolean;
}

function hydra(name: string, args: string[], env: Record<string, string>): Proc {
  let out = '';
  const proc = spawn(process.execPath, [HYDRA_BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return { name, proc, output: () => out, alive: () => proc.exitCode === null && proc.signalCode === null };
}

/** pino lines of a process with this message. */
const logLines = (p: Proc, msg: string): Record<string, unknown>[] =>
  p
    .output()
    .split('\n')
    .filter((l) => l.includes(`"msg":"${msg}"`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

const job = (prompt: string, tokens: number, wait: boolean) => ({ type: 'generate', model: MODEL, prompt, wait, cache: false, options: { num_predict: tokens, sim_answer_tokens: tokens } });

/**
 * A request whose head is on the wire but not finished: the connection is busy (not idle), so a drain cannot close
 * it; `finish` sends the rest, as a client on a kept-alive connection sending its next request mid-drain.
 */
async function openRequest(port: number, head: string): Promise<{ finish(rest: string): Promise<{ status: number; headers: string; body: string }> }> {
  const s = connect(port, '127.0.0.1');
  await new Promise<void>((res, rej) => s.once('connect', res).once('error', rej));
  let raw = '';
  s.on('data', (d: Buffer) => (raw += d.toString()));
  const closed = new Promise<void>((res) => s.once('close', () => res()));
  s.on('error', () => {});
  s.write(head);
  return {
    async finish(rest) {
      if (!s.destroyed) s.write(rest);
      await Promise.race([closed, new Promise((r) => setTimeout(r, 10_000))]);
      s.destroy();
      const [headers = '', body = ''] = raw.split('\r\n\r\n');
      return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(headers)?.[1] ?? 0), headers, body };
    },
  };
}

interface Answer {
  id: string;
  kind: 'wait' | 'stream';
  text: string;
  url: string;
}

interface RestartFigures {
  replica: string;
  in_flight_at_sigterm: number;
  drain_ms: number;
  exit_ms: number;
  exit_code: number | null;
}

describe('API replicas drain on SIGTERM', () => {
  const redisUrl = inject('redisUrl');
  const prefix = `{r${randomBytes(3).toString('hex')}}`;
  const redis = new Redis(redisUrl);
  // HEARTBEAT_MS 3000: the worker's probe of the node may take up to 3 s (a 1 s probe timing out on a loaded 2-core
  // machine publishes the node without its models, and submits meanwhile get 422: not what these tests are about).
  const env = { ...testEnv(prefix, redisUrl), HEARTBEAT_MS: '3000', LOCALITY_WAIT_MS: '0', BEST_FIT_WAIT_MS: '0', STREAM_RECONNECT_GRACE_MS: String(RECONNECT_GRACE_MS) };
  const procs: Proc[] = [];
  let sim: Proc;
  let worker: Proc;
  beforeAll(async () => {
    const simPort = await freePort();
    sim = hydra('sim', ['sim', '--port', String(simPort), '--vram-gb', '24', '--models', `${MODEL}=1`, '--parallel', '16', '--tokens-per-second', '25', '--load-fixed-ms', '0', '--load-ms-per-gb', '0', '--batch-exponent', '1', '--log-level', 'warn'], {});
    worker = hydra('worker', ['worker'], { ...env, BACKEND: 'ollama', OLLAMA_URL: `http://127.0.0.1:${simPort}`, NODE_ID: 'roll-node', NODE_VRAM_GB: '24', NUM_PARALLEL: '16', WORKER_CONCURRENCY: '16' });
    procs.push(sim, worker);
  });
  afterAll(async () => {
    await Promise.all(
      procs.filter((p) => p.alive()).map(async (p) => {
        const exited = new Promise((r) => p.proc.once('exit', r));
        p.proc.kill('SIGKILL');
        await exited;
      }),
    );
    const keys = await redis.keys(`${prefix}*`);
    for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
    redis.disconnect();
  });

  /** `hydra api` on `port`, once it is ready and sees the node serving the model. */
  const startApi = async (name: string, port: number, graceMs: number): Promise<Proc> => {
    const p = hydra(name, ['api'], { ...env, PORT: String(port), SHUTDOWN_GRACE_MS: String(graceMs) });
    procs.push(p);
    const url = `http://127.0.0.1:${port}`;
    type NodeList = { nodes: { id: string; healthy: boolean; models_available: string[] }[] };
    await waitFor(
      async () => {
        const dead = [sim, worker, p].find((x) => !x.alive());
        if (dead) throw new Error(`${dead.name} exited: ${dead.output().slice(-2000)}`);
        if ((await fetch(`${url}/readyz`).catch(() => null))?.status !== 200) return false;
        return ((await (await fetch(`${url}/v1/nodes`)).json()) as NodeList).nodes.some((n) => n.id === 'roll-node' && n.healthy && n.models_available.includes(MODEL));
      },
      { timeoutMs: 40_000, intervalMs: 100, what: `${name} ready, with the node serving ${MODEL}` },
    );
    return p;
  };

  it('a rolling restart of two replicas under load answers every accepted job, cancels none, exits within the grace', { timeout: 240_000 }, async () => {
    const ports = [await freePort(), await freePort()];
    const urls = ports.map((p) => `http://127.0.0.1:${p}`);
    const apis = await Promise.all([startApi('api-A1', ports[0]!, GRACE_MS), startApi('api-B1', ports[1]!, GRACE_MS)]);
    const t0 = Date.now();
    const at = () => `t+${Date.now() - t0} ms`;

    // ---- steady load: wait clients and stream clients, round-robin over both replicas, failing over ----
    const client = new FailoverClient(urls);
    const answers: Answer[] = [];
    const problems: string[] = [];
    let running = true;
    let seq = 0;
    const waitLoop = async () => {
      while (running) {
        const n = seq++;
        const r = await client.post('/v1/jobs', job(`wait ${n} ${randomBytes(3).toString('hex')}`, LOAD_TOKENS, true));
        if (r.status === 200 && r.body?.state === 'completed') answers.push({ id: r.body.id, kind: 'wait', text: r.body.result.response, url: r.url });
        else problems.push(`${at()} wait ${n}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
      }
    };
    const followed: Followed[] = [];
    const stream = async (prompt: string, tokens: number, o: { first?: number; onToken?: (url: string) => void; reconnectAfterMs?: number } = {}): Promise<string | null> => {
      const r = await client.post('/v1/jobs', job(prompt, tokens, false), o.first);
      if (r.status !== 202 || typeof r.body?.id !== 'string') {
        problems.push(`${at()} stream submit ${prompt}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
        return null;
      }
      const id = r.body.id as string;
      const f = await client.follow(id, o);
      followed.push(f);
      problems.push(...f.problems);
      if (f.result?.response === undefined) problems.push(`stream ${id}: ended without its result (${JSON.stringify(f.error)})`);
      else if (f.text !== f.result.response) problems.push(`stream ${id}: tokens ${JSON.stringify(f.text.slice(0, 80))} are not the result ${JSON.stringify(String(f.result.response).slice(0, 80))}`);
      else answers.push({ id, kind: 'stream', text: f.text, url: f.servedBy.at(-1) ?? '' });
      return id;
    };
    const streamLoop = async () => {
      while (running) await stream(`stream ${seq++} ${randomBytes(3).toString('hex')}`, LOAD_TOKENS);
    };
    const loops = [...Array.from({ length: WAIT_CLIENTS }, waitLoop), ...Array.from({ length: STREAM_CLIENTS }, streamLoop)];
    const answeredBy = (url: string, since: number) => answers.slice(since).filter((a) => a.url === url).length;
    await waitFor(() => answeredBy(urls[0]!, 0) >= 4 && answeredBy(urls[1]!, 0) >= 4, { timeoutMs: 40_000, intervalMs: 100, what: 'steady load on both replicas' });

    // ---- restart each replica in turn ----
    const figures: RestartFigures[] = [];
    const restart = async (i: number) => {
      const victim = apis[i]!;
      const other = (i + 1) % 2;
      // Work this replica certainly holds when the signal comes: a wait and a stream, both running on the node.
      const longWait = fetch(`${urls[i]}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(job(`long wait ${i}`, LONG_TOKENS, true)), signal: AbortSignal.timeout(60_000) }).then(
        async (r) => ({ status: r.status, body: (await r.json()) as any }),
        (e: Error) => ({ status: 0, body: { error: e.message } as any }),
      );
      let streaming!: () => void;
      const firstToken = new Promise<void>((r) => (streaming = r));
      const longStream = stream(`long stream ${i}`, LONG_TOKENS, { first: i, onToken: (url) => url === urls[i] && streaming(), reconnectAfterMs: SLOW_RECONNECT_MS });
      // Requests that reach the replica mid-drain on connections it already had: readiness, and a new job.
      const probe = await openRequest(ports[i]!, 'GET /readyz HTTP/1.1\r\nHost: hydra\r\n');
      const body = JSON.stringify(job(`mid-drain ${i}`, LOAD_TOKENS, true));
      const submit = await openRequest(ports[i]!, `POST /v1/jobs HTTP/1.1\r\nHost: hydra\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`);
      await firstToken;

      console.log(`${at()} SIGTERM ${victim.name}`);
      const sigterm = Date.now();
      const exited = new Promise<number | null>((r) => victim.proc.once('exit', (code) => r(code)));
      victim.proc.kill('SIGTERM');
      await waitFor(() => logLines(victim, 'api draining').length > 0 || !victim.alive(), { timeoutMs: 5000, intervalMs: 20, what: `${victim.name} to start draining` });
      const [ready, refused] = await Promise.all([probe.finish('\r\n'), submit.finish(`\r\n${body}`)]);
      if (ready.status !== 503 || !/"draining":true/.test(ready.body)) problems.push(`${victim.name} readiness mid-drain: ${ready.status} ${ready.body}`);
      if (refused.status !== 503 || !/"draining":true/.test(refused.body) || !/retry-after: 1/i.test(refused.headers) || !/connection: close/i.test(refused.headers)) {
        problems.push(`${victim.name} new job mid-drain: ${refused.status} ${refused.headers} ${refused.body}`);
      }
      const code = await exited;
      const exitMs = Date.now() - sigterm;
      const drained = logLines(victim, 'api drained')[0];
      figures.push({ replica: victim.name, in_flight_at_sigterm: Number(logLines(victim, 'api draining')[0]?.in_flight ?? -1), drain_ms: Number(drained?.ms ?? -1), exit_ms: exitMs, exit_code: code });

      const w = await longWait;
      if (w.status !== 200 || w.body?.state !== 'completed') problems.push(`${victim.name} long wait in flight at SIGTERM: ${w.status} ${JSON.stringify(w.body).slice(0, 300)}`);
      else answers.push({ id: w.body.id, kind: 'wait', text: w.body.result.response, url: urls[i]! });
      const sid = await longStream;
      const handed = followed.find((f) => f.servedBy[0] === urls[i] && f.handoffs > 0 && f.servedBy.includes(urls[other]!));
      if (!sid || !handed) problems.push(`${victim.name}: the stream open at SIGTERM was not handed over to the other replica`);

      const since = answers.length;
      apis[i] = await startApi(`api-${'AB'[i]}2`, ports[i]!, GRACE_MS);
      console.log(`${at()} ${apis[i]!.name} ready`);
      await waitFor(() => answeredBy(urls[i]!, since) >= 3, { timeoutMs: 30_000, intervalMs: 100, what: `load on the restarted ${apis[i]!.name}` });
    };
    await restart(0);
    await restart(1);
    running = false;
    await Promise.all(loops);

    // ---- the tally ----
    const ids = answers.map((a) => a.id);
    await waitFor(() => ids.every((id) => logLines(worker, 'job completed').some((l) => l.jobId === id)), { timeoutMs: 5000, what: 'the worker log to show every answered job' }).catch(() => undefined);
    const completions = new Map<string, number>();
    for (const l of logLines(worker, 'job completed')) completions.set(String(l.jobId), (completions.get(String(l.jobId)) ?? 0) + 1);
    const accepted: string[] = [];
    for (const key of await redis.keys(`${prefix}:jobq:*`)) accepted.push(key.slice(`${prefix}:jobq:`.length));
    const cancelled = await redis.keys(`${prefix}:cancel:*`);
    const answered = new Set(ids);
    const lost = accepted.filter((id) => !answered.has(id));
    const wrong: string[] = [];
    for (const a of answers) {
      const v = (await (await fetch(`${urls[0]}/v1/jobs/${a.id}`)).json()) as { state: string; result?: { response?: string } };
      if (v.state !== 'completed' || v.result?.response !== a.text) wrong.push(`${a.kind} ${a.id}: ${v.state}, client got ${a.text.length} chars, job has ${v.result?.response?.length ?? 'none'}`);
    }
    const summary = {
      accepted: accepted.length,
      answered: answers.length,
      waits: answers.filter((a) => a.kind === 'wait').length,
      streams: answers.filter((a) => a.kind === 'stream').length,
      completed_once: ids.filter((id) => completions.get(id) === 1).length,
      completed_twice: [...completions.values()].filter((n) => n > 1).length,
      cancelled: cancelled.length,
      answers_lost: lost.length,
      failed: logLines(worker, 'job failed').length,
      ...client.counts,
      restarts: figures,
    };
    console.log(`rolling restart: ${JSON.stringify(summary)}`);
    if (problems.length > 0) console.log(`worker warnings:\n${worker.output().split('\n').filter((l) => /"level":[45]0/.test(l)).slice(0, 20).join('\n')}`);

    expect(problems).toEqual([]);
    expect(wrong).toEqual([]);
    expect(lost).toEqual([]);
    expect(cancelled).toEqual([]);
    expect(summary.failed).toBe(0);
    expect(summary.completed_twice).toBe(0);
    expect(summary.completed_once).toBe(answers.length);
    expect(accepted.length).toBe(answers.length);
    for (const f of figures) {
      expect(f.in_flight_at_sigterm, `${f.replica} had work in flight at SIGTERM`).toBeGreaterThan(0);
      expect(f.exit_code, `${f.replica} exit code`).toBe(0);
      expect(f.drain_ms, `${f.replica} drained before the grace ran out`).toBeGreaterThan(0);
      expect(f.drain_ms).toBeLessThan(GRACE_MS);
      expect(f.exit_ms, `${f.replica} exited within the grace`).toBeLessThan(GRACE_MS + 2000);
    }
    expect(client.counts.handoffs).toBeGreaterThanOrEqual(2);
  });
  it('past SHUTDOWN_GRACE_MS: a job wait and a workflow wait are answered 202 with their links, an Ollama stream is cut, nothing is cancelled', { timeout: 120_000 }, async () => {
    const grace = 2000;
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const api = await startApi('api-short-grace', port, grace);
    // ~8 s each on the node: both outlast the 2 s grace.
    const tokens = 1600;
    const wait = fetch(`${url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(job('past the grace: wait', tokens, true)) }).then(
      async (r) => ({ status: r.status, body: (await r.json()) as any, at: Date.now() }),
      (e: Error) => ({ status: 0, body: { error: e.message } as any, at: Date.now() }),
    );
    const wfBody = { name: 'past the grace', wait: true, steps: [{ id: 'a', model: MODEL, prompt: 'past the grace: workflow', options: { num_predict: tokens, sim_answer_tokens: tokens } }] };
    const wfWait = fetch(`${url}/v1/workflows`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(wfBody) }).then(
      async (r) => ({ status: r.status, body: (await r.json()) as any, at: Date.now() }),
      (e: Error) => ({ status: 0, body: { error: e.message } as any, at: Date.now() }),
    );
    const ollama = await fetch(`${url}/api/generate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, prompt: 'past the grace: ollama', options: { num_predict: tokens, sim_answer_tokens: tokens } }) });
    expect(ollama.status).toBe(200);
    const ollamaId = ollama.headers.get('x-hydra-job-id');
    expect(ollamaId).toBeTruthy();
    // Read the NDJSON until the connection ends: its last line tells whether the answer was whole.
    const lines = (async () => {
      const out: any[] = [];
      let buf = '';
      try {
        for await (const chunk of ollama.body as unknown as AsyncIterable<Uint8Array>) {
          buf += Buffer.from(chunk).toString();
          for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
            out.push(JSON.parse(buf.slice(0, i)));
            buf = buf.slice(i + 1);
          }
        }
      } catch {
        // cut: what came is what the client has
      }
      return out;
    })();
    await waitFor(async () => ((await (await fetch(`${url}/v1/jobs/${ollamaId}`)).json()) as { state: string }).state === 'active', { timeoutMs: 10_000, what: 'the Ollama job running' });

    const sigterm = Date.now();
    const exited = new Promise<number | null>((r) => api.proc.once('exit', (code) => r(code)));
    api.proc.kill('SIGTERM');
    const w = await wait;
    const wf = await wfWait;
    const code = await exited;
    const exitMs = Date.now() - sigterm;
    const got = await lines;
    console.log(`past the grace: ${JSON.stringify({ wait_status: w.status, wait_answered_ms: w.at - sigterm, workflow_status: wf.status, workflow_answered_ms: wf.at - sigterm, exit_ms: exitMs, ollama_lines: got.length, ollama_done: got.at(-1)?.done === true })}`);

    // The wait: 202 with the links, a little before the grace ends; the Ollama answer: cut (no final line).
    expect(w.status).toBe(202);
    expect(w.body).toMatchObject({ status_url: `/v1/jobs/${w.body.id}`, stream_url: `/v1/jobs/${w.body.id}/stream` });
    expect(w.body.note).toMatch(/SHUTDOWN_GRACE_MS/);
    expect(w.at - sigterm).toBeLessThan(grace);
    // The workflow wait likewise (before the fix the connection was cut at exit: status 0).
    expect(wf.status, JSON.stringify(wf.body)).toBe(202);
    expect(wf.body).toMatchObject({ status_url: `/v1/workflows/${wf.body.id}`, stream_url: `/v1/workflows/${wf.body.id}/stream` });
    expect(wf.body.note).toMatch(/SHUTDOWN_GRACE_MS/);
    expect(wf.at - sigterm).toBeLessThan(grace);
    expect(got.length).toBeGreaterThan(0);
    expect(got.at(-1)?.done).not.toBe(true);
    expect(code).toBe(0);
    expect(exitMs).toBeLessThan(grace + 1500);
    expect(logLines(api, 'api drain grace ended with requests still open: exiting')[0]?.left).toBeGreaterThanOrEqual(1);

    // Both jobs run on to their end on the node, and any replica answers about them.
    const other = await startApi('api-after', port, grace);
    for (const id of [w.body.id as string, ollamaId!]) {
      const end = await waitFor(
        async () => {
          const v = (await (await fetch(`${url}/v1/jobs/${id}`)).json()) as { state: string; result?: { response?: string } };
          return ['completed', 'failed', 'cancelled'].includes(v.state) ? v : null;
        },
        { timeoutMs: 30_000, intervalMs: 200, what: `job ${id} to end` },
      );
      expect(end.state, `job ${id}`).toBe('completed');
      expect(await redis.exists(`${prefix}:cancel:${id}`)).toBe(0);
    }
    const wfEnd = await waitFor(
      async () => {
        const v = (await (await fetch(`${url}/v1/workflows/${wf.body.id}`)).json()) as { state: string };
        return ['completed', 'failed', 'cancelled'].includes(v.state) ? v : null;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'the workflow to end' },
    );
    expect(wfEnd.state).toBe('completed');
    other.proc.kill('SIGTERM');
  });
});
