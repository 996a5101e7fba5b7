// Scale: N registered simulated nodes (N = 25, 50, 100, 200) served by DISCOVER worker processes, idle and under a
// fixed load: Redis commands/s and CPU, worker and API CPU, GET /v1/nodes latency and the dispatchers' round times.
//
//   npm run bench:scale -- [--nodes 25,50,100,200] [--worker-procs 1] [--idle-s 20] [--rate 40] [--load-s 20]
//                          [--sims-nice 0]
//
// Per N, on one private redis-server (flushed between sizes): one `hydra sim --count N` process (fast mode, one 1 GB
// model, 24 GB each), the API, and `--worker-procs` worker processes that split the nodes between them through
// DISCOVER=host:port,... (one agent per node in a process). After the nodes registered and 5 s of settling: `--idle-s`
// idle, 10 s of GET /v1/nodes 10 times a second, then `--load-s` of an open-loop load of `--rate` generate jobs/s
// (4 tokens, wait: true) with GET /v1/nodes twice a second; the registry reads those requests make are taken out of
// the Redis command counts. Scheduling time comes from the workers' `dispatch timing` log lines
// (DISPATCH_TIMING_LOG_MS): the wall time of each dispatch round (peek the heads, order them, reserve, take) and of
// its pure ordering step alone, per agent.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, setPriority } from 'node:os';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { Pool } from 'undici';
import { deltaOf, nodeCount, perUnit, procCpuS, sampleRedis, sleep, spawnRead, startApi, startSimProcess, stopProcess, type RedisDelta } from './cluster-probe.js';
import { round, runBench, startRedis, until } from './support.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '25,50,100,200' },
    'worker-procs': { type: 'string', default: '1' },
    'idle-s': { type: 'string', default: '20' },
    rate: { type: 'string', default: '40' },
    'load-s': { type: 'string', default: '20' },
    'sims-nice': { type: 'string', default: '0' },
  },
});
const SIZES = values.nodes.split(',').map(Number);
const PROCS = Number(values['worker-procs']);
const IDLE_S = Number(values['idle-s']);
const RATE = Number(values.rate);
const LOAD_S = Number(values['load-s']);
const SIMS_NICE = Number(values['sims-nice']);
const MODEL = 'bench:1b';
const TIMING_MS = 5000;

const q = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]! : NaN);
const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: round(q(s, 0.5)), p99: round(q(s, 0.99)), max: round(s.at(-1) ?? NaN) };
};

const agentLines = (t: Timing[]) => t.filter((x) => x.scope === undefined);
const processLines = (t: Timing[]) => t.filter((x) => x.scope === 'process');
const worst = (t: Timing[], k: 'round_p99_ms' | 'order_p99_ms' | 'order_cpu_p99_ms' | 'round_max_ms') => round(Math.max(...t.map((x) => x[k] ?? 0)));

/** Times GET /v1/nodes every `everyMs` until stopped. */
function nodesTimer(pool: Pool, everyMs: number): { stop(): number[] } {
  const lat: number[] = [];
  let on = true;
  void (async () => {
    while (on) {
      const t = performance.now();
      const r = await pool.request({ method: 'GET', path: '/v1/nodes' });
      await r.body.text();
      lat.push(performance.now() - t);
      await sleep(everyMs);
    }
  })();
  return {
    stop() {
      on = false;
      return lat;
    },
  };
}

interface Timing {
  rounds: number;
  round_p99_ms: number;
  order_p99_ms: number;
  order_cpu_p99_ms?: number;
  /** "process": the line over all agents of one worker process (per-agent lines have none). */
  scope?: string;
  round_max_ms: number;
}

interface Phase {
  redis: RedisDelta;
  workers_cpu_s: number;
  api_cpu_s: number;
  nodes_ms: number[];
  timings: Timing[];
}

