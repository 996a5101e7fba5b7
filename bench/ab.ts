// Side by side: bench:throughput (or, with --bench ollama, bench:ollama's time to first token) on two commits,
// alternating, with the medians of the paired ratios.
//
//   npm run bench:ab -- <base> <candidate> [--pairs 5] [--jobs 2000]
//   npm run bench:ab -- <base> <candidate> --bench ollama [--pairs 5] [--runs 30]
//
// On a shared VM a run's CPU per job moves by ±15 % with nothing changed (bench/README.md, "The hot path"), so one run
// of each says little. This checks both commits out as git worktrees under tmp/ab/ (node_modules linked from this
// checkout), runs this checkout's bench/throughput.bench.ts (or ollama-ttft.bench.ts) in each (so both are measured the same way) in turns
// A, B, A, B..., and reports each pair's ratio B/A and the median ratio of every figure. A ratio below 1 is less.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { median } from './support.js';

const root = new URL('..', import.meta.url).pathname;
const { values, positionals } = parseArgs({ allowPositionals: true, options: { pairs: { type: 'string', default: '5' }, jobs: { type: 'string', default: '2000' }, bench: { type: 'string', default: 'throughput' }, runs: { type: 'string', default: '30' } } });
if (positionals.length !== 2) {
  process.stderr.write('usage: npm run bench:ab -- <base commit> <candidate commit> [--pairs 5] [--jobs 2000] [--bench throughput|ollama] [--runs 30]\n');
  process.exit(2);
}
const pairs = Number(values.pairs);
if (!Number.isInteger(pairs) || pairs < 1) throw new Error(`--pairs must be a whole number ≥ 1, got ${values.pairs}`);
const ttft = values.bench === 'ollama';
if (!ttft && values.bench !== 'throughput') throw new Error(`--bench must be throughput or ollama, got ${values.bench}`);
const BENCH = ttft ? { file: 'ollama-ttft.bench.ts', prefix: 'ollama-ttft-', args: ['--runs', values.runs!] } : { file: 'throughput.bench.ts', prefix: 'throughput-', args: ['--jobs', values.jobs!] };

