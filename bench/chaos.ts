// Chaos run: jobs submitted while workers are SIGKILLed and restarted at random and simulated backends inject faults.
// Every accepted job must end exactly once, completed or failed with a clear error; none lost, none completed twice.
//
//   npm run bench:chaos -- [--jobs 600] [--seconds 60] [--nodes 3] [--seed 7] [--liveness-check-ms 250]
//
// `--liveness-check-ms 0` turns fast failover off (a killed worker's jobs then wait for their locks), for comparison.
//
// Runs on this machine only: a private redis-server, simulated Ollama nodes (labelled simulated), workers and the
// API as child processes.
import { parseArgs } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { mulberry32 } from '../libs/core/index.js';
import { HYDRA_BIN, child, freePort, startRedis, stopChildren, until } from './support.js';

export interface ChaosOptions {
  jobs: number;
  seconds: number;
  nodes: number;
  seed: number;
  /** LIVENESS_CHECK_MS for the workers (0: no fast failover); the default when absent. */
  livenessCheckMs?: number;
  log?: (line: string) => void;
}

export interface ChaosReport {
  jobs: number;
  accepted: number;
  /** Submissions answered with something other than 202, by status (503s were retried). */
  rejected: Record<string, number>;
  rejections: string[];
  completed: number;
  failed: Record<string, number>;
  lost: string[];
  completed_twice: string[];
  unclear_failures: string[];
  kills: number;
  faults: number;
  recoveries: number;
  /** From a SIGKILL to the interrupted job starting again (ms): median and longest over the interrupted jobs. */
  median_recovery_ms: number;
  max_recovery_ms: number;
  /**
   * From a SIGKILL to the interrupted job being back in its queue (ms; its 'waiting' or 'stalled' event): the failover
   * itself, without the wait for a free slot that follows when every node is busy.
   */
  median_requeue_ms: number;
  max_requeue_ms: number;
  seconds: number;
}

const median = (xs: readonly number[]): number => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]! : 0);

/** Seeded, so a run can be repeated. */
const rng = mulberry32;

const PREFIX = '{chaos}';
const MODEL = 'chaos:1b';
/** Failures a user can act on; anything else is unclear. */
const CLEAR = new Set(['backend_unavailable', 'backend_error', 'poison_pill', 'timeout', 'out_of_memory']);

export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  try {
    return await chaosRun(o);
  } finally {
    await stopChildren();
  }
}

async function chaosRun(o: ChaosOptions): Promise<ChaosReport> {
  const log = o.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const rand = rng(o.seed);
  const redisUrl = await startRedis();
  const r = new Redis(redisUrl);
  const sub = new Redis(redisUrl);
  try {
    return await measure(o, log, rand, redisUrl, r, sub);
  } finally {
    sub.disconnect();
    r.disconnect();
  }
}

