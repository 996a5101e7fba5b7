// Memory admission arithmetic, checked against a worked example from llama3.1:8b's published metadata.
import { describe, expect, it } from 'vitest';
import type { ModelAvailable, NodeModel } from '../core/index.js';
import { effectiveNumCtx, estimateNeedMb, graphBytes, KV_BYTES_PER_ELEMENT, kvBytesPerToken, kvCacheBytes, memoryFactsOf, needMbFor, slotsOf } from './models.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

/**
 * llama3.1:8b as Ollama's /api/show reports it (llama.block_count 32, attention.head_count 32, head_count_kv 8,
 * key_length = value_length = 128, embedding_length 4096, context_length 131072, vocab_size 128256). The weights are
 * a round 4.5 GiB here (the Q4_K_M file is about 4.9 GB); only the sum with them is checked.
 */
const LLAMA31_8B: ModelAvailable = {
  name: 'llama3.1:8b',
  size_bytes: 4.5 * GiB,
  capabilities: ['completion', 'tools'],
  arch: { block_count: 32, head_count: 32, head_count_kv: 8, embedding_length: 4096, context_length: 131072, key_length: 128, value_length: 128, vocab_size: 128256 },
};
const arch = LLAMA31_8B.arch!;

/** The model as a node record would carry it (resources.ts builds this the same way). */
const asNodeModel = (m: ModelAvailable, kv: 'f16' | 'q8_0' | 'q4_0' = 'f16'): NodeModel => ({
  name: m.name,
  size_mb: Math.round(m.size_bytes / MiB),
  need_mb: estimateNeedMb(m, 4096, 1, kv),
  size_bytes: m.size_bytes,
  ...(m.capabilities ? { capabilities: m.capabilities } : {}),
  ...(m.arch?.context_length ? { context_length: m.arch.context_length } : {}),
  need_source: 'estimate',
  ...memoryFactsOf(m, kv),
});

describe('KV cache', () => {
  it('is 128 KiB a token and 512 MiB for one 4096-token slot of llama3.1:8b in f16', () => {
    // 32 layers × 8 kv heads × (128 + 128) × 2 bytes.
    expect(kvBytesPerToken(arch)).toBe(32 * 8 * 256 * 2);
    expect(kvBytesPerToken(arch)).toBe(128 * 1024);
    expect(kvCacheBytes(arch, 4096, 1)).toBe(512 * MiB);
    // Every slot gets its own context when the model loads.
    expect(kvCacheBytes(arch, 4096, 4)).toBe(2048 * MiB);
  });

  it.each([
    // [type, bytes per element as ggml stores it, MiB for 4096 tokens × 1 slot]
    ['f16', 2, 512],
    ['q8_0', 34 / 32, 272],
    ['q4_0', 18 / 32, 144],
  ] as const)('%s stores %s bytes an element: %s MiB', (type, perElement, mib) => {
    expect(KV_BYTES_PER_ELEMENT[type]).toBe(perElement);
    expect(kvCacheBytes(arch, 4096, 1, type)).toBe(mib * MiB);
  });

  it('takes key/value widths when the model has them, else embedding_length / head_count', () => {
    // gemma-like: head width 256 while 3072 / 16 would say 192.
    const gemma = { block_count: 28, head_count: 16, head_count_kv: 16, embedding_length: 3072, key_length: 256, value_length: 256 };
    expect(kvBytesPerToken(gemma)).toBe(28 * 16 * 512 * 2);
    const { key_length: _k, value_length: _v, ...noWidths } = gemma;
    expect(kvBytesPerToken(noWidths)).toBe(28 * 16 * 384 * 2);
    expect(kvBytesPerToken({ ...noWidths, head_count: 0 })).toBe(0);
  });
});

