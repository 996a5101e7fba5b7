// What scraping GET /metrics every second costs the API at a steady 100 jobs/s: the API process's CPU with and
// without a scraper, in alternating windows side by side, plus the CPU of one scrape measured alone.
//
//   npm run bench:metrics -- [--rate 100] [--window 20] [--rounds 3] [--nodes 2] [--models 4] [--scrapes 200]
//
// Everything runs on this machine: a private redis-server, simulated Ollama nodes in fast mode (labelled simulated),
// the API and one worker per node as child processes, and this client (an open-loop load of `rate` jobs/s through
// POST /v1/jobs with wait: true). API CPU is read from /proc/<pid>/stat (utime + stime) at each window's edges.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { HYDRA_BIN, child, runBench, freePort, round, startRedis, until } from './support.js';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '100' },
    window: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '3' },
    nodes: { type: 'string', default: '2' },
    models: { type: 'string', default: '4' },
    scrapes: { type: 'string', default: '200' },
  },
});
const RATE = Number(values.rate);
const WINDOW_S = Number(values.window);
const ROUNDS = Number(values.rounds);
const NODES = Number(values.nodes);
const MODELS = Array.from({ length: Number(values.models) }, (_, i) => `bench-m${i + 1}:1b`);
const SCRAPES = Number(values.scrapes);
/** Linux's USER_HZ: /proc times are in 1/100 s. */
const TICKS_PER_S = 100;

