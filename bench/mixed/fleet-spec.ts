// The mixed fleet as data: simulated nodes, models, popularity, the simulator's speed settings, what fits where, and the capacity estimate.
import { estimateNeedMb } from '../../libs/scheduling/index.js';

export interface ModelSpec {
  name: string;
  /** Weights, GB = GiB (the unit of `hydra sim --vram-gb` and NODE_VRAM_GB). */
  sizeGb: number;
}

export interface NodeSpec {
  id: string;
  vramGb: number;
  /** System RAM for CPU offload (`--ram-gb`, when the simulator has it). */
  ramGb: number;
  /** Models on the node's disk (/api/tags), including some it cannot run. */
  models: string[];
}

/** Six models, 1.7b to 70b; sizes are Q4_K_M weights as Ollama lists them. */
export const MODELS: readonly ModelSpec[] = [
  { name: 'qwen3:1.7b', sizeGb: 1.4 },
  { name: 'llama3.2:3b', sizeGb: 2.0 },
  { name: 'qwen3:8b', sizeGb: 5.2 },
  { name: 'qwen3:14b', sizeGb: 9.3 },
  { name: 'qwen3:32b', sizeGb: 20 },
  { name: 'llama3.1:70b', sizeGb: 43 },
];

export const BIG_MODEL = 'llama3.1:70b';

/**
 * Zipf popularity rank (1 = most requested): the mid-size chat models first, the 70b last. Weight of rank r is
 * 1 / r^ZIPF_S, so with s = 1 the 70b gets ~7 % of the requests.
 */
export const POPULARITY: readonly string[] = ['qwen3:8b', 'llama3.2:3b', 'qwen3:1.7b', 'qwen3:14b', 'qwen3:32b', 'llama3.1:70b'];
export const ZIPF_S = 1;

/**
 * 2×8, 2×24, 48 and 80 GB. Models a node cannot run are listed anyway, as a node that pulled everything would:
 * the 14b on gpu8-a (needs ~11.2 GiB with KV cache and compute graph at num_ctx 2048 × 4 slots), the 70b on both
 * 24 GB nodes (~46.6 GiB). The 32b (~22.3 GiB) does fit a 24 GB node on its own, so it is listed there as a model
 * that fits only when nothing else is loaded. The 70b fits the 48 GB node only alone.
 */
export const NODES: readonly NodeSpec[] = [
  { id: 'gpu8-a', vramGb: 8, ramGb: 32, models: ['qwen3:1.7b', 'llama3.2:3b', 'qwen3:8b', 'qwen3:14b'] },
  { id: 'gpu8-b', vramGb: 8, ramGb: 32, models: ['qwen3:1.7b', 'llama3.2:3b', 'qwen3:8b'] },
  { id: 'gpu24-a', vramGb: 24, ramGb: 64, models: ['llama3.2:3b', 'qwen3:8b', 'qwen3:14b', 'qwen3:32b', 'llama3.1:70b'] },
  { id: 'gpu24-b', vramGb: 24, ramGb: 64, models: ['qwen3:1.7b', 'qwen3:8b', 'qwen3:14b', 'qwen3:32b', 'llama3.1:70b'] },
  { id: 'gpu48', vramGb: 48, ramGb: 128, models: ['qwen3:1.7b', 'llama3.2:3b', 'qwen3:8b', 'qwen3:14b', 'qwen3:32b', 'llama3.1:70b'] },
  { id: 'gpu80', vramGb: 80, ramGb: 256, models: ['qwen3:8b', 'qwen3:14b', 'qwen3:32b', 'llama3.1:70b'] },
];

/**
 * The simulator's speed model in real-time-equivalent units (what a GPU box would do); the time scale divides
 * every duration. A model decodes one request at `tokensPerSecond × 8 / sizeGb` tokens/s (70b: 5.6, 8b: 46).
 */
