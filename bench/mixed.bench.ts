// Scheduling on a mixed fleet: one seeded workload (Poisson arrivals at a fraction of capacity, Zipf popularity over six
// models) through Hydra and through baseline routers (random, least-busy, nginx round-robin), each in front of fresh
// simulated Ollama nodes (2×8, 2×24, 48, 80 GB), one after the other in one run.
//
//   npm run bench:mixed -- [--seed 1] [--requests N] [--load 0.8] [--time-scale 5] [--repeat 1] [--routers hydra,random,least-busy,nginx]
//
// Durations are simulated ÷ time scale; every figure printed is real-time equivalent (wall × time scale).
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { NODES, SIM_SPEED, estimateCapacity, fits, popularity } from './mixed/fleet-spec.js';
import { scaledWaits, slotsFor } from './mixed/hydra-cluster.js';
import { commonSet, failuresText, ratios, routerStats, spread, table } from './mixed/report.js';
import { ROUTER_KINDS, runRouter, type RouterKind, type RouterRun } from './mixed/run-router.js';
import { detectSimFeatures, effectiveSpeed, measureNeeds, startFleet } from './mixed/sim-fleet.js';
import { MEAN_NUM_PREDICT, NUM_PREDICT_MAX, NUM_PREDICT_MIN, PROMPT_TOKENS, generateWorkload } from './mixed/workload.js';
import { runBench, startRedis } from './support.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: '1' },
    requests: { type: 'string' },
    load: { type: 'string', default: '0.8' },
    'time-scale': { type: 'string', default: '5' },
    repeat: { type: 'string', default: '1' },
    routers: { type: 'string', default: ROUTER_KINDS.join(',') },
  },
});
const SEED = Number(values.seed);
const LOAD = Number(values.load);
const K = Number(values['time-scale']);
const REPEAT = Math.max(1, Number(values.repeat));
const ROUTERS = values.routers.split(',').map((r) => r.trim()) as RouterKind[];
/** Without --requests: as many as arrive in this much real time. */
const DEFAULT_SPAN_S = 600;
for (const r of ROUTERS) if (!ROUTER_KINDS.includes(r)) throw new Error(`--routers: unknown router "${r}" (choose from ${ROUTER_KINDS.join(', ')})`);
if (!(K >= 1) || !(LOAD > 0) || !Number.isInteger(SEED)) throw new Error('--time-scale must be ≥ 1, --load > 0, --seed an integer');

const log = (line: string): void => void process.stderr.write(`[mixed] ${line}\n`);