async function runSize(redis: Redis, redisUrl: string, n: number) {
  await redis.flushall();
  const sim = await startSimProcess(n, ['--vram-gb', '24', '--models', `${MODEL}=1`, '--fast', '--parallel', '64']);
  // The simulated nodes stand in for other machines: --sims-nice lowers their CPU priority, so on this one box they
  // take the CPU Hydra's processes leave rather than preempting them (their own replies may then come later).
  if (SIMS_NICE && sim.proc.pid) setPriority(sim.proc.pid, SIMS_NICE);
  const { apiUrl, api, env } = await startApi(redisUrl, { HEARTBEAT_MS: '2000' });
  const timings: Timing[] = [];
  const hosts = sim.urls.map((u) => new URL(u).host);
  const workers = Array.from({ length: PROCS }, (_, p) => {
    const mine = hosts.filter((_, i) => i % PROCS === p);
    return spawnRead(['worker'], { ...env, LOG_LEVEL: 'info', DISCOVER: mine.join(','), DISCOVER_INTERVAL_MS: '5000', DISCOVER_TIMEOUT_MS: '5000', NODE_VRAM_GB: '24', WORKER_CONCURRENCY: '8', DISPATCH_TIMING_LOG_MS: String(TIMING_MS) }, (line) => {
      if (!line.includes('dispatch timing')) return;
      try {
        timings.push(JSON.parse(line) as Timing);
      } catch {
        // not a JSON line
      }
    });
  });
  const t0 = performance.now();
  await until(`${n} nodes registered`, async () => (await nodeCount(apiUrl)) >= n, 300_000);
  const registerS = round((performance.now() - t0) / 1000, 1);
  await sleep(5000);
  const pool = new Pool(apiUrl, { connections: 64 });
  const wpids = workers.map((w) => w.pid);
  const cpu = () => ({ w: wpids.reduce((a: number, p) => a + procCpuS(p), 0), a: procCpuS(api.pid) });
  // GET /v1/nodes reads the whole registry (1 ZRANGE + a GET and 3 HGETALLs per node): timed in a phase of its own
  // when idle, and 2 times a second under load, where its reads are taken out of the Redis command counts.
  const phase = async (run: () => Promise<void>, timeNodesMs = 0): Promise<Phase> => {
    const t = timeNodesMs > 0 ? nodesTimer(pool, timeNodesMs) : { stop: () => [] as number[] };
    const from = timings.length;
    const s0 = await sampleRedis(redis);
    const c0 = cpu();
    await run();
    const d = deltaOf(s0, await sampleRedis(redis));
    const c1 = cpu();
    const nodesMs = t.stop();
    const reads = nodesMs.length;
    d.commands -= reads * (4 * n + 1);
    for (const [c, k] of [['get', 1], ['hgetall', 3], ['zrange', 1 / n]] as const) d.calls[c] = Math.max(0, (d.calls[c] ?? 0) - reads * n * k);
    return { redis: d, workers_cpu_s: c1.w - c0.w, api_cpu_s: c1.a - c0.a, nodes_ms: nodesMs, timings: timings.slice(from) };
  };
  const idle = await phase(() => sleep(IDLE_S * 1000));
  const nodesIdle = (await phase(() => sleep(10_000), 100)).nodes_ms;
  const jobLat: number[] = [];
  let failed = 0;
  const load = await phase(async () => {
    const pending: Promise<void>[] = [];
    const start = performance.now();
    for (let i = 0; i < RATE * LOAD_S; i++) {
      const due = start + (i * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      pending.push(
        (async () => {
          const t = performance.now();
          const r = await pool.request({ method: 'POST', path: '/v1/jobs', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'generate', model: MODEL, prompt: `scale ${i}`, options: { num_predict: 4 }, wait: true }) });
          await r.body.text();
          if (r.statusCode === 200) jobLat.push(performance.now() - t);
          else failed++;
        })(),
      );
    }
    await Promise.all(pending);
  }, 500);
  await pool.close();
  await Promise.all([...workers, api, sim.proc].map(stopProcess));
  const row = (p: Phase) => {
    const s = p.redis.seconds;
    const t = p.timings;
    return {
      redis_commands_per_s: round(p.redis.commands / s, 1),
      redis_cpu_pct: round((p.redis.cpu_s / s) * 100, 1),
      redis_commands_per_node_s: round(p.redis.commands / s / n, 2),
      calls_per_node_s: perUnit(p.redis.calls, s * n, 0.05),
      workers_cpu_pct: round((p.workers_cpu_s / s) * 100, 1),
      api_cpu_pct: round((p.api_cpu_s / s) * 100, 1),
      v1_nodes_ms: stats(p.nodes_ms),
      dispatch: agentLines(t).length
        ? {
            rounds_per_s: round(agentLines(t).reduce((a, x) => a + x.rounds, 0) / s, 1),
            // Over every decision of a process (max over processes and 5 s intervals), and the worst single agent's.
            round_p99_ms: worst(processLines(t), 'round_p99_ms'),
            order_p99_ms: worst(processLines(t), 'order_p99_ms'),
            order_cpu_p99_ms: worst(processLines(t), 'order_cpu_p99_ms'),
            round_p99_ms_worst_agent: worst(agentLines(t), 'round_p99_ms'),
            order_p99_ms_worst_agent: worst(agentLines(t), 'order_p99_ms'),
            order_cpu_p99_ms_worst_agent: worst(agentLines(t), 'order_cpu_p99_ms'),
            round_max_ms: worst(agentLines(t), 'round_max_ms'),
          }
        : null,
    };
  };
  const perJob = (x: number, base: number) => round((x / load.redis.seconds - base / idle.redis.seconds) / RATE, 1);
  return {
    nodes: n,
    register_s: registerS,
    idle: { ...row(idle), v1_nodes_ms: stats(nodesIdle) },
    load: { ...row(load), jobs: RATE * LOAD_S, failed, job_ms: stats(jobLat), redis_commands_per_job: perJob(load.redis.commands, idle.redis.commands), peeks_per_job: perJob(load.redis.calls.evalsha ?? 0, idle.redis.calls.evalsha ?? 0) },
  };
}