export interface SimSpeed {
  /** Concurrent requests per loaded model (OLLAMA_NUM_PARALLEL); Hydra's NUM_PARALLEL is set to the same. */
  parallel: number;
  tokensPerSecond: number;
  /** Ollama's start-up cost of a load (runner start, ~1-2 s). */
  loadFixedMs: number;
  /** Reading weights at ~4 GB/s. */
  loadMsPerGb: number;
  /** n requests decoding at once on a node (all models) each run at speed × n^(E−1): aggregate n^E (a GPU batch is sublinear). */
  batchExponent: number;
  /** Context per request: with `parallel` it sizes the KV cache; Hydra's NUM_CTX is set to the same. */
  numCtx: number;
  /** Ollama's OLLAMA_MAX_QUEUE. */
  maxQueue: number;
  /** Offloaded layers run this much slower than on the GPU. */
  cpuSpeedRatio: number;
}

export const SIM_SPEED: SimSpeed = { parallel: 4, tokensPerSecond: 30, loadFixedMs: 1500, loadMsPerGb: 250, batchExponent: 0.7, numCtx: 2048, maxQueue: 512, cpuSpeedRatio: 0.1 };

/** Hydra's default VRAM_BUFFER_MB: memory a node keeps free. */
export const BUFFER_MB = 200;

export const modelSpec = (name: string): ModelSpec => {
  const m = MODELS.find((x) => x.name === name);
  if (!m) throw new Error(`unknown model ${name}`);
  return m;
};

/** Single-request decode speed of a model, tokens/s (the simulator's formula). */
export const decodeTps = (m: ModelSpec, speed: SimSpeed): number => (speed.tokensPerSecond * 8) / Math.max(m.sizeGb, 1);

/** Load time of a model, real-time-equivalent ms. */
export const loadMs = (m: ModelSpec, speed: SimSpeed): number => speed.loadFixedMs + speed.loadMsPerGb * m.sizeGb;

/** Architecture fields of a model as `/api/show` model_info gives them (`<arch>.block_count`, ...). */
export interface ShowInfo {
  model_info?: Record<string, unknown>;
}

/**
 * Memory (MiB) a model needs as Hydra estimates it (weights + f16 KV cache for numCtx × parallel), from the simulator's
 * own `/api/show` answer, so the bench and the scheduler agree on what "fits" means.
 */
export function needMbFromShow(m: ModelSpec, show: ShowInfo, speed: SimSpeed): number {
  const info = show.model_info ?? {};
  const arch = String(info['general.architecture'] ?? 'llama');
  const num = (k: string): number | undefined => (typeof info[`${arch}.${k}`] === 'number' ? (info[`${arch}.${k}`] as number) : undefined);
  const [block_count, head_count, embedding_length] = [num('block_count'), num('attention.head_count'), num('embedding_length')];
  const size_bytes = Math.round(m.sizeGb * 2 ** 30);
  if (block_count === undefined || head_count === undefined || embedding_length === undefined) return estimateNeedMb({ name: m.name, size_bytes }, speed.numCtx, speed.parallel);
  const ctx = num('context_length');
  const arch2 = { block_count, head_count, head_count_kv: num('attention.head_count_kv') ?? head_count, embedding_length, ...(ctx ? { context_length: ctx } : {}) };
  return estimateNeedMb({ name: m.name, size_bytes, arch: arch2 }, speed.numCtx, speed.parallel);
}

/** Needs in MiB by model name. */
export type Needs = Record<string, number>;

/** Whether `model` can ever run on `node`: its need fits the node's memory less Hydra's buffer. */
export const fits = (node: NodeSpec, model: string, needs: Needs): boolean => (needs[model] ?? Infinity) <= node.vramGb * 1024 - BUFFER_MB;

/** Zipf weights of the models (or of `only`, keeping their ranks), normalised to sum 1. */
export function popularity(only: readonly string[] = POPULARITY): Record<string, number> {
  const ranked = POPULARITY.map((m, r) => [m, 1 / (r + 1) ** ZIPF_S] as const).filter(([m]) => only.includes(m));
  const total = ranked.reduce((a, [, w]) => a + w, 0);
  return Object.fromEntries(ranked.map(([m, w]) => [m, w / total]));
}

