// Bounded Redis memory: push many jobs (plain, streamed, workflows) through the API with a small count retention and
// watch Redis' used_memory, DBSIZE and the key families: once the retention is full, memory must stop growing.
//
//   npm run bench:redis-memory -- [--jobs 100000] [--retention-count 1000] [--sample-every 10000] [--concurrency 32]
//                                 [--workflow-every 50] [--stream-every 50] [--nodes 2] [--slots 16]
//
// A private redis-server, `--nodes` simulated nodes in fast mode (one `hydra sim --count` process), the API and one
// worker per node as child processes, this client. Every `--workflow-every`-th submission is a two-step workflow
// (wait: true), every `--stream-every`-th (offset by half) a job read through its SSE stream, the rest plain
// `generate` jobs with `wait: true`. Requests are not deterministic (no temperature 0), so no L1 cache entries.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { keyFamilies, mb, postJson, readSse, sampleRedis, startCluster, startSims } from './cluster-probe.js';
import { round, runBench, startRedis } from './support.js';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '100000' },
    'retention-count': { type: 'string', default: '1000' },
    'sample-every': { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '32' },
    'workflow-every': { type: 'string', default: '50' },
    'stream-every': { type: 'string', default: '50' },
    nodes: { type: 'string', default: '2' },
    slots: { type: 'string', default: '16' },
  },
});
const JOBS = Number(values.jobs);
const RETAIN = Number(values['retention-count']);
const EVERY = Number(values['sample-every']);
const CONC = Number(values.concurrency);
const WF_EVERY = Number(values['workflow-every']);
const STREAM_EVERY = Number(values['stream-every']);
const NODES = Number(values.nodes);
const SLOTS = Number(values.slots);
const MODEL = 'bench:1b';
const PREFIX = '{hydra}';

type Kind = 'plain' | 'stream' | 'workflow';
const kindOf = (i: number): Kind => (WF_EVERY > 0 && i % WF_EVERY === 0 ? 'workflow' : STREAM_EVERY > 0 && i % STREAM_EVERY === Math.floor(STREAM_EVERY / 2) ? 'stream' : 'plain');

async function submit(apiUrl: string, i: number): Promise<void> {
  const kind = kindOf(i);
  if (kind === 'workflow') {
    const r = await postJson(`${apiUrl}/v1/workflows`, {
      input: { n: i },
      steps: [
        { id: 'a', model: MODEL, prompt: `step a of ${i}`, options: { num_predict: 4 } },
        { id: 'b', model: MODEL, prompt: 'then {{steps.a.output}}', depends_on: ['a'], options: { num_predict: 4 } },
      ],
      wait: true,
    });
    if (r.status !== 200) throw new Error(`workflow ${i}: ${r.status} ${JSON.stringify(r.json)}`);
    return;
  }
  const body = { type: 'generate', model: MODEL, prompt: `job ${i}`, options: { num_predict: kind === 'stream' ? 32 : 4 } };
  if (kind === 'stream') {
    const r = await postJson(`${apiUrl}/v1/jobs`, body);
    if (r.status !== 202) throw new Error(`stream job ${i}: ${r.status} ${JSON.stringify(r.json)}`);
    const end = await readSse(`${apiUrl}${String(r.json.stream_url)}`);
    if (end !== 'done') throw new Error(`stream job ${i} ended with ${end}`);
    return;
  }
  const r = await postJson(`${apiUrl}/v1/jobs`, { ...body, wait: true });
  if (r.status !== 200) throw new Error(`job ${i}: ${r.status} ${JSON.stringify(r.json)}`);
}

interface Row {
  jobs: number;
  seconds: number;
  used_memory_mb: number;
  dbsize: number;
  families: Record<string, number>;
  family_mb: Record<string, number>;
  retained_completed: number;
}

async function retainedCompleted(r: Redis): Promise<number> {
  const queues = new Set([...Object.keys(await r.hgetall(`${PREFIX}:queues`)), 'workflow']);
  const n = await Promise.all([...queues].map((q) => r.zcard(`${PREFIX}:${q}:completed`)));
  return n.reduce((a, b) => a + b, 0);
}