async function main(): Promise<void> {
  const features = await detectSimFeatures();
  const speed = effectiveSpeed(SIM_SPEED, features);
  log(`simulator flags available: ${features.available.join(', ') || 'none'}`);
  for (const n of features.notes) log(n);

  const first = await startFleet({ features, speed, timeScale: K });
  const needs = await measureNeeds(first, speed);
  const capacity = estimateCapacity(needs, speed, MEAN_NUM_PREDICT, PROMPT_TOKENS);
  const rate = LOAD * capacity.requestsPerS;
  const nRequests = values.requests ? Number(values.requests) : Math.round(DEFAULT_SPAN_S * rate);
  const requests = generateWorkload({ seed: SEED, requests: nRequests, ratePerS: rate });
  const spanS = requests.at(-1)!.atS;
  log(`capacity ≈ ${capacity.requestsPerS.toFixed(3)} requests/s (${capacity.how})`);
  log(`workload: ${nRequests} requests at ${rate.toFixed(3)}/s (load ${LOAD}) over ${spanS.toFixed(0)} s real-time equivalent = ${(spanS / K).toFixed(0)} s wall at time scale ${K}`);

  const redisUrl = ROUTERS.includes('hydra') ? await startRedis() : '';
  const ctx = { features, speed, timeScale: K, needs, requests, redisUrl, seed: SEED, maxRequestMs: Math.max(60_000, 1_800_000 / K), log };
  const order: Array<[RouterKind, string]> = [];
  for (const kind of ROUTERS) {
    if (kind === 'hydra') for (let r = 1; r <= REPEAT; r++) order.push([kind, r === 1 ? 'hydra' : `hydra#${r}`]);
    else order.push([kind, kind]);
  }
  const runs: RouterRun[] = [];
  let fresh: typeof first | undefined = first;
  for (const [kind, name] of order) {
    const run = await runRouter(kind, name, ctx, fresh);
    if (!run.skipped) fresh = undefined;
    if (run.skipped) log(`${name}: ${run.skipped}`);
    runs.push(run);
  }
  if (fresh) await fresh.stop();

  const common = commonSet(runs);
  const stats = runs.map((r) => routerStats(r, common, K));
  const hydra = stats.find((s) => s.name === 'hydra');
  const baselines = stats.filter((s) => s.kind !== 'hydra');
  const vs = hydra ? ratios(hydra, baselines) : null;
  const hydraRuns = stats.filter((s) => s.kind === 'hydra');
  const p95Spread = { all: spread(hydraRuns.map((s) => s.latency_s.p95)), common: spread(hydraRuns.map((s) => s.latency_common_s.p95)) };
  const redisVersion = (() => {
    try {
      return /v=(\S+)/.exec(execFileSync('redis-server', ['--version']).toString())?.[1] ?? 'unknown';
    } catch {
      return 'unknown';
    }
  })();

  const result = {
    when: new Date().toISOString(),
    command: `npm run bench:mixed -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, Redis ${redisVersion}`,
    units: `durations are real-time equivalent: wall-clock × time scale ${K}`,
    time_scale: K,
    simulator: { flags_available: features.available, flags_missing: features.missing, notes: features.notes, args: {} as Record<string, string[]> },
    seed: SEED,
    load: LOAD,
    capacity: { requests_per_s: Math.round(capacity.requestsPerS * 1000) / 1000, placement: capacity.placement, how: capacity.how },
    arrival_rate_per_s: Math.round(rate * 1000) / 1000,
    requests: nRequests,
    span_s: Math.round(spanS),
    workload: {
      popularity: popularity(),
      requests_by_model: Object.fromEntries(Object.keys(popularity()).map((m) => [m, requests.filter((r) => r.model === m).length])),
      num_predict: `log-uniform ${NUM_PREDICT_MIN}-${NUM_PREDICT_MAX} tokens (mean ${Math.round(MEAN_NUM_PREDICT)})`,
      prompt_tokens: PROMPT_TOKENS,
    },
    fleet: NODES.map((n) => ({ ...n, runnable: n.models.filter((m) => fits(n, m, needs)), hydra_slots: slotsFor(n, needs, speed) })),
    needs_mib: needs,
    speed,
    hydra_env: scaledWaits(K),
    common_set: common.size,
    routers: stats,
    vs_best_baseline: vs,
    hydra_p95_spread: { runs: hydraRuns.length, ...p95Spread, target: '≤ 0.15 ((max − min) / median)' },
    /** Every request of every run, wall-clock ms (× time scale for real-time equivalent). */
    outcomes: Object.fromEntries(runs.map((r) => [r.name, r.outcomes])),
  };
  result.simulator.args = first.args;
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  const file = new URL(`./results/mixed-${Date.now()}.json`, import.meta.url);
  writeFileSync(file, JSON.stringify(result, null, 2));

  const fmt = (r: NonNullable<typeof vs>[string]): string =>
    r.ratio === null ? 'n/a (no baseline ran)' : `${r.hydra} vs ${r.best_baseline} (${r.baseline}) = ${r.ratio}×, target ${r.target}: ${r.met ? 'met' : 'MISSED'}`;
  process.stdout.write(`
Mixed fleet of SIMULATED Ollama nodes (2×8, 2×24, 48, 80 GB), ${nRequests} requests, seed ${SEED}, load ${LOAD} of ~${capacity.requestsPerS.toFixed(2)} req/s capacity.
All durations are real-time-equivalent seconds (wall-clock × time scale ${K}). ${features.nativeTimeScale ? '' : 'Time scale emulated through the speed flags (no --time-scale in this simulator). '}
${features.notes.length ? `Simulator flags missing: ${features.missing.map((f) => `--${f}`).join(', ')} (see the JSON for what that changes).\n` : ''}
${table(stats)}

Common set (completed by every router that ran): ${common.size} of ${nRequests}.
${failuresText(stats)}
${vs ? `
Hydra vs the best baseline:
- p95 on the common set: ${fmt(vs.p95_common!)}
- throughput (tokens/s): ${fmt(vs.throughput_tokens!)}
- model loads: ${fmt(vs.model_loads!)}
- misplaced requests: ${fmt(vs.misplaced!)}` : ''}
- Hydra p95 run-to-run spread: ${hydraRuns.length < 2 ? 'n/a (use --repeat N)' : `all ${p95Spread.all}, common ${p95Spread.common} over ${hydraRuns.length} runs (target ≤ 0.15)`}
${features.missing.includes('ram-gb') ? '- offloaded loads: not reported by this simulator (no --ram-gb); OOM errors counted instead\n' : ''}
Written to ${file.pathname}
`);
}

runBench(main);