export interface Capacity {
  /** Requests per second (real-time equivalent) the fleet can sustain under the best static placement. */
  requestsPerS: number;
  /** That placement: models each node keeps loaded. */
  placement: Record<string, string[]>;
  /** The models whose nodes saturate first. */
  bottleneck: string;
  how: string;
}

/**
 * Capacity from the simulator's speed model, as a fluid bound. A request of model m is `w_m` single-stream seconds of
 * work (mean output plus prompt evaluation at 10× decode speed, over the model's single-stream tokens/s). The
 * simulator runs n requests on a node at n^E aggregate; the estimate gives each node one batch of `parallel`
 * (`parallel^E` single-stream seconds per second), not the simulator's batching across models (a real GPU's batch
 * gain comes from sharing one model's weight reads; two models' batches do not share them). For a placement (which
 * models each node keeps loaded together, within its memory) the rate λ is feasible when the demand `λ p_m w_m` can be
 * split over the nodes holding each model within their capacity: by the supply-demand theorem, when for every set of
 * models M, λ Σ_M p_m w_m ≤ Σ of capacity over nodes holding any of M. Every placement (maximal sets of models that
 * fit together, per node) is tried; the best gives the capacity. It ignores load switching and assumes perfect
 * balancing, so no router quite reaches it.
 */
export function estimateCapacity(needs: Needs, speed: SimSpeed, meanTokens: number, promptTokens: number, models: readonly string[] = POPULARITY): Capacity {
  const pop = popularity(models);
  const work = Object.fromEntries(models.map((m) => [m, pop[m]! * ((meanTokens + promptTokens / 10) / decodeTps(modelSpec(m), speed))]));
  const subsets = Array.from({ length: (1 << models.length) - 1 }, (_, k) => models.filter((_, i) => (k + 1) & (1 << i)));
  const options = NODES.map((n) => maximalSets(n.models.filter((m) => fits(n, m, needs)), (set) => set.reduce((s, m) => s + needs[m]!, 0) <= n.vramGb * 1024 - BUFFER_MB));
  let best: Capacity = { requestsPerS: 0, placement: {}, bottleneck: '', how: '' };
  const pick: string[][] = [];
  const visit = (i: number): void => {
    if (i === NODES.length) {
      const supply = pick.map((set) => (set.length > 0 ? speed.parallel ** speed.batchExponent : 0));
      let rate = Infinity;
      let bottleneck: string[] = [];
      for (const M of subsets) {
        const demand = M.reduce((s, m) => s + work[m]!, 0);
        const cap = pick.reduce((s, set, j) => s + (set.some((m) => M.includes(m)) ? supply[j]! : 0), 0);
        if (cap / demand < rate) [rate, bottleneck] = [cap / demand, M];
      }
      if (rate > best.requestsPerS) best = { requestsPerS: rate, placement: Object.fromEntries(NODES.map((n, j) => [n.id, [...pick[j]!]])), bottleneck: bottleneck.join(' + '), how: '' };
      return;
    }
    for (const set of options[i]!) {
      pick.push(set.filter((m) => models.includes(m)));
      visit(i + 1);
      pick.pop();
    }
  };
  visit(0);
  best.how =
    `fluid bound from the simulator's speed model: each node runs one batch of ${speed.parallel} requests, ` +
    `${speed.parallel}^${speed.batchExponent} single-stream seconds per second; single stream = ` +
    `${speed.tokensPerSecond} × 8 / size GB tokens/s; mean output ${Math.round(meanTokens)} tokens; best static ` +
    `placement over all sets of models that fit together per node (no load switching, perfect balancing); ` +
    `saturates first on ${best.bottleneck}`;
  return best;
}

/** Subsets of `items` that pass `ok` and to which no further item can be added. */
function maximalSets(items: string[], ok: (set: string[]) => boolean): string[][] {
  const all: string[][] = [];
  for (let mask = 1; mask < 1 << items.length; mask++) {
    const set = items.filter((_, i) => mask & (1 << i));
    if (ok(set)) all.push(set);
  }
  const maximal = all.filter((s) => !all.some((t) => t.length > s.length && s.every((m) => t.includes(m))));
  return maximal.length > 0 ? maximal : [[]];
}
