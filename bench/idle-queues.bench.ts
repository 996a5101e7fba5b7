// What an idle cluster costs as its number of queues grows (#14: "idle background load that does not grow with the
// number of queues"): one **simulated** node listing `--max` models, its worker and the API as child processes, a
// private redis-server. Each step adds class queues by running one job for each new model (a queue exists once a job
// was added to it), lets the cluster settle, then measures `--idle-s` seconds of nothing: Redis commands and CPU
// (INFO), worker and API CPU (/proc).
//
//   npm run bench:idle-queues -- [--steps 1,8,32] [--idle-s 15]
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { deltaOf, perUnit, postJson, sampleRedis, sleep, startCluster, startSims } from './cluster-probe.js';
import { cpuSecondsOf, round, runBench, startRedis } from './support.js';

const { values } = parseArgs({ options: { steps: { type: 'string', default: '1,8,32' }, 'idle-s': { type: 'string', default: '15' } } });
const STEPS = values.steps!.split(',').map(Number);
const IDLE_S = Number(values['idle-s']);
if (STEPS.some((n, i) => !Number.isInteger(n) || n < 1 || (i > 0 && n <= STEPS[i - 1]!))) throw new Error(`--steps must be increasing whole numbers ≥ 1, got ${values.steps}`);
if (!(IDLE_S >= 2)) throw new Error(`--idle-s must be at least 2, got ${values['idle-s']}`);
const MAX = STEPS.at(-1)!;

async function main(): Promise<void> {
  const redisUrl = await startRedis();
  const models = Array.from({ length: MAX }, (_, i) => `m${i}:1b`);
  const [simUrl] = await startSims(1, ['--vram-gb', '80', '--models', models.map((m) => `${m}=0.5`).join(','), '--fast', '--parallel', '8']);
  const { apiUrl, api, workers } = await startCluster(redisUrl, [simUrl!], {}, { vramGb: 80 });
  const redis = new Redis(redisUrl);
  const rows: Record<string, unknown>[] = [];
  let made = 0;
  for (const queues of STEPS) {
    for (; made < queues; made++) {
      const r = await postJson(`${apiUrl}/v1/jobs`, { type: 'generate', model: models[made], prompt: 'make the queue', options: { num_predict: 1 }, wait: true });
      if (r.status !== 200) throw new Error(`job for ${models[made]}: ${r.status} ${JSON.stringify(r.json)}`);
    }
    // Past the jobs' own after-effects (retention, heartbeats after a load, the workers' refresh of the queue list).
    await sleep(3000);
    const cpu0 = { worker: cpuSecondsOf(workers[0]!.pid), api: cpuSecondsOf(api.pid) };
    const a = await sampleRedis(redis);
    await sleep(IDLE_S * 1000);
    const d = deltaOf(a, await sampleRedis(redis));
    const row = {
      queues,
      redis_commands_per_s: round(d.commands / d.seconds, 1),
      redis_cpu_ms_per_s: round((d.cpu_s * 1000) / d.seconds, 2),
      worker_cpu_ms_per_s: round(((cpuSecondsOf(workers[0]!.pid) - cpu0.worker) * 1000) / d.seconds, 2),
      api_cpu_ms_per_s: round(((cpuSecondsOf(api.pid) - cpu0.api) * 1000) / d.seconds, 2),
      calls_per_s: perUnit(d.calls, d.seconds, 0.1),
    };
    rows.push(row);
    process.stderr.write(`${queues} queues: ${row.redis_commands_per_s} commands/s\n`);
  }
  redis.disconnect();
  const result = { when: new Date().toISOString(), node: '1 simulated (fast mode)', idle_s: IDLE_S, rows };
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL(`./results/idle-queues-${Date.now()}.json`, import.meta.url), JSON.stringify(result, null, 2));
  process.stdout.write(`
| class queues (1 simulated node, 1 worker, API; idle ${IDLE_S} s) | Redis commands/s | Redis CPU ms/s | worker CPU ms/s | API CPU ms/s |
|---|---:|---:|---:|---:|
${rows.map((r) => `| ${String(r.queues)} | ${String(r.redis_commands_per_s)} | ${String(r.redis_cpu_ms_per_s)} | ${String(r.worker_cpu_ms_per_s)} | ${String(r.api_cpu_ms_per_s)} |`).join('\n')}

Commands per second by step: ${rows.map((r) => `${String(r.queues)}: ${JSON.stringify(r.calls_per_s)}`).join('\n')}
`);
}

runBench(main);