async function measure(o: ChaosOptions, log: (l: string) => void, rand: () => number, redisUrl: string, r: Redis, sub: Redis): Promise<ChaosReport> {
  const apiPort = await freePort();
  const env = {
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: PREFIX,
    LOG_LEVEL: 'warn',
    PORT: String(apiPort),
    HEARTBEAT_MS: '1000',
    POLL_MS: '200',
    LOCK_DURATION_MS: '3000',
    STALLED_INTERVAL_MS: '1000',
    MAX_STALLED_COUNT: '2',
    JOB_ATTEMPTS: '6',
    BACKOFF_MS: '100',
    BACKOFF_MAX_MS: '1000',
    BREAKER_FAILURES: '5',
    BREAKER_COOLDOWN_MS: '1000',
    EXCLUDE_FAILED_NODE_MS: '1000',
    WORKER_CONCURRENCY: '4',
    ...(o.livenessCheckMs === undefined ? {} : { LIVENESS_CHECK_MS: String(o.livenessCheckMs) }),
  };
  child(process.execPath, [HYDRA_BIN, 'api'], env);
  const sims: string[] = [];
  const workers: { id: string; env: Record<string, string>; proc: ChildProcess }[] = [];
  for (let i = 0; i < o.nodes; i++) {
    const port = await freePort();
    child(process.execPath, [HYDRA_BIN, 'sim', '--port', String(port), '--vram-gb', '24', '--models', `${MODEL}=2`, '--tokens-per-second', '60', '--load-ms-per-gb', '0', '--log-level', 'warn']);
    const url = `http://127.0.0.1:${port}`;
    sims.push(url);
    const wenv = { ...env, BACKEND: 'ollama', OLLAMA_URL: url, NODE_ID: `sim-${i + 1}`, NODE_VRAM_GB: '24' };
    workers.push({ id: `sim-${i + 1}`, env: wenv, proc: child(process.execPath, [HYDRA_BIN, 'worker'], wenv) });
  }
  const api = `http://127.0.0.1:${apiPort}`;
  await until('all nodes registered', async () => ((await (await fetch(`${api}/v1/nodes`)).json()) as { nodes: unknown[] }).nodes.length === o.nodes, 60_000);

  // Count completions per job from the done channel: a job completed twice would be published twice.
  const completions = new Map<string, number>();
  await sub.subscribe(`${PREFIX}:ch:done`);
  sub.on('message', (_ch: string, raw: string) => {
    const m = JSON.parse(raw) as { id: string; state: string };
    if (m.state === 'completed') completions.set(m.id, (completions.get(m.id) ?? 0) + 1);
  });

  const t0 = Date.now();
  const ids: string[] = [];
  let kills = 0;
  let faults = 0;
  const recoveries: number[] = [];
  const requeues: number[] = [];
  const pendingRecoveries: { jobId: string; queue: string; at: number }[] = [];

  /** Jobs the node's workers hold locks on right now (its reservations are keyed by lock token). */
  async function activeJobsOf(nodeId: string): Promise<{ jobId: string; queue: string }[]> {
    const tokens = new Set(await r.hkeys(`${PREFIX}:node:${nodeId}:resv`));
    const queues = Object.keys(await r.hgetall(`${PREFIX}:queues`));
    const out: { jobId: string; queue: string }[] = [];
    for (const q of queues) {
      for (const id of await r.lrange(`${PREFIX}:${q}:active`, 0, -1)) {
        if (tokens.has((await r.get(`${PREFIX}:${q}:${id}:lock`)) ?? '')) out.push({ jobId: id, queue: q });
      }
    }
    return out;
  }

  const rejected: Record<string, number> = {};
  const rejections: string[] = [];
  const submit = (async () => {
    const gap = (o.seconds * 1000 * 0.7) / o.jobs;
    for (let i = 0; i < o.jobs; i++) {
      const payload = JSON.stringify({ type: 'generate', model: MODEL, prompt: `chaos ${i}`, priority: 1 + Math.floor(rand() * 10), options: { num_predict: 10 + Math.floor(rand() * 90), sim_answer_tokens: 100 } });
      // A client retries a 503 (Redis or the API overloaded) a few times, as any client of a queue should.
      for (let attempt = 0; attempt < 5; attempt++) {
        const res = await fetch(`${api}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: payload });
        const body = (await res.json()) as { id?: string; error?: { message: string } };
        if (res.status === 202 && body.id) {
          ids.push(body.id);
          break;
        }
        rejected[res.status] = (rejected[res.status] ?? 0) + 1;
        if (res.status !== 503) {
          rejections.push(`${res.status} ${body.error?.message ?? ''}`);
          break;
        }
        await new Promise((res2) => setTimeout(res2, 200));
      }
      await new Promise((res2) => setTimeout(res2, gap));
    }
  })();

  const chaos = (async () => {
    while (Date.now() - t0 < o.seconds * 1000 * 0.8) {
      await new Promise((res) => setTimeout(res, 700 + rand() * 1500));
      if (rand() < 0.5) {
        const w = workers[Math.floor(rand() * workers.length)]!;
        const held = await activeJobsOf(w.id);
        w.proc.kill('SIGKILL');
        kills++;
        const at = Date.now();
        for (const h of held) pendingRecoveries.push({ ...h, at });
        await new Promise((res) => setTimeout(res, 300 + rand() * 1200));
        w.proc = child(process.execPath, [HYDRA_BIN, 'worker'], w.env);
      } else {
        const url = sims[Math.floor(rand() * sims.length)]!;
        const fault = rand() < 0.5 ? { fail_next: 1 + Math.floor(rand() * 3) } : { drop_next: 1 + Math.floor(rand() * 2), drop_after_tokens: 2 };
        await fetch(`${url}/admin/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(fault) });
        faults++;
      }
    }
  })();

  await Promise.all([submit, chaos]);
  // Measure recovery: how long until each job that was running on a killed worker started again.
  for (const p of pendingRecoveries) {
    // The first move back to waiting after the kill, by fast failover or by BullMQ's stalled checker (event ids are ms).
    const events = await r.xrange(`${PREFIX}:${p.queue}:events`, String(p.at), '+');
    const back = events.find(([, f]) => {
      const e = Object.fromEntries(f.flatMap((v, i) => (i % 2 ? [] : [[v, f[i + 1]]])));
      return e.jobId === p.jobId && (e.event === 'stalled' || (e.event === 'waiting' && e.prev === 'active'));
    });
    if (back) requeues.push(Number(back[0].split('-')[0]) - p.at);
    await until(`job ${p.jobId} to restart`, async () => {
      const [processedOn, finishedOn] = await r.hmget(`${PREFIX}:${p.queue}:${p.jobId}`, 'processedOn', 'finishedOn');
      if (Number(processedOn) > p.at) {
        recoveries.push(Number(processedOn) - p.at);
        return true;
      }
      // Ended without a new start: it finished just before the kill, or failed as a poison pill.
      return finishedOn !== null;
    }, 60_000);
  }
  // Every accepted job must end.
  const states = new Map<string, { state: string; error?: { code: string; message: string } }>();
  await until('every accepted job to end', async () => {
    for (const id of ids) {
      if (states.has(id)) continue;
      const v = (await (await fetch(`${api}/v1/jobs/${id}`)).json()) as { state: string; error?: { code: string; message: string } };
      if (v.state === 'completed' || v.state === 'failed') states.set(id, v);
    }
    return states.size === ids.length;
  }, 120_000).catch(() => undefined);

  const failed: Record<string, number> = {};
  const unclear: string[] = [];
  for (const [id, v] of states) {
    if (v.state !== 'failed') continue;
    const code = v.error?.code ?? 'none';
    failed[code] = (failed[code] ?? 0) + 1;
    if (!CLEAR.has(code) || !v.error?.message) unclear.push(`${id}: ${JSON.stringify(v.error)}`);
  }
  const report: ChaosReport = {
    jobs: o.jobs,
    accepted: ids.length,
    rejected,
    rejections,
    completed: [...states.values()].filter((v) => v.state === 'completed').length,
    failed,
    lost: ids.filter((id) => !states.has(id)),
    completed_twice: [...completions].filter(([, n]) => n > 1).map(([id]) => id),
    unclear_failures: unclear,
    kills,
    faults,
    recoveries: recoveries.length,
    median_recovery_ms: median(recoveries),
    max_recovery_ms: recoveries.length ? Math.max(...recoveries) : 0,
    median_requeue_ms: median(requeues),
    max_requeue_ms: requeues.length ? Math.max(...requeues) : 0,
    seconds: Math.round((Date.now() - t0) / 100) / 10,
  };
  log(
    `chaos: ${report.accepted}/${report.jobs} accepted (other answers ${JSON.stringify(report.rejected)}), ${report.completed} completed, failed ${JSON.stringify(report.failed)}, ` +
      `lost ${report.lost.length}, completed twice ${report.completed_twice.length}, ${report.kills} SIGKILLs, ${report.faults} faults, ` +
      `over ${report.recoveries} interrupted jobs: back in the queue median ${report.median_requeue_ms} ms (max ${report.max_requeue_ms}), ` +
      `running again median ${report.median_recovery_ms} ms (max ${report.max_recovery_ms}), ${report.seconds} s`,
  );
  return report;
}

if (process.argv[1]?.endsWith('chaos.ts')) {
  const { values } = parseArgs({
    options: { jobs: { type: 'string', default: '600' }, seconds: { type: 'string', default: '60' }, nodes: { type: 'string', default: '3' }, seed: { type: 'string', default: '7' }, 'liveness-check-ms': { type: 'string' } },
  });
  const liveness = values['liveness-check-ms'];
  runChaos({ jobs: Number(values.jobs), seconds: Number(values.seconds), nodes: Number(values.nodes), seed: Number(values.seed), ...(liveness === undefined ? {} : { livenessCheckMs: Number(liveness) }) })
    .then((rep) => {
      process.exitCode = rep.lost.length || rep.completed_twice.length || rep.unclear_failures.length ? 1 : 0;
    })
    .catch((e: Error) => {
      process.stderr.write(`chaos failed: ${e.stack}\n`);
      process.exitCode = 1;
    })
    .finally(() => setTimeout(() => process.exit(), 200).unref());
}
