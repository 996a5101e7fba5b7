// Time to first token and tokens/s of streamed /api/chat answers, straight to a simulated Ollama node and through
// Hydra (API → queue → worker → the same node → Redis stream → NDJSON), side by side in one run, alternating.
//
//   npm run bench:ollama -- [--runs 20] [--tokens 128]
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { createSimNode } from '../apps/node-sim/sim-server.js';
import { hydraKeys } from '../libs/queue/index.js';
import { HYDRA_BIN, child, freePort, round, runBench, startRedis, until } from './support.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '20' }, tokens: { type: 'string', default: '128' } } });
const RUNS = Number(values.runs);
const TOKENS = Number(values.tokens);
const MODEL = 'qwen3:4b';
/** Simulated decode speed: base 200 tokens/s scaled by size (sim: base × 8 / sizeGb) gives 640 tokens/s for 2.5 GB. */
const SIM = { vramGb: 24, models: [{ name: MODEL, sizeGb: 2.5 }], tokensPerSecond: 200, loadMsPerGb: 0 };
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Run {
  ttft_ms: number;
  tokens_per_s: number;
  /** Through Hydra: submit → a worker took the job (the job's started_at − submitted_at, ms resolution). */
  queued_ms?: number;
  /**
   * Through Hydra, where the time to first token went (wall clock, ms resolution, one machine): request sent → the
   * API stamped the job (`submitted_at`), → a worker took it (`started_at`), → the first token reached Redis (the
   * stream's first entry id; this includes the node's own time to first token), → the client read it.
   */
  stages?: { to_submitted: number; to_taken: number; to_first_entry: number; to_client: number };
}

const keys = hydraKeys('{hydra}');
let redis: Redis | null = null;

/** One streamed chat: ms to the first line with text, and tokens/s from then to the last line (eval_count tokens). */
async function streamedChat(base: string): Promise<Run> {
  const t0 = performance.now();
  const wall0 = Date.now();
  const r = await fetch(`${base}/api/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    // Temperature above 0 and no seed: never answered from Hydra's L1 cache.
    body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'tell me a story' }], stream: true, options: { temperature: 0.7, num_predict: TOKENS, sim_answer_tokens: TOKENS } }),
  });
  if (!r.ok || !r.body) throw new Error(`${base} answered ${r.status}: ${await r.text()}`);
  let first = 0;
  let firstWall = 0;
  let buf = '';
  let final: { eval_count?: number; done?: boolean } | undefined;
  const decoder = new TextDecoder();
  for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = JSON.parse(buf.slice(0, i)) as { message?: { content?: string }; done?: boolean; eval_count?: number; error?: string };
      buf = buf.slice(i + 1);
      if (line.error) throw new Error(`${base} streamed an error: ${line.error}`);
      if (!first && line.message?.content) {
        first = performance.now();
        firstWall = Date.now();
      }
      if (line.done) final = line;
    }
  }
  const end = performance.now();
  if (!final || final.eval_count !== TOKENS) throw new Error(`${base} ended without ${TOKENS} tokens: ${JSON.stringify(final)}`);
  const run: Run = { ttft_ms: first - t0, tokens_per_s: (TOKENS - 1) / ((end - first) / 1000) };
  const id = r.headers.get('x-hydra-job-id');
  if (id) {
    const job = (await (await fetch(`${base}/v1/jobs/${id}`)).json()) as { submitted_at: string; started_at: string };
    run.queued_ms = Date.parse(job.started_at) - Date.parse(job.submitted_at);
    const [entry] = redis ? await redis.xrange(keys.stream(id), '-', '+', 'COUNT', 1) : [];
    if (entry) {
      const at = Number(entry[0].split('-')[0]);
      const submitted = Date.parse(job.submitted_at);
      const taken = Date.parse(job.started_at);
      run.stages = { to_submitted: submitted - wall0, to_taken: taken - submitted, to_first_entry: at - taken, to_client: firstWall - at };
    }
  }
  return run;
}

async function main(): Promise<void> {
  const sim = await createSimNode(SIM);
  const redisUrl = await startRedis();
  redis = new Redis(redisUrl);
  const port = await freePort();
  const env = { REDIS_URL: redisUrl, PORT: String(port), LOG_LEVEL: 'warn', BACKEND: 'ollama', OLLAMA_URL: sim.url, NODE_ID: 'sim24', NODE_VRAM_GB: '24' };
  child(process.execPath, [HYDRA_BIN, 'api'], env);
  child(process.execPath, [HYDRA_BIN, 'worker'], env);
  const api = `http://127.0.0.1:${port}`;
  await until('the worker to register', async () => ((await (await fetch(`${api}/v1/nodes`)).json()) as { nodes: { healthy: boolean }[] }).nodes.some((n) => n.healthy), 60_000);

  await streamedChat(sim.url);
  await streamedChat(api); // warm-up: connections, JIT, the model loaded on the node
  const direct: Run[] = [];
  const hydra: Run[] = [];
  for (let i = 0; i < RUNS; i++) {
    direct.push(await streamedChat(sim.url));
    hydra.push(await streamedChat(api));
  }
  const m = (runs: Run[], k: 'ttft_ms' | 'tokens_per_s' | 'queued_ms') => round(median(runs.map((r) => r[k] ?? 0)), 1);
  const result = {
    when: new Date().toISOString(),
    node: `simulated Ollama node (apps/node-sim), ${MODEL} 2.5 GB at ${SIM.tokensPerSecond * 8 / 2.5} tokens/s`,
    tokens_per_answer: TOKENS,
    runs: RUNS,
    direct_ttft_ms_median: m(direct, 'ttft_ms'),
    hydra_ttft_ms_median: m(hydra, 'ttft_ms'),
    added_ttft_ms_median: round(median(hydra.map((h, i) => h.ttft_ms - direct[i]!.ttft_ms)), 1),
    hydra_queued_ms_median: m(hydra, 'queued_ms'),
    hydra_stages_ms_median: Object.fromEntries(
      (['to_submitted', 'to_taken', 'to_first_entry', 'to_client'] as const).map((k) => [k, round(median(hydra.map((h) => h.stages?.[k] ?? NaN).filter(Number.isFinite)), 1)]),
    ),
    direct_tokens_per_s_median: m(direct, 'tokens_per_s'),
    hydra_tokens_per_s_median: m(hydra, 'tokens_per_s'),
  };
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL(`./results/ollama-ttft-${Date.now()}.json`, import.meta.url), JSON.stringify(result, null, 2));
  process.stdout.write(`
| streamed /api/chat, ${TOKENS} tokens, ${RUNS} runs each, alternating (simulated node) | time to first token, ms (median) | tokens/s after the first (median) |
|---|---:|---:|
| straight to the simulated node | ${result.direct_ttft_ms_median} | ${result.direct_tokens_per_s_median} |
| through Hydra's /api/chat | ${result.hydra_ttft_ms_median} | ${result.hydra_tokens_per_s_median} |
| added by Hydra (median of per-pair differences) | ${result.added_ttft_ms_median} | |
| of which submit → a worker took the job | ${result.hydra_queued_ms_median} | |

Through Hydra, medians (ms, wall clock): request → API stamped the job ${result.hydra_stages_ms_median.to_submitted}, → a worker took it ${result.hydra_stages_ms_median.to_taken}, → first token in Redis ${result.hydra_stages_ms_median.to_first_entry} (includes the node's own time to first token, ${result.direct_ttft_ms_median} straight), → the client read it ${result.hydra_stages_ms_median.to_client}
`);
  await sim.close();
  redis.disconnect();
}

runBench(main);
