// What scraping GET /metrics every second costs the API at a steady 100 jobs/s: the API process's CPU with and
// without a scraper, in alternating windows side by side, plus the CPU of one scrape measured alone.
//
//   npm run bench:metrics -- [--rate 100] [--window 20] [--rounds 3] [--nodes 2] [--models 4] [--scrapes 300]
//                            [--repeat 3] [--scrape-only] [--warmup 10] [--dump /tmp/metrics.txt]
//
// --scrape-only skips the side-by-side windows (the heavy part): after the warm-up's load it measures one scrape
// alone, each half too (?scope=process, ?scope=cluster), and a scrape sharing another's cluster read, `repeat` blocks
// of `scrapes` each (the median is reported). Back-to-back scrapes send Cache-Control: no-cache, so each reads the
// cluster half as a lone scraper's every second does (the API shares a read between scrapes within 0.5 s).
// The API's CPU at `rate` jobs/s, for the share, is then taken over the warm-up's second half. --dump writes one
// scrape's text to a file.
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
    scrapes: { type: 'string', default: '300' },
    repeat: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '10' },
    'scrape-only': { type: 'boolean', default: false },
    dump: { type: 'string' },
  },
});
const RATE = Number(values.rate);
const WINDOW_S = Number(values.window);
const ROUNDS = Number(values.rounds);
const NODES = Number(values.nodes);
const MODELS = Array.from({ length: Number(values.models) }, (_, i) => `bench-m${i + 1}:1b`);
const SCRAPES = Number(values.scrapes);
const REPEAT = Number(values.repeat);
const WARMUP_S = Number(values.warmup);
const SCRAPE_ONLY = values['scrape-only'];
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

  // `fresh`: Cache-Control: no-cache, so the API reads the cluster half for this scrape even when another scrape's
  // read is under 0.5 s old (CLUSTER_SHARE_MS): what each scrape of a lone scraper every 1 s costs.
  const scrapeOnce = async (path = '/metrics', fresh = true): Promise<{ ms: number; bytes: number; text: string }> => {
    const s = performance.now();
    const r = await pool.request({ method: 'GET', path, headers: fresh ? { 'cache-control': 'no-cache' } : {} });
    const text = await r.body.text();
    if (r.statusCode !== 200) throw new Error(`/metrics answered ${r.statusCode}`);
    return { ms: performance.now() - s, bytes: Buffer.byteLength(text), text };
  };

  const runWindow = async (scraping: boolean): Promise<Window> => {
    const [d0, f0, c0, t0] = [done, failed, cpuSeconds(api.pid!), performance.now()];
    const times: number[] = [];
    const end = t0 + WINDOW_S * 1000;
    while (performance.now() < end) {
      // As Prometheus: no Cache-Control (1 s apart, each scrape reads the cluster half anyway).
      if (scraping) times.push((await scrapeOnce('/metrics', false)).ms);
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

  // Warm-up: every model loaded, every queue created, the JIT warm. The API's CPU over its second half is the
  // reference for --scrape-only (with the windows, the unscraped windows are).
  await sleep((WARMUP_S * 1000) / 2);
  const [wc0, wt0, wd0] = [cpuSeconds(api.pid!), performance.now(), done];
  await sleep((WARMUP_S * 1000) / 2);
  const warm = { api_cpu_pct: round(((cpuSeconds(api.pid!) - wc0) / ((performance.now() - wt0) / 1000)) * 100), jobs_per_s: round((done - wd0) / ((performance.now() - wt0) / 1000)) };
  const windows: Window[] = [];
  for (let r = 0; r < (SCRAPE_ONLY ? 0 : ROUNDS); r++) {
    // Alternate which goes first, so a drift in load favours neither.
    const order = r % 2 === 0 ? [false, true] : [true, false];
    for (const scraping of order) windows.push(await runWindow(scraping));
  }
  loadOn = false;
  await load;
  await until('the load to drain', async () => done + failed >= n, 60_000);

  // One scrape alone, with no load: its CPU in the API, averaged over SCRAPES back to back, less what the idle API
  // spends in as long (its timers and subscriptions), measured just before. REPEAT blocks per path, median kept.
  const sample = await scrapeOnce();
  if (values.dump) writeFileSync(values.dump, sample.text);
  const i0 = cpuSeconds(api.pid!);
  await sleep(5000);
  const idleCpuPerMs = (cpuSeconds(api.pid!) - i0) / 5000;
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  // Blocks of the paths interleaved (all, process, cluster, shared, all, ...), after a warm-up of each, so neither the
  // JIT warming up nor a drift in the machine's load favours one. `shared`: a full scrape within 0.5 s of another,
  // which reuses its cluster read (a second Prometheus, say).
  const PATHS = { all: '/metrics', process: '/metrics?scope=process', cluster: '/metrics?scope=cluster', shared: '/metrics' } as const;
  type PathKey = keyof typeof PATHS;
  const blocks: Record<PathKey, number[]> = { all: [], process: [], cluster: [], shared: [] };
  const walls: Record<PathKey, number[]> = { all: [], process: [], cluster: [], shared: [] };
  for (const [k, path] of Object.entries(PATHS)) for (let i = 0; i < 100; i++) await scrapeOnce(path, k !== 'shared');
  for (let b = 0; b < REPEAT; b++) {
    for (const [k, path] of Object.entries(PATHS) as [PathKey, string][]) {
      const c0 = cpuSeconds(api.pid!);
      const t0 = performance.now();
      for (let i = 0; i < SCRAPES; i++) await scrapeOnce(path, k !== 'shared');
      const wall = performance.now() - t0;
      blocks[k].push(round(((cpuSeconds(api.pid!) - c0 - idleCpuPerMs * wall) / SCRAPES) * 1000, 3));
      walls[k].push(wall / SCRAPES);
    }
  }
  const alone = async (k: PathKey) => {
    const text = (await scrapeOnce(PATHS[k])).text;
    return { api_cpu_ms: median(blocks[k]), blocks: blocks[k], wall_ms: round(median(walls[k]), 3), bytes: Buffer.byteLength(text), samples: text.split('\n').filter((l) => l && !l.startsWith('#')).length };
  };
  const full = await alone('all');
  const processHalf = await alone('process');
  const clusterHalf = await alone('cluster');
  const shared = await alone('shared');
  const perScrapeCpuMs = full.api_cpu_ms;
  const perScrapeWallMs = full.wall_ms;
  await pool.close();

  const sum = (ws: Window[], k: 'api_cpu_s' | 'seconds' | 'jobs_done' | 'jobs_failed') => ws.reduce((a, w) => a + w[k], 0);
  const off = windows.filter((w) => !w.scraping);
  const on = windows.filter((w) => w.scraping);
  // Without windows (--scrape-only) the API's CPU at RATE comes from the warm-up's second half.
  const offPct = off.length ? (sum(off, 'api_cpu_s') / sum(off, 'seconds')) * 100 : warm.api_cpu_pct;
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
    warmup_second_half: warm,
    windows,
    jobs_per_s: { off: round(sum(off, 'jobs_done') / sum(off, 'seconds')), on: round(sum(on, 'jobs_done') / sum(on, 'seconds')) },
    jobs_failed: sum(windows, 'jobs_failed'),
    ...(firstFailure ? { first_failure: firstFailure } : {}),
    api_cpu_pct_of_a_core: { off: round(offPct), on: round(onPct), difference: round(onPct - offPct) },
    scraping_cost_pct_of_api_cpu_side_by_side: round(((onPct - offPct) / offPct) * 100),
    api_cpu_ms_per_job: { off: round(perJobOffMs, 3), on: round(perJobOnMs, 3) },
    scraping_cost_pct_of_api_cpu_per_job_adjusted: round((beyondJobs / sum(on, 'api_cpu_s')) * 100),
    one_scrape_alone: { api_cpu_ms: round(perScrapeCpuMs, 3), wall_ms: round(perScrapeWallMs, 3), bytes: sample.bytes, samples: series, idle_api_cpu_pct: round(idleCpuPerMs * 100 * 1000) },
    one_scrape_alone_by_path: { all: full, process: processHalf, cluster: clusterHalf, shared_cluster_read: shared },
    // A scrape a second costs perScrapeCpuMs of CPU per second: as a share of what the API spends at RATE jobs/s.
    scraping_cost_pct_of_api_cpu_from_one_scrape: round((perScrapeCpuMs / 1000 / (offPct / 100)) * 100),
  };
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL(`./results/metrics-scrape-${Date.now()}.json`, import.meta.url), JSON.stringify(result, null, 2));
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  const byPath = result.one_scrape_alone_by_path;
  const windowsTable = `
| ${RATE} jobs/s through the API, ${NODES} simulated nodes, ${MODELS.length} models | API CPU (% of a core) | jobs/s done |
|---|---:|---:|
| no scraper (${off.length} × ${WINDOW_S} s) | ${result.api_cpu_pct_of_a_core.off} | ${result.jobs_per_s.off} |
| GET /metrics every 1 s (${on.length} × ${WINDOW_S} s) | ${result.api_cpu_pct_of_a_core.on} | ${result.jobs_per_s.on} |
| difference | ${result.api_cpu_pct_of_a_core.difference} (${result.scraping_cost_pct_of_api_cpu_side_by_side} % of the API's CPU) | |

API CPU per completed job: ${result.api_cpu_ms_per_job.off} ms without the scraper, ${result.api_cpu_ms_per_job.on} ms with it
→ scraping, after the jobs at the unscraped cost: ${result.scraping_cost_pct_of_api_cpu_per_job_adjusted} % of the API's CPU
`;
  process.stdout.write(`${off.length ? windowsTable : `\nAPI at ${RATE} jobs/s (warm-up's second half, no scraper): ${warm.api_cpu_pct} % of a core, ${warm.jobs_per_s} jobs/s done\n`}
One scrape alone (${REPEAT} × ${SCRAPES} back to back, no load, median): ${result.one_scrape_alone.api_cpu_ms} ms of API CPU (blocks: ${full.blocks.join(', ')}), ${result.one_scrape_alone.wall_ms} ms wall, ${sample.bytes} bytes, ${series} samples
  ?scope=process: ${byPath.process.api_cpu_ms} ms (${byPath.process.bytes} bytes, ${byPath.process.samples} samples); ?scope=cluster: ${byPath.cluster.api_cpu_ms} ms (${byPath.cluster.bytes} bytes, ${byPath.cluster.samples} samples)
  a full scrape sharing another's cluster read (within 0.5 s): ${byPath.shared_cluster_read.api_cpu_ms} ms (blocks: ${shared.blocks.join(', ')})
→ a scrape a second = ${result.scraping_cost_pct_of_api_cpu_from_one_scrape} % of the API's CPU at ${RATE} jobs/s (load average ${result.load_average_at_end.join(' / ')})
`);
}

runBench(main);
