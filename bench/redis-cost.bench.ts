// What one job and one idle node cost Redis: server CPU (INFO cpu) and commands (INFO commandstats) per plain job, per
// streamed job, per workflow step, and per registered idle node per second; then how many of each one Redis core carries.
//
//   npm run bench:redis-cost -- [--nodes 4] [--jobs 3000] [--streams 1000] [--workflows 300] [--idle-s 30] [--concurrency 16]
//
// A private redis-server, `--nodes` simulated nodes in one `hydra sim --count` process (no load delay, 400 tokens/s
// for the 1 GB model, parallelism free), the API and one worker per node as child processes, this client. Phases, one
// after the other: the API alone idle, the API and workers idle, plain jobs (`generate`, 4 tokens, `wait: true`),
// streamed jobs (64 tokens, ~160 ms, read through SSE), three-step workflows (a chain, `wait: true`). Each load phase's
// figures are less the idle cluster's rate over as long, so they are what the load added. API and worker CPU come
// from /proc.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { deltaOf, minusRate, perUnit, postJson, procCpuS, readSse, sampleRedis, sleep, startApi, startSims, startWorkers, type RedisDelta } from './cluster-probe.js';
import { round, runBench, runLoad, startRedis } from './support.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '4' },
    jobs: { type: 'string', default: '3000' },
    streams: { type: 'string', default: '1000' },
    workflows: { type: 'string', default: '300' },
    'idle-s': { type: 'string', default: '30' },
    concurrency: { type: 'string', default: '16' },
  },
});
const NODES = Number(values.nodes);
const JOBS = Number(values.jobs);
const STREAMS = Number(values.streams);
const WORKFLOWS = Number(values.workflows);
const IDLE_S = Number(values['idle-s']);
const CONC = Number(values.concurrency);
const MODEL = 'bench:1b';

interface Phase {
  name: string;
  units: number;
  unit: string;
  redis: RedisDelta;
  api_cpu_s: number;
  workers_cpu_s: number;
}

