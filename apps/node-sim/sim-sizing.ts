// The simulated node's memory arithmetic, after Ollama's estimate: weights + KV cache for num_ctx × parallel + compute graph, and where it goes (VRAM, or partly system RAM). Pure; see docs/simulator.md for the sources.
import { archOf, capabilitiesOf, isEmbeddingOnly, modelBytes, VOCAB_SIZE, type SimModelSpec } from './sim-models.js';

/** Ollama's OLLAMA_KV_CACHE_TYPE values. */
export const KV_CACHE_TYPES = ['f16', 'q8_0', 'q4_0'] as const;
export type KvCacheType = (typeof KV_CACHE_TYPES)[number];

/**
 * Bytes per cached K or V element, as ggml stores them: f16 is 2 bytes; q8_0 packs 32 elements in 34 bytes (an f16
 * scale + 32 int8), q4_0 32 elements in 18 bytes (an f16 scale + 16 bytes of nibbles).
 */
const KV_BYTES_PER_ELEMENT: Record<KvCacheType, number> = { f16: 2, q8_0: 34 / 32, q4_0: 18 / 32 };

/** Ollama's default num_batch: prompt tokens evaluated per step; sizes the compute graph. */
const NUM_BATCH = 512;
/** Ollama raises a smaller num_ctx to 4, and to 2048 for vision models (server/sched.go GetRunner). */
const MIN_NUM_CTX = 4;
const MIN_VISION_NUM_CTX = 2048;

/**
 * The context one slot gets: the request's num_ctx raised to Ollama's minimums, then capped at the model's training
 * context (`context_length`), as llm/server.go does.
 */
function effectiveNumCtx(m: SimModelSpec, requested: number): number {
  let ctx = Math.max(MIN_NUM_CTX, Math.floor(requested));
  if (capabilitiesOf(m).includes('vision')) ctx = Math.max(ctx, MIN_VISION_NUM_CTX);
  return Math.min(ctx, archOf(m).context_length);
}

/** Ollama loads embedding models with one slot, whatever OLLAMA_NUM_PARALLEL says (server/sched.go load). */
const slotsFor = (m: SimModelSpec, parallel: number): number => (isEmbeddingOnly(m) ? 1 : parallel);

/** What one load of a model takes, bytes. */
export interface Footprint {
  weights: number;
  kv: number;
  graph: number;
  total: number;
  /** Per-slot context (after `effectiveNumCtx`). */
  numCtx: number;
  /** Slots (after `slotsFor`). */
  parallel: number;
}

/**
 * Weights + KV cache + compute graph for `numCtx` tokens in each of `parallel` slots.
 * KV: per layer, `num_ctx × parallel` tokens × head_count_kv × (key_length + value_length) elements.
 * Graph: the `llama` case of Ollama's GraphSize (fs/ggml/ggml.go), fully offloaded: the larger of the attention
 * scratch `4·batch·(1 + 4·embedding + context·(1 + heads))` and the logits buffer `4·batch·(embedding + vocab)`, with
 * batch = min(num_batch, num_ctx) and context = num_ctx × parallel. Embedding models output no logits: attention only.
 */
export function footprint(m: SimModelSpec, numCtx: number, parallel: number, kvType: KvCacheType): Footprint {
  const a = archOf(m);
  const ctx = effectiveNumCtx(m, numCtx);
  const slots = slotsFor(m, parallel);
  const context = ctx * slots;
  const kv = Math.ceil(a.block_count * context * a.head_count_kv * (a.key_length + a.value_length) * KV_BYTES_PER_ELEMENT[kvType]);
  const batch = Math.min(NUM_BATCH, ctx);
  const attention = 4 * batch * (1 + 4 * a.embedding_length + context * (1 + a.head_count));
  const graph = isEmbeddingOnly(m) ? attention : Math.max(attention, 4 * batch * (a.embedding_length + VOCAB_SIZE));
  const weights = modelBytes(m);
  return { weights, kv, graph, total: weights + kv + graph, numCtx: ctx, parallel: slots };
}

/** Where a load goes: all in VRAM, or (a model bigger than the whole VRAM) as much as fits there and the rest in RAM. */
export interface Placement {
  fp: Footprint;
  vramBytes: number;
  ramBytes: number;
  offload: boolean;
}

const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

/**
 * Places `fp` on a node with `vramTotal` bytes of VRAM and `ramTotal` bytes of system RAM for offload. An offloaded
 * model takes the whole VRAM (Ollama loads a partial offload only when nothing else is loaded), so it waits for the
 * node to empty. Returns Ollama's error text when even VRAM + RAM cannot hold it (llm/server.go, up to v0.29).
 */
export function place(fp: Footprint, vramTotal: number, ramTotal: number): Placement | { error: string } {
  if (fp.total <= vramTotal) return { fp, vramBytes: fp.total, ramBytes: 0, offload: false };
  const ramBytes = fp.total - vramTotal;
  if (ramBytes > ramTotal) return { error: `model requires more system memory (${gib(ramBytes)}) than is available (${gib(ramTotal)})` };
  return { fp, vramBytes: vramTotal, ramBytes, offload: true };
}
