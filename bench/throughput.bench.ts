// Throughput and added latency: the same short jobs sent straight to simulated Ollama nodes and through Hydra, side by side.
//
//   npm run bench:throughput -- [--jobs 2000] [--concurrency 32] [--nodes 2] [--slots 16]
//
// Everything runs on this machine: a private redis-server, N simulated nodes in fast mode (no load or token
// delays; labelled simulated), the API and one worker per node as child processes, and this client.
import { writeFileSync, mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { Pool } from 'undici';
import { HYDRA_BIN, child, cpuSecondsOf, cpuSplitOf, redisCounters, syscallsOf, runBench, freePort, round, runLoad, startRedis, until, type RunStats } from './support.js';

const { values } = parseArgs({
  options: { jobs: { type: 'string', default: '2000' }, concurrency: { type: 'string', default: '32' }, nodes: { type: 'string', default: '2' }, slots: { type: 'string', default: '16' }, history: { type: 'string', default: 'on' } },
});
const JOBS = Number(values.jobs);
const CONC = Number(values.concurrency);
const NODES = Number(values.nodes);
const SLOTS = Number(values.slots);
// --history off: the API runs with MEMORY_URL=off (no results history), to see what the history costs a job.
if (values.history !== 'on' && values.history !== 'off') throw new Error(`--history must be on or off, got ${values.history}`);
const HISTORY = values.history === 'on';
const MODEL = 'bench:1b';
const body = (i: number) => ({ model: MODEL, prompt: `short job ${i}`, options: { num_predict: 4 } });

async function direct(simUrls: string[], n = JOBS, conc = CONC): Promise<RunStats> {
  const pools = simUrls.map((u) => new Pool(u, { connections: conc }));
  const one = async (i: number) => {
    const r = await pools[i % pools.length]!.request({ method: 'POST', path: '/api/generate', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body(i), stream: false }) });
    const j = (await r.body.json()) as { done?: boolean };
    if (r.statusCode !== 200 || !j.done) throw new Error(`direct call failed: ${r.statusCode}`);
  };
  await runLoad(200, conc, one); // warm-up
  const s = await runLoad(n, conc, one);
  await Promise.all(pools.map((p) => p.close()));
  return s;
}

async function hydra(apiUrl: string, n = JOBS, conc = CONC, afterWarmUp: () => Promise<void> = async () => undefined): Promise<RunStats> {
  const pool = new Pool(apiUrl, { connections: conc });
  const one = async (i: number) => {
    const r = await pool.request({ method: 'POST', path: '/v1/jobs', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'generate', ...body(i), wait: true }) });
    const j = (await r.body.json()) as { state?: string };
    if (r.statusCode !== 200 || j.state !== 'completed') throw new Error(`hydra call failed: ${r.statusCode} ${JSON.stringify(j)}`);
  };
  await runLoad(200, conc, one); // warm-up
  await afterWarmUp();
  const s = await runLoad(n, conc, one);
  await pool.close();
  return s;
}

/** The ceiling DESIGN.md quotes: one BullMQ queue, no-op processor, same Redis. */
async function bullmqCeiling(redisUrl: string): Promise<{ per_second: number }> {
  const connection = { url: redisUrl } as never;
  const q = new Queue('ceiling', { connection, prefix: '{bench}' });
  await q.addBulk(Array.from({ length: JOBS }, (_, i) => ({ name: 'noop', data: { i }, opts: { removeOnComplete: true } })));
  let done = 0;
  const t0 = performance.now();
  const w = new Worker('ceiling', async () => undefined, { connection, prefix: '{bench}', concurrency: 10 });
  await until('no-op jobs', async () => (done = JOBS - (await q.count())) >= JOBS && (await q.getActiveCount()) === 0, 120_000);
  const s = (performance.now() - t0) / 1000;
  await w.close();
  await q.close();
  return { per_second: round(done / s) };
}

/**
 * Redis commands per job as the processes send them (top level: a Lua script is one command, what it calls inside is
 * not), by connection name, read with MONITOR while `n` jobs go through one at a time. INFO commandstats counts the
 * calls inside scripts too, so the two totals differ; this one is what "commands per job" means in #14's target.
 */
