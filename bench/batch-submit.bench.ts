// Submitting through a batch vs one by one: jobs/s accepted by the API for one POST /v1/batches of N embeddings,
// against N POST /v1/jobs sent one at a time and 16 at a time, in the same run; with the API's CPU per job and the
// Redis commands per job (INFO commandstats deltas) of each.
//
//   npm run bench:batch -- [--jobs 1000] [--rounds 5]
//
// A private redis-server, one simulated node (`hydra sim`) with its worker, the API as a child process, this client.
// Only the submit is measured: once the node is registered, its worker is stopped (SIGSTOP; a long heartbeat keeps
// its record), so the jobs queue and nothing runs them while the API's and Redis' counters are read. Every round
// sends new inputs (no cache hits on the single-job path) and empties the queue afterwards. Medians over the rounds.
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { classQueueName } from '../libs/scheduling/index.js';
import { deltaOf, perUnit, postJson, procCpuS, sampleRedis, startApi, startSims, startWorkers } from './cluster-probe.js';
import { median, round, runBench, runLoad, startRedis } from './support.js';

const { values } = parseArgs({ options: { jobs: { type: 'string', default: '1000' }, rounds: { type: 'string', default: '5' } } });
const N = Number(values.jobs);
const ROUNDS = Number(values.rounds);
const MODEL = 'bench-embed';

interface Sample {
  jobs_per_s: number;
  api_cpu_ms_per_job: number;
  redis_cmds_per_job: number;
  /** Calls per job by command (commandstats), the largest first. */
  calls: Record<string, number>;
}

async function main(): Promise<void> {
  const redisUrl = await startRedis();
  const redis = new Redis(redisUrl);
  const [simUrl] = await startSims(1, ['--vram-gb', '24', '--models', `${MODEL}=0.3:64`, '--load-fixed-ms', '0', '--load-ms-per-gb', '0']);
  const env = { BATCH_MAX_REQUESTS: String(Math.max(N, 1000)), HEARTBEAT_MS: '600000', MEMORY_URL: 'off', BODY_LIMIT_BYTES: String(64 * 1024 * 1024) };
  const { apiUrl, api, env: base } = await startApi(redisUrl, env);
  const [worker] = await startWorkers(apiUrl, base, [simUrl!]);
  worker!.kill('SIGSTOP');
  const queue = new Queue(classQueueName(MODEL), { connection: redis, prefix: '{hydra}' });
  let round_ = 0;
  const inputs = () => {
    round_++;
    return Array.from({ length: N }, (_, i) => ({ type: 'embed', model: MODEL, input: `round ${round_} item ${i}` }));
  };

  /** Run one way of submitting N jobs; the queue must hold exactly N more afterwards. */
  const measure = async (send: (reqs: ReturnType<typeof inputs>) => Promise<void>): Promise<Sample> => {
    const reqs = inputs();
    const before = await queue.count();
    const r0 = await sampleRedis(redis);
    const c0 = procCpuS(api.pid);
    const t0 = performance.now();
    await send(reqs);
    const s = (performance.now() - t0) / 1000;
    const cpu = procCpuS(api.pid) - c0;
    const d = deltaOf(r0, await sampleRedis(redis));
    const added = (await queue.count()) - before;
    if (added !== N) throw new Error(`expected ${N} jobs queued, found ${added}`);
    await queue.drain();
    // sampleRedis' own INFO/DBSIZE calls (5) are in the delta; they are not the submit's.
    return { jobs_per_s: round(N / s, 1), api_cpu_ms_per_job: round((cpu * 1000) / N, 3), redis_cmds_per_job: round((d.commands - 5) / N, 2), calls: perUnit(d.calls, N) };
  };

  const single = (conc: number) => async (reqs: ReturnType<typeof inputs>) => {
    await runLoad(reqs.length, conc, async (i) => {
      const r = await postJson(`${apiUrl}/v1/jobs`, reqs[i]);
      if (r.status !== 202) throw new Error(`POST /v1/jobs answered ${r.status}: ${JSON.stringify(r.json)}`);
    });
  };
  const batch = async (reqs: ReturnType<typeof inputs>) => {
    const r = await postJson(`${apiUrl}/v1/batches`, { requests: reqs });
    if (r.status !== 202) throw new Error(`POST /v1/batches answered ${r.status}: ${JSON.stringify(r.json).slice(0, 300)}`);
  };
  const ways = { 'one POST /v1/batches': batch, 'POST /v1/jobs one by one': single(1), 'POST /v1/jobs, 16 in flight': single(16) } as const;

  // Warm-up: JIT, connections, the queue registry.
  for (const send of Object.values(ways)) await measure(send).catch(() => undefined);
  const samples = new Map<string, Sample[]>(Object.keys(ways).map((k) => [k, []]));
  for (let r = 0; r < ROUNDS; r++) for (const [name, send] of Object.entries(ways)) samples.get(name)!.push(await measure(send));

  const rows = [...samples].map(([way, xs]) => ({
    way,
    jobs_per_s: median(xs.map((x) => x.jobs_per_s)),
    api_cpu_ms_per_job: median(xs.map((x) => x.api_cpu_ms_per_job)),
    redis_cmds_per_job: median(xs.map((x) => x.redis_cmds_per_job)),
    rounds_jobs_per_s: xs.map((x) => x.jobs_per_s),
    calls_per_job: xs[xs.length - 1]!.calls,
  }));
  const out = { at: new Date().toISOString(), jobs: N, rounds: ROUNDS, rows };
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/batch-submit.json', `${JSON.stringify(out, null, 2)}\n`);
  process.stdout.write(`| way (${N} embed jobs, median of ${ROUNDS}) | jobs/s submitted | API CPU ms / job | Redis commands / job |\n|---|---:|---:|---:|\n`);
  for (const r of rows) process.stdout.write(`| ${r.way} | ${r.jobs_per_s} | ${r.api_cpu_ms_per_job} | ${r.redis_cmds_per_job} |\n`);
  worker!.kill('SIGCONT');
  await queue.close();
  redis.disconnect();
}

runBench(main);
