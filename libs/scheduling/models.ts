// Model names, queue names and the memory a model needs (Ollama's estimate: weights + KV cache + compute graph).
import type { KvCacheType, ModelArch, ModelAvailable, NodeModel } from '../core/index.js';

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

// ---- Memory admission (docs/scheduling.md, "Memory admission") ----------------------------------------------------

/**
 * Bytes per cached K or V element as ggml stores the type (ggml type_traits; node-llama-cpp's bindings report the
 * same): f16 2; q8_0 blocks of 32 elements in 34 bytes (an f16 scale + 32 int8); q4_0 blocks of 32 in 18 bytes (an
 * f16 scale + 16 bytes of nibbles). Ollama's own estimate rounds these to 1 and 0.5; the allocation is the block size.
 */
export const KV_BYTES_PER_ELEMENT: Record<KvCacheType, number> = { f16: 2, q8_0: 34 / 32, q4_0: 18 / 32 };

/** Ollama's default num_batch: prompt tokens evaluated per step, which sizes the compute graph. */
const NUM_BATCH = 512;

/** Families Ollama always loads with one slot, whatever OLLAMA_NUM_PARALLEL says (server/sched.go `load`). */
const SINGLE_SLOT_FAMILIES = new Set(['mllama', 'qwen3vl', 'qwen3vlmoe', 'qwen35', 'qwen35moe', 'qwen3next', 'lfm2', 'lfm2moe', 'nemotron_h', 'nemotron_h_moe', 'nemotron_h_omni']);

/**
 * KV cache bytes for one token of context in one slot: layers × kv heads × (key_length + value_length) × bytes per
 * element, the head widths from `attention.key_length` / `value_length`, else embedding_length / head_count.
 */
export function kvBytesPerToken(arch: ModelArch, kvType: KvCacheType = 'f16'): number {
  if (arch.head_count <= 0) return 0;
  const headDim = arch.embedding_length / arch.head_count;
  return arch.block_count * arch.head_count_kv * ((arch.key_length ?? headDim) + (arch.value_length ?? headDim)) * KV_BYTES_PER_ELEMENT[kvType];
}

/** KV cache bytes of one load: every one of `numParallel` slots gets `numCtx` tokens when the model loads. */
export function kvCacheBytes(arch: ModelArch, numCtx: number, numParallel: number, kvType: KvCacheType = 'f16'): number {
  return Math.ceil(kvBytesPerToken(arch, kvType) * numCtx * numParallel);
}

/**
 * The compute graph's buffer, bytes: the `llama` case of Ollama's GraphSize (fs/ggml/ggml.go), fully offloaded,
 * which Ollama applies to llama-like architectures: the larger of the attention scratch
 * `4·batch·(1 + 4·embedding + context·(1 + heads))` and the logits buffer `4·batch·(embedding + vocab)`, with
 * batch = min(NUM_BATCH, num_ctx) and context = num_ctx × parallel. Without a vocabulary size (unknown, or an
 * embedding model, which outputs no logits) only the attention term counts. Other architectures' special cases
 * (gemma, qwen2, MoE, sliding windows) are not modelled: for them this is an approximation.
 */
export function graphBytes(g: NonNullable<NodeModel['graph']>, numCtx: number, numParallel: number): number {
  const context = numCtx * numParallel;
  const batch = Math.min(NUM_BATCH, numCtx);
  const attention = 4 * batch * (1 + 4 * g.embedding_length + context * (1 + g.head_count));
  const logits = g.vocab_size ? 4 * batch * (g.embedding_length + g.vocab_size) : 0;
  return Math.max(attention, logits);
}

/** The model facts the memory estimate reads; a `NodeModel` (the registry's) has them all. */
export type MemoryFacts = Pick<NodeModel, 'size_mb' | 'need_mb' | 'size_bytes' | 'capabilities' | 'details' | 'context_length' | 'need_source' | 'kv_bytes_per_token' | 'graph' | 'correction_mb'>;