describe('compute graph', () => {
  const g = { embedding_length: 4096, head_count: 32, vocab_size: 128256 };
  it.each([
    // [num_ctx, parallel, bytes]: the larger of attention 4·batch·(1 + 4·embd + ctx·(1 + heads)) and logits 4·batch·(embd + vocab)
    [4096, 1, 4 * 512 * (1 + 4 * 4096 + 4096 * 33)], // 296 MiB: attention
    [4096, 4, 4 * 512 * (1 + 4 * 4096 + 16384 * 33)], // context = 4 slots × 4096: 1088 MiB
    [2048, 1, 4 * 512 * (4096 + 128256)], // 258.5 MiB: the logits buffer is larger
    [256, 1, 4 * 256 * (4096 + 128256)], // batch = min(512, num_ctx)
  ])('at num_ctx %s × %s slots is %s bytes', (ctx, parallel, bytes) => {
    expect(graphBytes(g, ctx, parallel)).toBe(bytes);
  });
  it('counts only the attention scratch without a vocabulary (unknown, or an embedding model)', () => {
    expect(graphBytes({ embedding_length: 4096, head_count: 32 }, 2048, 1)).toBe(4 * 512 * (1 + 4 * 4096 + 2048 * 33));
  });
});

describe('needMbFor', () => {
  const m = asNodeModel(LLAMA31_8B);
  const weights = 4.5 * 1024;
  it('is weights + KV + graph: 4608 + 512 + ~296 MiB for llama3.1:8b at 4096 × 1, equal to need_mb', () => {
    expect(needMbFor(m, 4096, 1)).toBe(weights + 512 + Math.ceil((4 * 512 * (1 + 4 * 4096 + 4096 * 33)) / MiB));
    expect(needMbFor(m, 4096, 1)).toBe(weights + 512 + 297); // the sum rounded up to whole MiB
    expect(needMbFor(m, 4096, 1)).toBe(m.need_mb);
  });
  it('grows with the request’s num_ctx and the slots, and caps the context at the model’s own', () => {
    expect(needMbFor(m, 4096, 4)).toBe(weights + 2048 + Math.ceil((4 * 512 * (1 + 4 * 4096 + 16384 * 33)) / MiB)); // graph ≈ 1088 MiB
    expect(needMbFor(m, 8192, 1)).toBe(weights + 1024 + Math.ceil((4 * 512 * (1 + 4 * 4096 + 8192 * 33)) / MiB));
    expect(needMbFor(m, 1_000_000, 1)).toBe(needMbFor(m, 131072, 1));
    expect(needMbFor(m, 131072, 1)).toBe(weights + 16 * 1024 + Math.ceil((4 * 512 * (1 + 4 * 4096 + 131072 * 33)) / MiB));
  });
  it('uses the quantized KV cache the record says', () => {
    expect(needMbFor(asNodeModel(LLAMA31_8B, 'q8_0'), 4096, 1)).toBe(weights + 272 + 297);
    expect(needMbFor(asNodeModel(LLAMA31_8B, 'q4_0'), 4096, 1)).toBe(weights + 144 + 297);
  });
  it('loads embedding models and single-slot families with one slot, vision models with at least 2048 tokens', () => {
    const emb = asNodeModel({ ...LLAMA31_8B, name: 'emb', capabilities: ['embedding'] });
    expect(emb.graph).not.toHaveProperty('vocab_size'); // no logits
    expect(needMbFor(emb, 4096, 4)).toBe(needMbFor(emb, 4096, 1));
    expect(slotsOf({ details: { family: 'qwen3vl' } }, 4)).toBe(1);
    expect(slotsOf({ capabilities: ['completion'] }, 4)).toBe(4);
    expect(effectiveNumCtx({ capabilities: ['completion', 'vision'] }, 512)).toBe(2048);
    expect(effectiveNumCtx({}, 1)).toBe(4);
    expect(effectiveNumCtx({ context_length: 2048 }, 8192)).toBe(2048);
  });
  it('answers need_mb when the facts are missing (older worker records, unknown sizes, weights only)', () => {
    expect(needMbFor({ size_mb: 100, need_mb: 120 }, 32768, 8)).toBe(120);
    expect(needMbFor({ size_mb: 0, need_mb: 24000, need_source: 'unknown' }, 1024, 1)).toBe(24000);
    expect(estimateNeedMb({ name: 'x', size_bytes: 10 * MiB }, 4096, 1)).toBe(10);
  });
  it('adds the backend’s correction, so it agrees with the backend’s own figure at the configured context', () => {
    const corrected = { ...m, need_source: 'backend' as const, need_mb: m.need_mb + 50, correction_mb: 50 };
    expect(needMbFor(corrected, 4096, 1)).toBe(corrected.need_mb);
    expect(needMbFor(corrected, 8192, 1) - needMbFor(m, 8192, 1)).toBe(50);
  });
});