async function main(): Promise<void> {
  const redisUrl = await startRedis();
  const redis = new Redis(redisUrl);
  const simUrls = await startSims(NODES, ['--vram-gb', '24', '--models', `${MODEL}=1`, '--load-fixed-ms', '0', '--load-ms-per-gb', '0', '--tokens-per-second', '50', '--batch-exponent', '1', '--parallel', '64']);
  const { apiUrl, api, env } = await startApi(redisUrl, { WORKER_CONCURRENCY: '16' });
  const cpuOf = (pids: (number | undefined)[]) => pids.reduce((a: number, p) => a + procCpuS(p), 0);

  // Idle: the API alone, then with every node registered (heartbeats, liveness, polls, sweeps), after a settling time.
  await sleep(3000);
  let a = await sampleRedis(redis);
  await sleep(IDLE_S * 500);
  const apiIdle = deltaOf(a, await sampleRedis(redis));
  const workers = await startWorkers(apiUrl, env, simUrls);
  const wpids = workers.map((w) => w.pid);
  await sleep(5000);
  a = await sampleRedis(redis);
  const w0 = cpuOf(wpids);
  await sleep(IDLE_S * 1000);
  const idle = deltaOf(a, await sampleRedis(redis));
  const workersIdleCpu = cpuOf(wpids) - w0;
  const nodesOnly = minusRate(idle, apiIdle);

  const phases: Phase[] = [];
  const measure = async (name: string, unit: string, units: number, run: () => Promise<void>) => {
    const s0 = await sampleRedis(redis);
    const api0 = procCpuS(api.pid);
    const wk0 = cpuOf(wpids);
    await run();
    await sleep(1000); // the tails (retire calls, metrics) land
    const d = deltaOf(s0, await sampleRedis(redis));
    const added = minusRate(d, idle);
    phases.push({ name, unit, units, redis: added, api_cpu_s: procCpuS(api.pid) - api0, workers_cpu_s: cpuOf(wpids) - wk0 - (workersIdleCpu * d.seconds) / IDLE_S });
  };
  const gen = (i: number, tokens: number) => ({ type: 'generate', model: MODEL, prompt: `job ${i}`, options: { num_predict: tokens } });
  // Warm-up: the model loads, the queues and connections exist.
  await runLoad(200, CONC, async (i) => void (await postJson(`${apiUrl}/v1/jobs`, { ...gen(i, 4), wait: true })));

  await measure('plain job (generate, 4 tokens, wait: true)', 'job', JOBS, async () => {
    await runLoad(JOBS, CONC, async (i) => {
      const r = await postJson(`${apiUrl}/v1/jobs`, { ...gen(i, 4), wait: true });
      if (r.status !== 200) throw new Error(`job ${i}: ${r.status}`);
    });
  });
  await measure('streamed job (64 tokens over ~160 ms, SSE)', 'job', STREAMS, async () => {
    await runLoad(STREAMS, CONC, async (i) => {
      const r = await postJson(`${apiUrl}/v1/jobs`, gen(i, 64));
      if (r.status !== 202) throw new Error(`stream job ${i}: ${r.status}`);
      if ((await readSse(`${apiUrl}${String(r.json.stream_url)}`)) !== 'done') throw new Error(`stream job ${i} failed`);
    });
  });
  await measure('workflow step (3-step chain, wait: true)', 'step', WORKFLOWS * 3, async () => {
    await runLoad(WORKFLOWS, CONC, async (i) => {
      const r = await postJson(`${apiUrl}/v1/workflows`, {
        input: { n: i },
        steps: [
          { id: 'a', model: MODEL, prompt: `a ${i}`, options: { num_predict: 4 } },
          { id: 'b', model: MODEL, prompt: 'b {{steps.a.output}}', depends_on: ['a'], options: { num_predict: 4 } },
          { id: 'c', model: MODEL, prompt: 'c {{steps.b.output}}', depends_on: ['b'], options: { num_predict: 4 } },
        ],
        wait: true,
      });
      if (r.status !== 200) throw new Error(`workflow ${i}: ${r.status} ${JSON.stringify(r.json)}`);
    });
  });

  const perNodeS = (x: number) => x / NODES / nodesOnly.seconds;
  const idleRow = {
    cpu_us_per_node_s: round(perNodeS(nodesOnly.cpu_s) * 1e6, 1),
    commands_per_node_s: round(perNodeS(nodesOnly.commands), 2),
    calls_per_node_s: perUnit(nodesOnly.calls, NODES * nodesOnly.seconds, 0.01),
    worker_cpu_ms_per_node_s: round((workersIdleCpu / NODES / IDLE_S) * 1000, 2),
    api_alone: { cpu_us_per_s: round((apiIdle.cpu_s / apiIdle.seconds) * 1e6, 1), commands_per_s: round(apiIdle.commands / apiIdle.seconds, 2) },
  };
  const rows = phases.map((p) => ({
    phase: p.name,
    per: p.unit,
    units: p.units,
    seconds: round(p.redis.seconds, 1),
    per_s: round(p.units / p.redis.seconds, 1),
    redis_cpu_us: round((p.redis.cpu_s / p.units) * 1e6, 1),
    redis_commands: round(p.redis.commands / p.units, 1),
    api_cpu_ms: round((p.api_cpu_s / p.units) * 1000, 2),
    worker_cpu_ms: round((p.workers_cpu_s / p.units) * 1000, 2),
    calls: perUnit(p.redis.calls, p.units),
  }));
  const plain = rows[0]!;
  const result = {
    when: new Date().toISOString(),
    machine: `${cpus().length} cores, Node ${process.version}`,
    redis: ((await redis.info('server')).match(/redis_version:(\S+)/) ?? [])[1],
    nodes: `${NODES} simulated`,
    idle: idleRow,
    load: rows,
    one_core: {
      plain_jobs_per_s: Math.round(1e6 / plain.redis_cpu_us),
      streamed_jobs_per_s: Math.round(1e6 / rows[1]!.redis_cpu_us),
      workflow_steps_per_s: Math.round(1e6 / rows[2]!.redis_cpu_us),
      idle_nodes: Math.round(1e6 / idleRow.cpu_us_per_node_s),
    },
  };
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL(`./results/redis-cost-${Date.now()}.json`, import.meta.url), JSON.stringify(result, null, 2));
  process.stdout.write(`
Redis ${result.redis}, ${NODES} simulated nodes, ${result.machine}

| load (less the idle cluster) | per | count | per s | Redis CPU µs | Redis commands | API CPU ms | worker CPU ms |
|---|---|---:|---:|---:|---:|---:|---:|
${rows.map((r) => `| ${r.phase} | ${r.per} | ${r.units} | ${r.per_s} | ${r.redis_cpu_us} | ${r.redis_commands} | ${r.api_cpu_ms} | ${r.worker_cpu_ms} |`).join('\n')}

| idle, per registered node | Redis CPU µs/s | Redis commands/s | worker CPU ms/s |
|---|---:|---:|---:|
| one idle node (${NODES} nodes, ${IDLE_S} s, less the API alone) | ${idleRow.cpu_us_per_node_s} | ${idleRow.commands_per_node_s} | ${idleRow.worker_cpu_ms_per_node_s} |
| the API alone, idle (whole process) | ${idleRow.api_alone.cpu_us_per_s} | ${idleRow.api_alone.commands_per_s} | |

One Redis core (100 % busy, nothing else): ${result.one_core.plain_jobs_per_s} plain jobs/s, ${result.one_core.streamed_jobs_per_s} streamed jobs/s, ${result.one_core.workflow_steps_per_s} workflow steps/s, or ${result.one_core.idle_nodes} idle nodes.

Commands per plain job: ${JSON.stringify(plain.calls)}
Commands per streamed job: ${JSON.stringify(rows[1]!.calls)}
Commands per workflow step: ${JSON.stringify(rows[2]!.calls)}
Commands per idle node per second: ${JSON.stringify(idleRow.calls_per_node_s)}
`);
  redis.disconnect();
}

runBench(main);
