// Model names, queue names and the memory a model needs (Ollama's estimate: weights + f16 KV cache).
import type { ModelAvailable } from '../core/index.js';

const MB = 1024 * 1024;

/** Ollama treats `llama3` and `llama3:latest` as one model. */
export function canonicalModel(name: string): string {
  const last = name.split('/').pop() ?? name;
  return last.includes(':') ? name : `${name}:latest`;
}

export const sameModel = (a: string, b: string): boolean => canonicalModel(a) === canonicalModel(b);

/** Queue-safe form of a model name: BullMQ forbids ':' in queue names; '/' would break Bull Board's URLs. */
const modelSlug = (name: string): string => canonicalModel(name).replace(/[^A-Za-z0-9._-]/g, '_');

/** Class queue for a model and an optional minimum VRAM (MB); one queue per capability class. */
export function classQueueName(model: string, minVramMb = 0): string {
  return minVramMb > 0 ? `infer.${modelSlug(model)}.min${minVramMb}mb` : `infer.${modelSlug(model)}`;
}

/**
 * The `min_vram_gb` buckets (GiB, as nvidia-smi and GPU vendors mean "24 GB"): the common GPU and multi-GPU sizes up
 * to 256, then 2^k · {1, 1.25, 1.5, 1.75}. Each bucket is a class queue (and BullMQ connections in every worker that
 * serves it), so a caller choosing arbitrary values must not create arbitrary many: up to the schema's 100 000 GiB
 * there are at most ~50 buckets.
 */
const VRAM_LADDER_GB = [0, 4, 8, 12, 16, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256] as const;

/** The bucket a `min_vram_gb` request is served under: the smallest ladder step ≥ it (rounding up never under-serves). */
export function minVramBucketGb(gb: number): number {
  if (!(gb > 0)) return 0;
  const step = VRAM_LADDER_GB.find((b) => b >= gb);
  if (step !== undefined) return step;
  for (let base = 256; ; base *= 2) {
    const next = [1.25, 1.5, 1.75, 2].map((f) => base * f).find((b) => b >= gb);
    if (next !== undefined) return next;
  }
}

export const nodeQueueName = (nodeId: string): string => `node.${nodeId}`;

/** KV cache bytes = 2 (K and V) × layers × kv heads × head dim × context × parallel × 2 bytes (f16). */
export function kvCacheBytes(arch: NonNullable<ModelAvailable['arch']>, numCtx: number, numParallel: number): number {
  if (arch.head_count <= 0) return 0;
  const headDim = arch.embedding_length / arch.head_count;
  return 2 * arch.block_count * arch.head_count_kv * headDim * numCtx * numParallel * 2;
}

/** Memory (MB) a model needs to be loaded: weights plus KV cache; context capped at the model's own. */
export function estimateNeedMb(model: ModelAvailable, numCtx: number, numParallel: number): number {
  const ctx = model.arch?.context_length ? Math.min(numCtx, model.arch.context_length) : numCtx;
  const kv = model.arch ? kvCacheBytes(model.arch, ctx, numParallel) : 0;
  return Math.ceil((model.size_bytes + kv) / MB);
}
