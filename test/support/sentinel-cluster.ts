// Hydra on a Sentinel group (or another replicated Redis: a Redis Cluster), real processes: a worker and two APIs (one
// with REDIS_MIN_REPLICAS_ACK, one without) in front of a simulated node (in this process: one child fewer to start on
// 2 cores), steady clients, and the tally of a failover (accepted / completed / lost / completed twice, time until jobs
// flow again). Shared by test/sentinel.int.test.ts, test/redis-cluster.int.test.ts and bench/sentinel-failover.bench.ts.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createSimNode, type SimNode } from '../../apps/node-sim/sim-server.js';
import { startSentinelGroup, type GroupOptions, type SentinelGroup } from './redis-sentinel.js';
import { freePort, waitFor } from './wait.js';

const HYDRA_BIN = fileURLToPath(new URL('../../bin/hydra.mjs', import.meta.url));
export const MODEL = 'sentinel:1b';

export interface HydraProc {
  name: string;
  proc: ChildProcess;
  pid: number;
  output(): string;
  alive(): boolean;
}

export interface Api extends HydraProc {
  url: string;
}

/** A replicated Redis that Hydra can be pointed at: its env, and how to stop it. */
export interface ReplicatedRedis {
  env: Record<string, string>;
  /** Resolves once it can fail over (the sentinels see each other); none: at once. */
  waitForHealthy?(): Promise<unknown>;
  stop(): Promise<void>;
}

export interface HydraOn<G extends ReplicatedRedis> {
  group: G;
  prefix: string;
  /** REDIS_MIN_REPLICAS_ACK=1, and without it. */
  ack: Api;
  plain: Api;
  worker: HydraProc;
  sim: SimNode;
  /** The Hydra processes (worker and APIs). */
  all(): HydraProc[];
  /** Completions per job id, from the worker's "job completed" log lines (counted outside Redis: a lost write cannot hide one). */
  completions(): Map<string, number>;
  stop(): Promise<void>;
}

export type HydraOnSentinel = HydraOn<SentinelGroup>;