/** CPU seconds (user + system) the process has used so far. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at ") "; utime and stime are fields 14 and 15.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / TICKS_PER_S;
}

interface Window {
  scraping: boolean;
  seconds: number;
  api_cpu_s: number;
  api_cpu_pct: number;
  jobs_done: number;
  jobs_failed: number;
  scrapes: number;
  scrape_ms_p50: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  if (process.platform !== 'linux') throw new Error('this bench reads /proc/<pid>/stat: Linux only');
  const redisUrl = await startRedis();
  const simUrls: string[] = [];
  for (let i = 0; i < NODES; i++) {
    const port = await freePort();
    child(process.execPath, [HYDRA_BIN, 'sim', '--port', String(port), '--vram-gb', '24', '--models', MODELS.map((m) => `${m}=1`).join(','), '--fast', '--parallel', '4', '--log-level', 'warn']);
    simUrls.push(`http://127.0.0.1:${port}`);
  }
  for (const u of simUrls) await until(`sim ${u}`, async () => (await fetch(`${u}/api/version`)).ok);
  const apiPort = await freePort();
  const env = { REDIS_URL: redisUrl, LOG_LEVEL: 'warn', PORT: String(apiPort), WORKER_CONCURRENCY: '16', NUM_PARALLEL: '4' };
  const api = child(process.execPath, [HYDRA_BIN, 'api'], env);
  simUrls.forEach((u, i) => child(process.execPath, [HYDRA_BIN, 'worker'], { ...env, BACKEND: 'ollama', OLLAMA_URL: u, NODE_ID: `sim-${i + 1}`, NODE_VRAM_GB: '24' }));
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  await until('all workers registered', async () => ((await (await fetch(`${apiUrl}/v1/nodes`)).json()) as { nodes: unknown[] }).nodes.length === NODES);

  const pool = new Pool(apiUrl, { connections: 128 });
  let done = 0;
  let failed = 0;
  let firstFailure = '';
  let n = 0;
  const one = async () => {
    const i = n++;
    const body = { type: 'generate', model: MODELS[i % MODELS.length], prompt: `metrics bench job ${i}`, options: { num_predict: 4 }, wait: true };
    try {
      const r = await pool.request({ method: 'POST', path: '/v1/jobs', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const j = (await r.body.json()) as { state?: string };
      if (r.statusCode === 200 && j.state === 'completed') done++;
      else {
        failed++;
        firstFailure ||= `${r.statusCode} ${JSON.stringify(j).slice(0, 300)}`;
      }
    } catch (e) {
      failed++;
      firstFailure ||= (e as Error).message;
    }
  };
  // Open loop: `RATE` jobs a second in ticks of 50 ms, whatever the answers do.
  let loadOn = true;
  const load = (async () => {
    const t0 = performance.now();
    let sent = 0;
    while (loadOn) {
      const due = Math.floor(((performance.now() - t0) / 1000) * RATE);
      for (; sent < due; sent++) void one();
      await sleep(50);
    }
  })();

  const scrapeOnce = async (): Promise<{ ms: number; bytes: number; text: string }> => {
    const s = performance.now();
    const r = await pool.request({ method: 'GET', path: '/metrics' });
    const text = await r.body.text();
    if (r.statusCode !== 200) throw new Error(`/metrics answered ${r.statusCode}`);
    return { ms: performance.now() - s, bytes: Buffer.byteLength(text), text };
  };

  const runWindow = async (scraping: boolean): Promise<Window> => {
    const [d0, f0, c0, t0] = [done, failed, cpuSeconds(api.pid!), performance.now()];
    const times: number[] = [];
    const end = t0 + WINDOW_S * 1000;
    while (performance.now() < end) {
      if (scraping) times.push((await scrapeOnce()).ms);
      // Prometheus' scrape_interval: 1 s.
      await sleep(Math.max(0, Math.min(1000, end - performance.now())));
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(api.pid!) - c0;
    times.sort((a, b) => a - b);
    return {
      scraping,
      seconds: round(seconds),
      api_cpu_s: round(cpu, 3),
      api_cpu_pct: round((cpu / seconds) * 100),
      jobs_done: done - d0,
      jobs_failed: failed - f0,
      scrapes: times.length,
      scrape_ms_p50: round(times[Math.floor(times.length / 2)] ?? 0),
    };
  };

  // Warm-up: every model loaded, every queue created, the JIT warm.
  await sleep(10_000);
  const windows: Window[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate which goes first, so a drift in load favours neither.
    const order = r % 2 === 0 ? [false, true] : [true, false];
    for (const scraping of order) windows.push(await runWindow(scraping));
  }
  loadOn = false;
  await load;
  await until('the load to drain', async () => done + failed >= n, 60_000);

  // One scrape alone, with no load: its CPU in the API, averaged over SCRAPES back to back, less what the idle API
  // spends in as long (its timers and subscriptions), measured just before.
  const sample = await scrapeOnce();
  const i0 = cpuSeconds(api.pid!);
  await sleep(5000);
  const idleCpuPerMs = (cpuSeconds(api.pid!) - i0) / 5000;
  const c0 = cpuSeconds(api.pid!);
  const t0 = performance.now();
  for (let i = 0; i < SCRAPES; i++) await scrapeOnce();
  const wall = performance.now() - t0;
  const perScrapeCpuMs = ((cpuSeconds(api.pid!) - c0 - idleCpuPerMs * wall) / SCRAPES) * 1000;
  const perScrapeWallMs = wall / SCRAPES;
  await pool.close();

  const sum = (ws: Window[], k: 'api_cpu_s' | 'seconds' | 'jobs_done' | 'jobs_failed') => ws.reduce((a, w) => a + w[k], 0);
  const off = windows.filter((w) => !w.scraping);
  const on = windows.filter((w) => w.scraping);
  const offPct = (sum(off, 'api_cpu_s') / sum(off, 'seconds')) * 100;
  const onPct = (sum(on, 'api_cpu_s') / sum(on, 'seconds')) * 100;
  // The open loop does not hold exactly RATE on a busy machine, and the API's CPU follows the jobs it serves: compare
  // per job too. Scraping's share = what the scraped windows spent beyond their jobs at the unscraped cost per job.
  const perJobOffMs = (sum(off, 'api_cpu_s') / Math.max(1, sum(off, 'jobs_done'))) * 1000;
  const perJobOnMs = (sum(on, 'api_cpu_s') / Math.max(1, sum(on, 'jobs_done'))) * 1000;
  const beyondJobs = sum(on, 'api_cpu_s') - (sum(on, 'jobs_done') * perJobOffMs) / 1000;
  const series = sample.text.split('\n').filter((l) => l && !l.startsWith('#')).length;
  const result = {
    when: new Date().toISOString(),
    machine: `${cpus().length} cores, Node ${process.version}`,
    // Other work on the machine moves every number here; this says how busy it was (1, 5, 15 min).
    load_average_at_end: loadavg().map((l) => round(l, 1)),
    setup: { rate_jobs_per_s: RATE, window_s: WINDOW_S, rounds: ROUNDS, nodes: `${NODES} simulated (fast mode)`, models: MODELS.length },
    windows,
    jobs_per_s: { off: round(sum(off, 'jobs_done') / sum(off, 'seconds')), on: round(sum(on, 'jobs_done') / sum(on, 'seconds')) },
    jobs_failed: sum(windows, 'jobs_failed'),
    ...(firstFailure ? { first_failure: firstFailure } : {}),
    api_cpu_pct_of_a_core: { off: round(offPct), on: round(onPct), difference: round(onPct - offPct) },
    scraping_cost_pct_of_api_cpu_side_by_side: round(((onPct - offPct) / offPct) * 100),
    api_cpu_ms_per_job: { off: round(perJobOffMs, 3), on: round(perJobOnMs, 3) },
    scraping_cost_pct_of_api_cpu_per_job_adjusted: round((beyondJobs / sum(on, 'api_cpu_s')) * 100),
    one_scrape_alone: { api_cpu_ms: round(perScrapeCpuMs, 3), wall_ms: round(perScrapeWallMs, 3), bytes: sample.bytes, samples: series, idle_api_cpu_pct: round(idleCpuPerMs * 100 * 1000) },
    // A scrape a second costs perScrapeCpuMs of CPU per second: as a share of what the API spends at RATE jobs/s.
    scraping_cost_pct_of_api_cpu_from_one_scrape: round((perScrapeCpuMs / 1000 / (offPct / 100)) * 100),
  };
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL(`./results/metrics-scrape-${Date.now()}.json`, import.meta.url), JSON.stringify(result, null, 2));
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`
| ${RATE} jobs/s through the API, ${NODES} simulated nodes, ${MODELS.length} models | API CPU (% of a core) | jobs/s done |
|---|---:|---:|
| no scraper (${off.length} × ${WINDOW_S} s) | ${result.api_cpu_pct_of_a_core.off} | ${result.jobs_per_s.off} |
| GET /metrics every 1 s (${on.length} × ${WINDOW_S} s) | ${result.api_cpu_pct_of_a_core.on} | ${result.jobs_per_s.on} |
| difference | ${result.api_cpu_pct_of_a_core.difference} (${result.scraping_cost_pct_of_api_cpu_side_by_side} % of the API's CPU) | |

API CPU per completed job: ${result.api_cpu_ms_per_job.off} ms without the scraper, ${result.api_cpu_ms_per_job.on} ms with it
→ scraping, after the jobs at the unscraped cost: ${result.scraping_cost_pct_of_api_cpu_per_job_adjusted} % of the API's CPU (load average ${result.load_average_at_end.join(' / ')})

One scrape alone (${SCRAPES} back to back, no load): ${result.one_scrape_alone.api_cpu_ms} ms of API CPU, ${result.one_scrape_alone.wall_ms} ms wall, ${sample.bytes} bytes, ${series} samples
→ a scrape a second = ${result.scraping_cost_pct_of_api_cpu_from_one_scrape} % of the API's CPU at ${RATE} jobs/s
`);
}

runBench(main);