async function main(): Promise<void> {
  const redisUrl = await startRedis();
  const simUrls = await startSims(NODES, ['--vram-gb', '24', '--models', `${MODEL}=1`, '--fast', '--parallel', '64']);
  const { apiUrl } = await startCluster(redisUrl, simUrls, {
    WORKER_CONCURRENCY: String(SLOTS),
    JOB_RETENTION_COUNT: String(RETAIN),
    JOB_RETENTION_FAILED_COUNT: String(RETAIN),
  });
  const redis = new Redis(redisUrl);
  const rows: Row[] = [];
  const t0 = performance.now();
  const sample = async (jobs: number) => {
    // Let the tail of in-flight work (retire calls, workflow finalisers) land before reading.
    await new Promise((r) => setTimeout(r, 500));
    const s = await sampleRedis(redis);
    const f = await keyFamilies(redis, PREFIX);
    const row: Row = {
      jobs,
      seconds: round((performance.now() - t0) / 1000, 1),
      used_memory_mb: mb(s.used_memory),
      dbsize: s.dbsize,
      families: f.count,
      family_mb: Object.fromEntries(Object.entries(f.bytes).map(([k, v]) => [k, mb(v)])),
      retained_completed: await retainedCompleted(redis),
    };
    rows.push(row);
    process.stderr.write(`${jobs} jobs: used_memory ${row.used_memory_mb} MB, ${row.dbsize} keys, ${row.retained_completed} completed retained (${row.seconds} s)\n`);
  };
  await sample(0);
  let next = 0;
  let done = 0;
  let failed = 0;
  const counts: Record<Kind, number> = { plain: 0, stream: 0, workflow: 0 };
  for (let start = 0; start < JOBS; start += EVERY) {
    const end = Math.min(JOBS, start + EVERY);
    next = start;
    await Promise.all(
      Array.from({ length: CONC }, async () => {
        while (next < end) {
          const i = next++;
          counts[kindOf(i)]++;
          await submit(apiUrl, i).then(
            () => done++,
            (e: Error) => {
              failed++;
              if (failed <= 5) process.stderr.write(`${e.message}\n`);
            },
          );
        }
      }),
    );
    await sample(end);
  }
  const seconds = (performance.now() - t0) / 1000;
  const half = rows.find((r) => r.jobs >= JOBS / 2)!;
  const last = rows.at(-1)!;
  const first = rows[0]!;
  const result = {
    when: new Date().toISOString(),
    machine: `${cpus().length} cores, Node ${process.version}`,
    jobs: JOBS,
    mix: counts,
    failed,
    retention_count: RETAIN,
    nodes: `${NODES} simulated (fast mode)`,
    seconds: round(seconds, 1),
    jobs_per_s: round(JOBS / seconds, 1),
    growth_half_to_end_pct: round(((last.used_memory_mb - half.used_memory_mb) / half.used_memory_mb) * 100, 1),
    bytes_per_retained_job: Math.round(((last.used_memory_mb - first.used_memory_mb) * 2 ** 20) / Math.max(1, last.retained_completed)),
    // The families that scale with retained jobs (BullMQ's job hashes, streams, workflow state, the retired lists), per retained job.
    per_job_family_bytes: Math.round(
      (Object.entries(last.family_mb)
        .filter(([f]) => !/events|activity|metrics|node|live|other|queues/.test(f))
        .reduce((a, [, v]) => a + v, 0) *
        2 ** 20) /
        Math.max(1, last.retained_completed),
    ),
    rows,
  };
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL(`./results/redis-memory-${Date.now()}.json`, import.meta.url), JSON.stringify(result, null, 2));
  const fams = [...new Set(rows.flatMap((r) => Object.keys(r.families)))].sort((a, b) => (last.family_mb[b] ?? 0) - (last.family_mb[a] ?? 0)).slice(0, 10);
  process.stdout.write(`
${JOBS} submissions (${counts.plain} plain, ${counts.stream} streamed, ${counts.workflow} two-step workflows), ${failed} failed, JOB_RETENTION_COUNT=${RETAIN}, ${NODES} simulated nodes, ${round(JOBS / seconds, 1)} submissions/s

| jobs | used_memory MB | keys (DBSIZE) | completed jobs retained | ${fams.join(' | ')} |
|---:|---:|---:|---:|${fams.map(() => '---:').join('|')}|
${rows.map((r) => `| ${r.jobs} | ${r.used_memory_mb} | ${r.dbsize} | ${r.retained_completed} | ${fams.map((f) => `${r.families[f] ?? 0} (${r.family_mb[f] ?? 0} MB)`).join(' | ')} |`).join('\n')}

used_memory ${half.jobs} → ${last.jobs} jobs: ${half.used_memory_mb} → ${last.used_memory_mb} MB (${result.growth_half_to_end_pct} %); ~${result.bytes_per_retained_job} bytes per retained completed job (everything above the empty cluster / jobs retained), of which per-job key families ~${result.per_job_family_bytes} bytes
`);
  redis.disconnect();
}

runBench(main);