const completes = (m: Pick<NodeModel, 'capabilities'>): boolean => !m.capabilities || m.capabilities.includes('completion');

/** Slots Ollama gives a load of this model: one for embedding models and a few families, else `numParallel`. */
export function slotsOf(m: Pick<NodeModel, 'capabilities' | 'details'>, numParallel: number): number {
  if (!completes(m) || SINGLE_SLOT_FAMILIES.has(m.details?.family ?? '')) return 1;
  return Math.max(1, Math.floor(numParallel));
}

/**
 * The context one slot gets, as Ollama sets it: at least 4 tokens (2048 for vision models), at most the model's own
 * context_length (server/sched.go getRunner).
 */
export function effectiveNumCtx(m: Pick<NodeModel, 'capabilities' | 'context_length'>, numCtx: number): number {
  let ctx = Math.max(4, Math.floor(numCtx));
  if (m.capabilities?.includes('vision')) ctx = Math.max(ctx, 2048);
  return m.context_length ? Math.min(ctx, m.context_length) : ctx;
}

/**
 * Memory (MiB) a load of `model` takes with `numCtx` tokens of context per slot and `parallel` slots: weights + KV
 * cache + compute graph (+ the backend's correction). Ollama allocates the KV cache of every slot when it loads a
 * model, not per request in flight, so the need depends on the slots configured, never on how many are busy.
 * A record without the per-model facts (an older worker, or need_source `weights` / `unknown`) answers its `need_mb`
 * for any context: nothing more is known.
 */
export function needMbFor(model: MemoryFacts, numCtx: number, parallel: number): number {
  if (model.need_source === 'unknown' || model.kv_bytes_per_token === undefined) return model.need_mb;
  const ctx = effectiveNumCtx(model, numCtx);
  const slots = slotsOf(model, parallel);
  const weights = model.size_bytes ?? model.size_mb * MB;
  const kv = Math.ceil(model.kv_bytes_per_token * ctx * slots);
  const graph = model.graph ? graphBytes(model.graph, ctx, slots) : 0;
  return Math.max(0, Math.ceil((weights + kv + graph) / MB) + (model.correction_mb ?? 0));
}

/** Architecture facts of a model for the registry record (`NodeModel`): what `needMbFor` computes from. */
export function memoryFactsOf(m: ModelAvailable, kvType: KvCacheType): Pick<NodeModel, 'kv_bytes_per_token' | 'kv_cache_type' | 'graph'> {
  if (!m.arch) return {};
  const embeddingOnly = m.capabilities !== undefined && !m.capabilities.includes('completion');
  const vocab = embeddingOnly ? undefined : m.arch.vocab_size;
  return {
    kv_bytes_per_token: kvBytesPerToken(m.arch, kvType),
    kv_cache_type: kvType,
    graph: { embedding_length: m.arch.embedding_length, head_count: m.arch.head_count, ...(vocab ? { vocab_size: vocab } : {}) },
  };
}

/**
 * Memory (MiB) a model needs loaded at `numCtx` × `numParallel`: weights + KV cache + compute graph when its
 * architecture is known, else its weights. Context capped at the model's own.
 */
export function estimateNeedMb(model: ModelAvailable, numCtx: number, numParallel: number, kvType: KvCacheType = 'f16'): number {
  const facts = memoryFactsOf(model, kvType);
  if (facts.kv_bytes_per_token === undefined) return Math.ceil(model.size_bytes / MB);
  return needMbFor(
    {
      size_mb: model.size_bytes / MB,
      need_mb: 0,
      size_bytes: model.size_bytes,
      ...(model.capabilities ? { capabilities: model.capabilities } : {}),
      ...(model.details ? { details: model.details } : {}),
      ...(model.arch?.context_length ? { context_length: model.arch.context_length } : {}),
      ...facts,
    },
    numCtx,
    numParallel,
  );
}