async function main(): Promise<void> {
  const redisUrl = await startRedis();
  const redis = new Redis(redisUrl);
  const results = [];
  for (const n of SIZES) {
    process.stderr.write(`${n} nodes ...\n`);
    const r = await runSize(redis, redisUrl, n);
    process.stderr.write(`${JSON.stringify(r)}\n`);
    results.push(r);
  }
  redis.disconnect();
  const out = { when: new Date().toISOString(), machine: `${cpus().length} cores, Node ${process.version}`, worker_procs: PROCS, rate: RATE, idle_s: IDLE_S, load_s: LOAD_S, results };
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL(`./results/scale-${Date.now()}.json`, import.meta.url), JSON.stringify(out, null, 2));
  const d = (x: ReturnType<typeof Object> | null, k: string) => (x ? String((x as Record<string, unknown>)[k]) : 'n/a');
  process.stdout.write(`
${PROCS} worker process(es) (DISCOVER), simulated nodes in one \`hydra sim --count N\` process, simulators at nice ${SIMS_NICE}, load ${RATE} jobs/s for ${LOAD_S} s, ${out.machine}

| nodes | phase | Redis cmds/s | per node | Redis CPU % | workers CPU % | API CPU % | /v1/nodes p50 / p99 ms | rounds/s | round p99 ms (all / worst agent) | ordering p99 ms wall / CPU (all agents) | ordering p99 ms wall / CPU (worst agent) | jobs p50 / p99 ms | Redis cmds (script calls) per job |
|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${results
  .flatMap((r) =>
    (['idle', 'load'] as const).map((ph) => {
      const x = r[ph];
      const job = ph === 'load' ? `${r.load.job_ms.p50} / ${r.load.job_ms.p99}${r.load.failed ? ` (${r.load.failed} failed)` : ''} | ${r.load.redis_commands_per_job} (${r.load.peeks_per_job})` : ' | ';
      return `| ${r.nodes} | ${ph} | ${x.redis_commands_per_s} | ${x.redis_commands_per_node_s} | ${x.redis_cpu_pct} | ${x.workers_cpu_pct} | ${x.api_cpu_pct} | ${x.v1_nodes_ms.p50} / ${x.v1_nodes_ms.p99} | ${d(x.dispatch, 'rounds_per_s')} | ${d(x.dispatch, 'round_p99_ms')} / ${d(x.dispatch, 'round_p99_ms_worst_agent')} | ${d(x.dispatch, 'order_p99_ms')} / ${d(x.dispatch, 'order_cpu_p99_ms')} | ${d(x.dispatch, 'order_p99_ms_worst_agent')} / ${d(x.dispatch, 'order_cpu_p99_ms_worst_agent')} | ${job} |`;
    }),
  )
  .join('\n')}

Redis commands per node per second, idle: ${results.map((r) => `${r.nodes} nodes ${JSON.stringify(r.idle.calls_per_node_s)}`).join('; ')}
`);
}

runBench(main);
