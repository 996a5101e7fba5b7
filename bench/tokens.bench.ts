// Tokens/s for the same 256-token generations run directly through node-llama-cpp and through Hydra (API → queue →
// llama.cpp worker → SSE/result), side by side in one run, on the toy model (the only GGUF this machine can have).
//
//   npm run bench:tokens -- [--runs 8] [--tokens 256]
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { TINY_MODEL_NAME, writeTinyModel } from '../libs/tiny-model/index.js';
import { HYDRA_BIN, child, runBench, freePort, round, startRedis, until } from './support.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '8' }, tokens: { type: 'string', default: '256' } } });
const RUNS = Number(values.runs);
const TOKENS = Number(values.tokens);
const CTX = 2048;
// Digits never end in the toy model, so every run decodes exactly TOKENS tokens.
const PROMPT = '0';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hydra-tokens-'));
  const modelPath = join(dir, `${TINY_MODEL_NAME}.gguf`);
  await writeTinyModel(modelPath);

  // Direct: node-llama-cpp in this process, one thread, same context size and sampling as the job below.
  const nlc = await import('node-llama-cpp');
  const llama = await nlc.getLlama({ gpu: false, build: 'never', maxThreads: 1 });
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({ contextSize: CTX, threads: 1 });
  const seq = context.getSequence();
  const direct = async (): Promise<number> => {
    await seq.clearHistory();
    const completion = new nlc.LlamaCompletion({ contextSequence: seq, autoDisposeSequence: false });
    const t = performance.now();
    const out = await completion.generateCompletion(PROMPT, { maxTokens: TOKENS, temperature: 0, repeatPenalty: false });
    const s = (performance.now() - t) / 1000;
    completion.dispose({ disposeSequence: false });
    if (out.length !== TOKENS) throw new Error(`direct run decoded ${out.length} characters, expected ${TOKENS}`);
    return TOKENS / s;
  };

  // Through Hydra: a private Redis, the API and one llama.cpp worker as child processes.
  const redisUrl = await startRedis();
  const port = await freePort();
  const env = { ...(process.env.BENCH_EXTRA_ENV ? JSON.parse(process.env.BENCH_EXTRA_ENV) : {}), REDIS_URL: redisUrl, PORT: String(port), LOG_LEVEL: 'warn', BACKEND: 'llamacpp', MODELS_DIR: dir, OLLAMA_MODELS_DIR: join(dir, 'none'), LLAMA_THREADS: '1', NUM_CTX: String(CTX), NODE_ID: 'llama' };
  child(process.execPath, [HYDRA_BIN, 'api'], env);
  child(process.execPath, [HYDRA_BIN, 'worker'], env);
  const api = `http://127.0.0.1:${port}`;
  await until('the llama.cpp worker', async () => ((await (await fetch(`${api}/v1/nodes`)).json()) as { nodes: unknown[] }).nodes.length === 1, 60_000);
  const hydra = async (): Promise<{ e2e: number; worker: number }> => {
    const t = performance.now();
    const r = await fetch(`${api}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'generate', model: TINY_MODEL_NAME, prompt: PROMPT, options: { temperature: 0, repeat_penalty: 1, num_predict: TOKENS, num_ctx: CTX }, cache: false, wait: true }),
    });
    const body = (await r.json()) as { result?: { completion_tokens: number; eval_duration_ms: number } };
    const s = (performance.now() - t) / 1000;
    if (!body.result || body.result.completion_tokens !== TOKENS) throw new Error(`hydra run returned ${JSON.stringify(body).slice(0, 300)}`);
    return { e2e: TOKENS / s, worker: TOKENS / (body.result.eval_duration_ms / 1000) };
  };

  await direct();
  await hydra(); // warm-up: loads the model in the worker
  const d: number[] = [];
  const h: number[] = [];
  const hw: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    d.push(await direct());
    const x = await hydra();
    h.push(x.e2e);
    hw.push(x.worker);
  }
  const result = {
    when: new Date().toISOString(),
    model: `${TINY_MODEL_NAME} (toy, 2 layers, width 64), 1 thread, context ${CTX}`,
    tokens_per_generation: TOKENS,
    runs: RUNS,
    direct_tokens_per_s_median: round(median(d), 1),
    hydra_end_to_end_tokens_per_s_median: round(median(h), 1),
    hydra_worker_decode_tokens_per_s_median: round(median(hw), 1),
    ratio_end_to_end: round(median(h) / median(d), 3),
  };
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL(`./results/tokens-${Date.now()}.json`, import.meta.url), JSON.stringify(result, null, 2));
  process.stdout.write(`
| ${TOKENS}-token generations, ${RUNS} runs each, alternating | tokens/s (median) |
|---|---:|
| node-llama-cpp directly | ${result.direct_tokens_per_s_median} |
| through Hydra, end to end (POST wait:true) | ${result.hydra_end_to_end_tokens_per_s_median} |
| through Hydra, decode only (worker's eval_duration) | ${result.hydra_worker_decode_tokens_per_s_median} |
| ratio Hydra end to end / direct | ${result.ratio_end_to_end} |
`);
  await context.dispose();
  await model.dispose();
}

runBench(main);
