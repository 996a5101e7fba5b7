// What cache: "semantic" costs and saves, side by side in one run: a cluster (the API, one worker, one simulated node
// in fast mode with a generate model and an embed model, the history in SQLite with vectors), `--stored` deterministic
// answers stored and embedded first; then, interleaved one at a time (`--rounds` each):
//   job          a new prompt, cache: false            (the job runs: the baseline)
//   miss         a new prompt, cache: "semantic"       (lookup, no match, then the job runs)
//   hit          a stored prompt reworded a little, cache: "semantic"  (answered from memory, no job)
//   exact        a stored request repeated exactly, cache unset        (the L1 cache)
// The lookup's added latency is miss − job (medians). A "hit" rewording only appends a word: it shows the cost of a hit,
// not how often real paraphrases hit (that is test/semantic-cache.int.test.ts, on a labelled set). The simulated node answers at once, so "job" is Hydra's own
// path; on a real GPU the job costs seconds, and the lookup's share is the embed model's time for one text.
//
//   npm run bench:semantic-cache -- [--stored 1000] [--rounds 200]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startCluster, startSimProcess } from './cluster-probe.js';
import { round, runBench, startRedis, until } from './support.js';

const { values } = parseArgs({ options: { stored: { type: 'string', default: '1000' }, rounds: { type: 'string', default: '200' } } });
const STORED = Number(values.stored);
const ROUNDS = Number(values.rounds);
const EMBED = 'nomic-embed-text';
const TOPICS = ['rust', 'python', 'kubernetes', 'postgres', 'redis', 'linux', 'docker', 'react', 'golang', 'terraform', 'nginx', 'kafka'];
const VERBS = ['configure', 'debug', 'monitor', 'upgrade', 'secure', 'benchmark', 'deploy', 'migrate', 'profile', 'test'];
const THINGS = ['connection pool', 'memory limit', 'log rotation', 'backup schedule', 'retry policy', 'cache layer', 'rate limiter', 'health check', 'worker queue', 'build pipeline'];
/** Distinct, realistic prompts: topic × verb × thing × a number, so that none is another's paraphrase. */
const prompt = (i: number) => `how do I ${VERBS[i % VERBS.length]} the ${THINGS[Math.floor(i / VERBS.length) % THINGS.length]} of a ${TOPICS[Math.floor(i / 100) % TOPICS.length]} service number ${i}`;
const OPTIONS = { temperature: 0, num_predict: 8 };

function stats(ms: number[]) {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { n: s.length, p50_ms: round(q(0.5)), p99_ms: round(q(0.99)) };
}

runBench(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hydra-bench-semantic-'));
  try {
    const redisUrl = await startRedis();
    const { urls } = await startSimProcess(1, ['--vram-gb', '24', '--models', `m=1,${EMBED}=0.27:768`, '--fast']);
    const { apiUrl } = await startCluster(redisUrl, urls, { MEMORY_URL: `sqlite:${join(dir, 'history.sqlite')}`, MEMORY_EMBED_MODEL: EMBED, CACHE_TTL_S: '3600' });
    const post = async (body: Record<string, unknown>) => {
      const t0 = performance.now();
      const r = await fetch(`${apiUrl}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'generate', model: 'm', options: OPTIONS, wait: true, ...body }) });
      const json = (await r.json()) as { cached?: unknown; state?: string };
      if (r.status !== 200) throw new Error(`POST /v1/jobs answered ${r.status}: ${JSON.stringify(json)}`);
      return { ms: performance.now() - t0, cached: json.cached };
    };
    // Stored first: STORED deterministic answers, 8 at a time, then wait until the last one is searchable.
    const t0 = performance.now();
    for (let i = 0; i < STORED; i += 8) await Promise.all(Array.from({ length: Math.min(8, STORED - i) }, (_, j) => post({ prompt: prompt(i + j), cache: false })));
    const last = prompt(STORED - 1);
    await until(`${STORED} prompts embedded`, async () => {
      const r = await fetch(`${apiUrl}/v1/memory/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: last, k: 1, filter: { model: 'm', kind: 'prompt' } }) });
      const items = ((await r.json()) as { items?: { text: string }[] }).items ?? [];
      return items[0]?.text === last;
    }, 300_000);
    process.stderr.write(`${STORED} answers stored and embedded in ${round((performance.now() - t0) / 1000, 1)} s\n`);

    // One request in the L1 cache (cache unset, deterministic): the exact repeats ask for it again.
    const EXACT = `${prompt(0)} exactly`;
    await post({ prompt: EXACT });
    const lat = { job: [] as number[], miss: [] as number[], hit: [] as number[], exact: [] as number[] };
    const wrong = { miss: 0, hit: 0, exact: 0 };
    for (let r = 0; r < ROUNDS; r++) {
      const fresh = STORED + 10 * r;
      const job = await post({ prompt: prompt(fresh), cache: false });
      lat.job.push(job.ms);
      const miss = await post({ prompt: prompt(fresh + 1), cache: 'semantic' });
      lat.miss.push(miss.ms);
      if (miss.cached !== undefined) wrong.miss++;
      const hit = await post({ prompt: `${prompt(r % STORED)} please`, cache: 'semantic' });
      lat.hit.push(hit.ms);
      if (hit.cached !== 'semantic') wrong.hit++;
      const exact = await post({ prompt: EXACT });
      lat.exact.push(exact.ms);
      if (exact.cached !== true) wrong.exact++;
    }
    const s = { job: stats(lat.job), miss: stats(lat.miss), hit: stats(lat.hit), exact: stats(lat.exact) };
    const out = {
      stored: STORED,
      rounds: ROUNDS,
      ...s,
      lookup_added_p50_ms: round(s.miss.p50_ms - s.job.p50_ms),
      semantic_hits_of_rewordings: ROUNDS - wrong.hit,
      semantic_hits_of_new_prompts: wrong.miss,
      exact_misses: wrong.exact,
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
    process.stdout.write(
      `\n| request (${STORED} stored, simulated node in fast mode) | n | p50 ms | p99 ms |\n|---|---:|---:|---:|\n` +
        `| job: new prompt, cache: false | ${s.job.n} | ${s.job.p50_ms} | ${s.job.p99_ms} |\n` +
        `| miss: new prompt, cache: "semantic" (lookup, then the job) | ${s.miss.n} | ${s.miss.p50_ms} | ${s.miss.p99_ms} |\n` +
        `| hit: a stored prompt + " please", cache: "semantic" (no job) | ${s.hit.n} | ${s.hit.p50_ms} | ${s.hit.p99_ms} |\n` +
        `| exact repeat, L1 cache | ${s.exact.n} | ${s.exact.p50_ms} | ${s.exact.p99_ms} |\n\n` +
        `lookup added at p50: ${out.lookup_added_p50_ms} ms; rewordings answered from memory ${out.semantic_hits_of_rewordings}/${ROUNDS}; new prompts wrongly answered from memory ${out.semantic_hits_of_new_prompts}/${ROUNDS}\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