async function topLevelCommands(
  redisUrl: string,
  apiUrl: string,
  n = 200,
): Promise<{ per_job: Record<string, number>; total: number; inside_lua: number; by_command: Record<string, number>; inside_lua_by_script: Record<string, number>; inside_lua_by_script_command: Record<string, number> }> {
  const admin = new Redis(redisUrl);
  const names = new Map<string, string>();
  for (const line of String(await admin.client('LIST')).split('\n')) {
    const addr = /addr=(\S+)/.exec(line)?.[1];
    const name = /name=(\S*)/.exec(line)?.[1];
    if (addr) names.set(addr, name || '(unnamed)');
  }
  const pool = new Pool(apiUrl, { connections: 1 });
  const mon = await admin.monitor();
  // ioredis' monitor mode can trip over a reply that races the MONITOR's own OK ("Command queue state error"): the
  // figures are then left out of this run rather than failing the bench.
  let monitorError: string | null = null;
  mon.on('error', (e: Error) => (monitorError ??= e.message));
  const byConn = new Map<string, number>();
  const byCmd = new Map<string, number>();
  // MONITOR shows a script's own call first, then the calls it makes inside (Redis runs one command at a time), so
  // each call inside Lua is booked to the script call just before it: what INFO commandstats counts, by script.
  const byScript = new Map<string, number>();
  const byScriptCmd = new Map<string, number>();
  let lastScript = '(none)';
  let lua = 0;
  let counting = false;
  mon.on('monitor', (_time: string, args: string[], source: string) => {
    if (!counting) return;
    if (source === 'lua') {
      byScript.set(lastScript, (byScript.get(lastScript) ?? 0) + 1);
      const inner = `${lastScript} > ${String(args[0]).toLowerCase()}`;
      byScriptCmd.set(inner, (byScriptCmd.get(inner) ?? 0) + 1);
      return void lua++;
    }
    const who = names.get(source) ?? '(other)';
    byConn.set(who, (byConn.get(who) ?? 0) + 1);
    const name = String(args[0]).toLowerCase();
    // A script is told apart by its first key (ids and numbers replaced), since its sha says nothing to a reader.
    const first = name === 'evalsha' && Number(args[2]) > 0 ? ` ${String(args[3]).replace(/[0-9a-f]{8}-[0-9a-f-]{27}|\d+/g, '#')}` : '';
    const cmd = `${who} ${name}${first}`;
    byCmd.set(cmd, (byCmd.get(cmd) ?? 0) + 1);
    if (name === 'evalsha' || name === 'eval') lastScript = cmd;
  });
  const one = async (i: number) => {
    const r = await pool.request({ method: 'POST', path: '/v1/jobs', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'generate', ...body(i + 1_000_000), wait: true }) });
    await r.body.json();
  };
  await runLoad(20, 1, one);
  counting = true;
  await runLoad(n, 1, one);
  // Writes that follow the answer (retire, reservation release) land within a few ms.
  await new Promise((r) => setTimeout(r, 300));
  counting = false;
  mon.disconnect();
  admin.disconnect();
  await pool.close();
  const perJob = (m: Map<string, number>) => Object.fromEntries([...m].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, round(v / n, 2)]).filter(([, v]) => (v as number) >= 0.05));
  const total = [...byConn.values()].reduce((t, v) => t + v, 0);
  if (monitorError) process.stderr.write(`MONITOR failed (${monitorError}): top-level counts of this run are partial\n`);
  return { per_job: perJob(byConn), total: round(total / n, 2), inside_lua: round(lua / n, 2), by_command: perJob(byCmd), inside_lua_by_script: perJob(byScript), inside_lua_by_script_command: perJob(byScriptCmd) };
}