const git = (...args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8' }).trim();

function worktree(rev: string): { sha: string; dir: string } {
  const sha = git('rev-parse', '--verify', `${rev}^{commit}`);
  const dir = join(root, 'tmp', 'ab', sha.slice(0, 12));
  if (!existsSync(dir)) {
    mkdirSync(join(root, 'tmp', 'ab'), { recursive: true });
    git('worktree', 'add', '--detach', '-f', dir, sha);
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  }
  copyFileSync(join(root, 'bench', BENCH.file), join(dir, 'bench', BENCH.file));
  copyFileSync(join(root, 'bench', 'support.ts'), join(dir, 'bench', 'support.ts'));
  return { sha, dir };
}

interface Result {
  hydra: { per_second: number };
  one_at_a_time: { added_p50_ms: number };
  cpu_ms_per_job: { api: number; workers: number; hydra_total: number; redis: number };
  cpu_ms_per_job_one_at_a_time?: number;
  top_level_commands_per_job?: { total: number };
  syscalls_per_job?: SysCounts;
  syscalls_per_job_one_at_a_time?: SysCounts;
}
/** bench:ollama's result. */
interface TtftResult {
  direct_ttft_ms_median: number;
  hydra_ttft_ms_median: number;
  added_ttft_ms_median: number;
  hydra_stages_ms_median: Record<'to_submitted' | 'to_taken' | 'to_first_entry' | 'to_client', number>;
}
type SysCounts = Record<'api' | 'workers', { syscalls: number; wakeups: number }>;

function runOnce(dir: string): Result & TtftResult {
  const before = new Set(existsSync(join(dir, 'bench', 'results')) ? readdirSync(join(dir, 'bench', 'results')) : []);
  const r = spawnSync(process.execPath, ['--import', 'tsx', `bench/${BENCH.file}`, ...BENCH.args], { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bench failed in ${dir}:\n${r.stdout}\n${r.stderr}`);
  const fresh = readdirSync(join(dir, 'bench', 'results')).filter((f) => f.startsWith(BENCH.prefix) && !before.has(f));
  if (fresh.length !== 1) throw new Error(`expected one new result file in ${dir}/bench/results, found ${fresh.length}`);
  return JSON.parse(readFileSync(join(dir, 'bench', 'results', fresh[0]!), 'utf8')) as Result & TtftResult;
}

const throughputFigures: [string, (r: Result) => number | undefined][] = [
  ['jobs/s (32 in flight)', (r) => r.hydra.per_second],
  ['added p50 ms, one at a time', (r) => r.one_at_a_time.added_p50_ms],
  ['CPU ms/job API', (r) => r.cpu_ms_per_job.api],
  ['CPU ms/job workers', (r) => r.cpu_ms_per_job.workers],
  ['CPU ms/job Hydra total', (r) => r.cpu_ms_per_job.hydra_total],
  ['CPU ms/job Redis', (r) => r.cpu_ms_per_job.redis],
  ['CPU ms/job Hydra, one at a time', (r) => r.cpu_ms_per_job_one_at_a_time],
  ['top-level commands/job', (r) => r.top_level_commands_per_job?.total],
  ['syscalls/job workers', (r) => r.syscalls_per_job?.workers.syscalls],
  ['syscalls/job API', (r) => r.syscalls_per_job?.api.syscalls],
  ['syscalls/job workers, one at a time', (r) => r.syscalls_per_job_one_at_a_time?.workers.syscalls],
  ['syscalls/job API, one at a time', (r) => r.syscalls_per_job_one_at_a_time?.api.syscalls],
  ['wake-ups/job workers', (r) => r.syscalls_per_job?.workers.wakeups],
  ['wake-ups/job API', (r) => r.syscalls_per_job?.api.wakeups],
];
const ttftFigures: [string, (r: TtftResult) => number | undefined][] = [
  ['TTFT ms straight to the node', (r) => r.direct_ttft_ms_median],
  ['TTFT ms through Hydra', (r) => r.hydra_ttft_ms_median],
  ['TTFT ms added by Hydra', (r) => r.added_ttft_ms_median],
  ['request → job stamped, ms', (r) => r.hydra_stages_ms_median.to_submitted],
  ['→ a worker took it, ms', (r) => r.hydra_stages_ms_median.to_taken],
  ['→ first token in Redis, ms', (r) => r.hydra_stages_ms_median.to_first_entry],
  ['→ the client read it, ms', (r) => r.hydra_stages_ms_median.to_client],
];
const figures = (ttft ? ttftFigures : throughputFigures) as [string, (r: Result & TtftResult) => number | undefined][];

const fmt = (x: number | undefined, d = 2) => (x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(d));

const a = worktree(positionals[0]!);
const b = worktree(positionals[1]!);
const runs: { a: Result & TtftResult; b: Result & TtftResult }[] = [];
for (let i = 0; i < pairs; i++) {
  const ra = runOnce(a.dir);
  const rb = runOnce(b.dir);
  runs.push({ a: ra, b: rb });
  process.stderr.write(
    ttft
      ? `pair ${i + 1}/${pairs}: added TTFT ms ${fmt(ra.added_ttft_ms_median)} -> ${fmt(rb.added_ttft_ms_median)}\n`
      : `pair ${i + 1}/${pairs}: Hydra CPU ms/job ${fmt(ra.cpu_ms_per_job.hydra_total)} -> ${fmt(rb.cpu_ms_per_job.hydra_total)}\n`,
  );
}
const lines = [`A = ${a.sha.slice(0, 7)}, B = ${b.sha.slice(0, 7)}; ${pairs} pairs, ${BENCH.file} ${BENCH.args.join(' ')}, run in turns A, B`, '', '| figure | median A | median B | median of B/A per pair | B/A per pair |', '|---|---:|---:|---:|---|'];
for (const [name, get] of figures) {
  const as = runs.map((r) => get(r.a)).filter((x): x is number => x !== undefined);
  const bs = runs.map((r) => get(r.b)).filter((x): x is number => x !== undefined);
  const ratios = runs.flatMap((r) => {
    const x = get(r.a);
    const y = get(r.b);
    return x !== undefined && y !== undefined && x > 0 ? [y / x] : [];
  });
  lines.push(`| ${name} | ${as.length ? fmt(median(as)) : '—'} | ${bs.length ? fmt(median(bs)) : '—'} | ${ratios.length ? fmt(median(ratios), 3) : '—'} | ${ratios.map((x) => fmt(x, 2)).join(' ')} |`);
}
process.stdout.write(`${lines.join('\n')}\n`);