function hydra(name: string, args: string[], env: Record<string, string>): HydraProc {
  let out = '';
  const proc = spawn(process.execPath, [HYDRA_BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return { name, proc, pid: proc.pid ?? -1, output: () => out, alive: () => proc.exitCode === null && proc.signalCode === null };
}

const stopProc = async (p: ChildProcess): Promise<void> => {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGKILL');
  await exited;
};

export async function startHydraOnSentinel(o: { group?: GroupOptions; ackTimeoutMs?: number } = {}): Promise<HydraOnSentinel> {
  // The sentinels find each other (a few seconds of hello messages) while the Hydra processes start.
  return startHydraOn(await startSentinelGroup({ ...o.group, noWait: true }), o);
}

/** Hydra's processes on `group` (stopped with them); `env` is added to every process's environment. */
export async function startHydraOn<G extends ReplicatedRedis>(group: G, o: { ackTimeoutMs?: number; env?: Record<string, string> } = {}): Promise<HydraOn<G>> {
  const prefix = `{s${randomBytes(3).toString('hex')}}`;
  const env: Record<string, string> = {
    ...group.env,
    QUEUE_PREFIX: prefix,
    HEARTBEAT_MS: '1000',
    POLL_MS: '200',
    LOCALITY_WAIT_MS: '0',
    BEST_FIT_WAIT_MS: '0',
    LOCK_DURATION_MS: '6000',
    STALLED_INTERVAL_MS: '1000',
    BACKOFF_MS: '100',
    LOG_LEVEL: 'warn',
    ...o.env,
  };
  const [ackPort, plainPort] = [await freePort(), await freePort()];
  // 25 tokens/s for a 1 GB model is 200 tokens/s: a 10-token job takes ~50 ms, so some are running at the kill.
  const sim = await createSimNode({ vramGb: 24, models: [{ name: MODEL, sizeGb: 1 }], parallel: 8, tokensPerSecond: 25, loadFixedMs: 0, loadMsPerGb: 0, batchExponent: 1 }).catch(async (e: unknown) => {
    await group.stop();
    throw e;
  });
  const worker = hydra('worker', ['worker'], { ...env, LOG_LEVEL: 'info', BACKEND: 'ollama', OLLAMA_URL: sim.url, NODE_ID: 'sentinel-node', NODE_VRAM_GB: '24', NUM_PARALLEL: '8', WORKER_CONCURRENCY: '8' });
  const api = (name: string, port: number, extra: Record<string, string>): Api => ({ ...hydra(name, ['api'], { ...env, PORT: String(port), ...extra }), url: `http://127.0.0.1:${port}` });
  const ack = api('api-ack', ackPort, { REDIS_MIN_REPLICAS_ACK: '1', REDIS_REPLICA_ACK_TIMEOUT_MS: String(o.ackTimeoutMs ?? 500) });
  const plain = api('api-plain', plainPort, {});
  const all = [worker, ack, plain];
  const h: HydraOn<G> = {
    group,
    prefix,
    ack,
    plain,
    worker,
    sim,
    all: () => all,
    completions() {
      const n = new Map<string, number>();
      for (const line of worker.output().split('\n')) {
        if (!line.includes('"job completed"')) continue;
        const id = (JSON.parse(line) as { jobId?: string }).jobId;
        if (id) n.set(id, (n.get(id) ?? 0) + 1);
      }
      return n;
    },
    async stop() {
      await Promise.all(all.map((p) => stopProc(p.proc)));
      await sim.close().catch(() => undefined);
      await group.stop();
    },
  };
  try {
    const dead = () => all.find((p) => !p.alive());
    const started = async (what: string, check: () => Promise<boolean>) =>
      waitFor(
        async () => {
          const d = dead();
          if (d) throw new Error(`${d.name} exited: ${d.output().slice(-2000)}`);
          return check().catch(() => false);
        },
        { timeoutMs: 40_000, intervalMs: 100, what },
      );
    await Promise.all([ack, plain].map((a) => started(`${a.name} /healthz`, async () => (await fetch(`${a.url}/healthz`)).status === 200)));
    await started('the node in /v1/nodes', async () => ((await (await fetch(`${plain.url}/v1/nodes`)).json()) as { nodes: { id: string; healthy: boolean }[] }).nodes.some((n) => n.id === 'sentinel-node' && n.healthy));
    await group.waitForHealthy?.();
  } catch (e) {
    const tails = all.map((p) => `--- ${p.name}\n${p.output().slice(-1500)}`).join('\n');
    await h.stop();
    throw new Error(`${(e as Error).message}\n${tails}`);
  }
  return h;
}

export interface Submission {
  n: number;
  startedAt: number;
  endedAt: number;
  /** HTTP status; 0 when the request itself failed. */
  status: number;
  id?: string | undefined;
  state?: string | undefined;
  code?: string | undefined;
  message?: string | undefined;
  /** For a refusal by the replica ack: withdrawn, ran, or unknown. */
  withdrawal?: string | undefined;
}

/**
 * `clients` loops against one API, each submitting a short job, then pausing `gapMs`: with `wait` (the default) the
 * answer comes when the job ends (200); without, at once (202), and `tally` polls the job to its end.
 */
export class Load {
  readonly records: Submission[] = [];
  private running = false;
  private loops: Promise<void>[] = [];
  private n = 0;

  constructor(
    private readonly api: Api,
    private readonly o: { clients?: number; gapMs?: number; wait?: boolean } = {},
  ) {}

  start(): void {
    this.running = true;
    this.loops = Array.from({ length: this.o.clients ?? 2 }, () => this.loop());
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** Accepted answers (200 completed, or 202 without wait) of submissions started at or after `t`, in the order they ended. */
  okSince(t: number): Submission[] {
    return this.records.filter((r) => r.startedAt >= t && (r.status === 200 || (r.status === 202 && this.o.wait === false))).sort((a, b) => a.endedAt - b.endedAt);
  }

  private async loop(): Promise<void> {
    while (this.running) {
      this.records.push(await this.submit(this.n++));
      // Pacing the clients (a steady rate on 2 cores), not synchronising.
      await new Promise((r) => setTimeout(r, this.o.gapMs ?? 40));
    }
  }

  private async submit(n: number): Promise<Submission> {
    const startedAt = Date.now();
    const body = { type: 'generate', model: MODEL, prompt: `${this.api.name} ${n} ${randomBytes(4).toString('hex')}`, wait: this.o.wait ?? true, options: { num_predict: 10, sim_answer_tokens: 10 } };
    try {
      const r = await fetch(`${this.api.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(60_000) });
      const b = (await r.json().catch(() => ({}))) as { id?: string; state?: string; error?: { code?: string; message?: string; details?: { job_id?: string; withdrawal?: string } } };
      return { n, startedAt, endedAt: Date.now(), status: r.status, id: b.id ?? b.error?.details?.job_id, state: b.state, code: b.error?.code, message: b.error?.message, withdrawal: b.error?.details?.withdrawal };
    } catch (e) {
      return { n, startedAt, endedAt: Date.now(), status: 0, message: (e as Error).message };
    }
  }
}

export interface Tally {
  submitted: number;
  /** Answered 200 (completed, with its result) or 202 (accepted, to be polled). */
  accepted: number;
  /** Answered 200, or answered 202 and found completed afterwards. */
  completed: number;
  /** Accepted, yet its client can never get a result: gone from Redis, or not finished at the end. */
  lost: number;
  /** Of the lost, those the worker had run (the result existed only on the master that died). */
  lost_after_running: number;
  /** Run to completion more than once (the worker's log). */
  completed_twice: number;
  /** A `wait` answered 404 "no longer exists": the job was added, then vanished in the failover. */
  vanished_while_waiting: number;
  /** 503 answers (Redis switching, or replicas not confirming). */
  refused: number;
  /** Refused by the replica ack, yet it ran (it could not be withdrawn in time). */
  refused_but_ran: number;
  /** Transport failures and other statuses, by status. */
  other: Record<string, number>;
  /** Why submissions were refused: the 503 messages (job ids left out), with counts. */
  refusals: Record<string, number>;
}

/**
 * Wait for every job answered 202 to end (polled), then count. Completed = answered 200 (the client has its result), or
 * found completed; lost = neither; completed twice = more than one completion in the worker's log (counted outside
 * Redis, so a completion the failover erased still counts).
 */
export async function tally(h: Pick<HydraOn<ReplicatedRedis>, 'completions'>, api: Api, records: Submission[], settleMs = 20_000): Promise<{ tally: Tally; lostIds: string[]; twiceIds: string[] }> {
  const accepted = records.filter((r) => (r.status === 200 || r.status === 202) && r.id);
  const vanished = records.filter((r) => r.status === 404 && /no longer exists/.test(r.message ?? ''));
  const finalState = new Map<string, string>();
  const pending = accepted.filter((r) => r.status === 202);
  await waitFor(
    async () => {
      for (const r of pending) {
        if (finalState.has(r.id!)) continue;
        const res = await fetch(`${api.url}/v1/jobs/${r.id}`);
        const state = res.status === 404 ? 'gone' : ((await res.json()) as { state: string }).state;
        if (['completed', 'failed', 'gone', 'cancelled'].includes(state)) finalState.set(r.id!, state);
      }
      return finalState.size === pending.length;
    },
    { timeoutMs: settleMs, intervalMs: 200, what: `the ${pending.length} jobs answered 202 to end` },
  ).catch(() => undefined); // what has not ended by then counts as lost
  // The worker logs a completion right after publishing it: give the last lines a moment to arrive.
  await waitFor(() => accepted.every((r) => r.status !== 200 || (h.completions().get(r.id!) ?? 0) > 0), { timeoutMs: 3000, what: 'the worker log to show every answered job' }).catch(() => undefined);
  const c = h.completions();
  const ran = (id: string | undefined) => id !== undefined && (c.get(id) ?? 0) > 0;
  const done = accepted.filter((r) => r.status === 200 || finalState.get(r.id!) === 'completed');
  const lost = accepted.filter((r) => !done.includes(r));
  const twiceIds = accepted.filter((r) => (c.get(r.id!) ?? 0) > 1).map((r) => r.id!);
  const refused = records.filter((r) => r.status === 503);
  const other: Record<string, number> = {};
  for (const r of records) if (![200, 202, 503].includes(r.status) && !vanished.includes(r)) other[r.status] = (other[r.status] ?? 0) + 1;
  return {
    tally: {
      submitted: records.length,
      accepted: accepted.length,
      completed: done.length,
      lost: lost.length,
      lost_after_running: lost.filter((r) => ran(r.id)).length,
      completed_twice: twiceIds.length,
      vanished_while_waiting: vanished.length,
      refused: refused.length,
      refused_but_ran: refused.filter((r) => ran(r.id)).length,
      other,
      refusals: countBy(refused.map((r) => (r.message ?? '').replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, '<id>'))),
    },
    lostIds: [...lost.map((r) => r.id!), ...vanished.map((r) => /job (\S+) no longer exists/.exec(r.message ?? '')?.[1] ?? `#${r.n}`)],
    twiceIds,
  };
}

const countBy = (xs: string[]): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
};