async function main(): Promise<void> {
  const redisUrl = await startRedis();
  const simUrls: string[] = [];
  for (let i = 0; i < NODES; i++) {
    const port = await freePort();
    child(process.execPath, [HYDRA_BIN, 'sim', '--port', String(port), '--vram-gb', '24', '--models', `${MODEL}=1`, '--fast', '--parallel', '64', '--log-level', 'warn']);
    simUrls.push(`http://127.0.0.1:${port}`);
  }
  for (const u of simUrls) await until(`sim ${u}`, async () => (await fetch(`${u}/api/version`)).ok);

  const apiPort = await freePort();
  const env = { REDIS_URL: redisUrl, LOG_LEVEL: 'warn', PORT: String(apiPort), WORKER_CONCURRENCY: String(SLOTS), ...(HISTORY ? {} : { MEMORY_URL: 'off' }) };
  const api = child(process.execPath, [HYDRA_BIN, 'api'], env);
  const workers = simUrls.map((u, i) => child(process.execPath, [HYDRA_BIN, 'worker'], { ...env, BACKEND: 'ollama', OLLAMA_URL: u, NODE_ID: `sim-${i + 1}`, NODE_VRAM_GB: '24' }));
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  await until('all workers registered', async () => ((await (await fetch(`${apiUrl}/v1/nodes`)).json()) as { nodes: unknown[] }).nodes.length === NODES);

  // One job at a time: the latency Hydra adds without queueing behind other jobs.
  const d1 = await direct(simUrls, 300, 1);
  // CPU seconds of Hydra's own processes and Redis' commands over the measured jobs only (after the warm-up).
  const cpuNow = () => ({
    api: cpuSecondsOf(api.pid),
    workers: workers.reduce((t, w) => t + cpuSecondsOf(w.pid), 0),
    system: { api: cpuSplitOf(api.pid).system, workers: workers.reduce((t, w) => t + cpuSplitOf(w.pid).system, 0) },
  });
  // Socket reads/writes and event-loop wake-ups per job, API and workers: counts, steadier than CPU time.
  const sysNow = () => {
    const ws = workers.map((w) => syscallsOf(w.pid));
    return { api: syscallsOf(api.pid), workers: { syscalls: ws.reduce((t, w) => t + w.syscalls, 0), wakeups: ws.reduce((t, w) => t + w.wakeups, 0) } };
  };
  type Sys = ReturnType<typeof sysNow>;
  const sysPerJob = (b: Sys, a: Sys, n: number) => ({
    api: { syscalls: round((a.api.syscalls - b.api.syscalls) / n, 2), wakeups: round((a.api.wakeups - b.api.wakeups) / n, 2) },
    workers: { syscalls: round((a.workers.syscalls - b.workers.syscalls) / n, 2), wakeups: round((a.workers.wakeups - b.workers.wakeups) / n, 2) },
  });
  let single = cpuNow();
  let singleSys = sysNow();
  const h1 = await hydra(apiUrl, 300, 1, async () => {
    single = cpuNow();
    singleSys = sysNow();
  });
  const singleAfter = cpuNow();
  const sysOneAtATime = sysPerJob(singleSys, sysNow(), 300);
  const cpuPerJobOneAtATimeMs = round(((singleAfter.api + singleAfter.workers - single.api - single.workers) * 1000) / 300, 3);
  const d = await direct(simUrls);
  const stats = new Redis(redisUrl);
  let before = { cpu: cpuNow(), sys: sysNow(), redis: await redisCounters(stats) };
  const h = await hydra(apiUrl, JOBS, CONC, async () => {
    before = { cpu: cpuNow(), sys: sysNow(), redis: await redisCounters(stats) };
  });
  const after = { cpu: cpuNow(), sys: sysNow(), redis: await redisCounters(stats) };
  const sysLoaded = sysPerJob(before.sys, after.sys, JOBS);
  const perJobMs = (a: number, b: number) => round(((a - b) * 1000) / JOBS, 3);
  // The share of each one's CPU time spent in the kernel (system time), over the loaded run.
  const systemShare = {
    api: round((after.cpu.system.api - before.cpu.system.api) / (after.cpu.api - before.cpu.api), 2),
    workers: round((after.cpu.system.workers - before.cpu.system.workers) / (after.cpu.workers - before.cpu.workers), 2),
  };
  const cpuPerJobMs = { api: perJobMs(after.cpu.api, before.cpu.api), workers: perJobMs(after.cpu.workers, before.cpu.workers), hydra_total: perJobMs(after.cpu.api + after.cpu.workers, before.cpu.api + before.cpu.workers), redis: perJobMs(after.redis.cpuS, before.redis.cpuS) };
  // Redis commands per job on the Hydra path: where the round trips go.
  const perJob = Object.fromEntries(
    [...after.redis.calls]
      .map(([cmd, calls]) => [cmd, round((calls - (before.redis.calls.get(cmd) ?? 0)) / JOBS, 2)] as const)
      .filter(([cmd, n]) => n >= 0.05 && cmd !== 'info')
      .sort((a, b) => b[1] - a[1]),
  );
  const commandsPerJob = round(Object.values(perJob).reduce((t, n) => t + n, 0), 2);
  stats.disconnect();
  const top = await topLevelCommands(redisUrl, apiUrl);
  const ceiling = await bullmqCeiling(redisUrl);
  const result = {
    when: new Date().toISOString(),
    machine: `${(await import('node:os')).cpus().length} cores, Node ${process.version}`,
    jobs: JOBS,
    concurrency: CONC,
    nodes: `${NODES} simulated (fast mode)`,
    history: HISTORY ? 'on (SQLite, the default)' : 'off (MEMORY_URL=off)',
    worker_slots: SLOTS,
    direct: d,
    hydra: h,
    added_latency_ms: { p50: round(h.p50_ms - d.p50_ms), p99: round(h.p99_ms - d.p99_ms) },
    one_at_a_time: { direct: d1, hydra: h1, added_p50_ms: round(h1.p50_ms - d1.p50_ms), added_p99_ms: round(h1.p99_ms - d1.p99_ms) },
    throughput_ratio: round(h.per_second / d.per_second, 3),
    bullmq_noop_ceiling_jobs_per_s: ceiling.per_second,
    redis_commands_per_job: perJob,
    redis_commands_per_job_total: commandsPerJob,
    top_level_commands_per_job: top,
    cpu_ms_per_job: cpuPerJobMs,
    cpu_ms_per_job_one_at_a_time: cpuPerJobOneAtATimeMs,
    cpu_system_share: systemShare,
    syscalls_per_job: sysLoaded,
    syscalls_per_job_one_at_a_time: sysOneAtATime,
  };
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL(`./results/throughput-${Date.now()}.json`, import.meta.url), JSON.stringify(result, null, 2));
  process.stdout.write(`
| path (${JOBS} jobs, ${CONC} in flight, ${NODES} simulated nodes) | jobs/s | p50 ms | p99 ms |
|---|---:|---:|---:|
| straight to the simulated nodes | ${d.per_second} | ${d.p50_ms} | ${d.p99_ms} |
| through Hydra (POST /v1/jobs, wait: true) | ${h.per_second} | ${h.p50_ms} | ${h.p99_ms} |
| added by Hydra | | ${result.added_latency_ms.p50} | ${result.added_latency_ms.p99} |
| one at a time, straight to the nodes (300 jobs) | ${d1.per_second} | ${d1.p50_ms} | ${d1.p99_ms} |
| one at a time, through Hydra (300 jobs) | ${h1.per_second} | ${h1.p50_ms} | ${h1.p99_ms} |
| added by Hydra, one at a time | | ${result.one_at_a_time.added_p50_ms} | ${result.one_at_a_time.added_p99_ms} |

BullMQ no-op ceiling on the same Redis (concurrency 10): ${ceiling.per_second} jobs/s
Redis commands per job through Hydra: ${commandsPerJob} ${JSON.stringify(perJob)}
Top-level commands per job (MONITOR, one at a time): ${top.total} by connection ${JSON.stringify(top.per_job)}; inside Lua ${top.inside_lua} by script ${JSON.stringify(top.inside_lua_by_script)}
  by command: ${JSON.stringify(top.by_command)}
CPU ms per job: API ${cpuPerJobMs.api}, workers ${cpuPerJobMs.workers}, Hydra total ${cpuPerJobMs.hydra_total}, Redis ${cpuPerJobMs.redis}; one at a time, Hydra total ${cpuPerJobOneAtATimeMs}; in the kernel (system time): API ${Math.round(systemShare.api * 100)} %, workers ${Math.round(systemShare.workers * 100)} %
Socket reads+writes per job (system calls): API ${sysLoaded.api.syscalls}, workers ${sysLoaded.workers.syscalls}; one at a time API ${sysOneAtATime.api.syscalls}, workers ${sysOneAtATime.workers.syscalls}
Event-loop wake-ups per job: API ${sysLoaded.api.wakeups}, workers ${sysLoaded.workers.wakeups}; one at a time API ${sysOneAtATime.api.wakeups}, workers ${sysOneAtATime.workers.wakeups}
Ratio to the BullMQ ceiling: ${round(h.per_second / ceiling.per_second, 3)}
`);
}

runBench(main);
