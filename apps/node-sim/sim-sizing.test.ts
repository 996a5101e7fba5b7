// The simulated node's memory arithmetic by table: KV cache per slot and per cache type, graph, context limits, placement and offload.
import { describe, expect, it } from 'vitest';
import { archOf, type SimModelSpec } from './sim-models.js';
import { footprint, place } from './sim-sizing.js';

const GiB = 1024 ** 3;
const chat8: SimModelSpec = { name: 'm:8b', sizeGb: 8 };
const vision: SimModelSpec = { name: 'llava', sizeGb: 4.7, capabilities: ['completion', 'vision'] };
const embed: SimModelSpec = { name: 'emb', sizeGb: 0.5, embeddingLength: 768 };

describe('footprint', () => {
  // m:8b: 40 layers, 8 kv heads of 128 (5120 / 40): K + V in f16 = 2 × 8 × 128 × 2 bytes × 40 layers = 160 KiB a token.
  const kvPerToken = 2 * 8 * 128 * 2 * 40;
  const graph = (ctx: number, heads: number, width: number): number => 4 * 512 * (1 + 4 * width + ctx * (1 + heads));

  it.each([
    { what: 'f16, 4096 × 4 slots', numCtx: 4096, parallel: 4, kvType: 'f16' as const, kv: kvPerToken * 4096 * 4, ctx: 4096 },
    { what: 'f16, 2048 × 1 slot', numCtx: 2048, parallel: 1, kvType: 'f16' as const, kv: kvPerToken * 2048, ctx: 2048 },
    // ggml blocks of 32 elements: q8_0 in 34 bytes, q4_0 in 18 (vs 64 bytes of f16).
    { what: 'q8_0', numCtx: 4096, parallel: 4, kvType: 'q8_0' as const, kv: (kvPerToken * 4096 * 4 * 34) / 64, ctx: 4096 },
    { what: 'q4_0', numCtx: 4096, parallel: 4, kvType: 'q4_0' as const, kv: (kvPerToken * 4096 * 4 * 18) / 64, ctx: 4096 },
    // Capped at the model's training context (40960), as Ollama's runner does.
    { what: 'num_ctx past the training context', numCtx: 100_000, parallel: 1, kvType: 'f16' as const, kv: kvPerToken * 40960, ctx: 40960 },
    { what: 'num_ctx below 4', numCtx: 1, parallel: 1, kvType: 'f16' as const, kv: kvPerToken * 4, ctx: 4 },
  ])('weights + KV + graph for a chat model: $what', ({ numCtx, parallel, kvType, kv, ctx }) => {
    const fp = footprint(chat8, numCtx, parallel, kvType);
    expect(fp).toMatchObject({ weights: 8 * GiB, kv, numCtx: ctx, parallel });
    // The attention scratch outgrows the logits buffer (4 · batch · (5120 + 128256)) from a few thousand tokens.
    const batch = Math.min(512, ctx);
    const expectedGraph = Math.max((graph(ctx * parallel, 40, 5120) * batch) / 512, 4 * batch * (5120 + 128256));
    expect(fp.graph).toBe(expectedGraph);
    expect(fp.total).toBe(fp.weights + fp.kv + fp.graph);
  });

  it('reports the numbers it sizes from in /api/show terms', () => {
    expect(archOf(chat8)).toEqual({ block_count: 40, embedding_length: 5120, head_count: 40, head_count_kv: 8, context_length: 40960, key_length: 128, value_length: 128 });
  });

  it('gives a vision model at least 2048 tokens, and an embedding model one slot and no logits buffer', () => {
    expect(footprint(vision, 512, 4, 'f16').numCtx).toBe(2048);
    const e = footprint(embed, 4096, 4, 'f16');
    // 12 layers × 12 kv heads × (64 + 64) × 2 bytes a token, one slot.
    expect(e).toMatchObject({ parallel: 1, numCtx: 4096, kv: 12 * 12 * 128 * 2 * 4096, graph: 4 * 512 * (1 + 4 * 768 + 4096 * 13) });
  });
});

describe('place', () => {
  const fp = footprint(chat8, 4096, 4, 'f16'); // 11.8 GiB

  it('puts a model that fits in VRAM, offloads the rest of a bigger one to RAM, and refuses one that fits neither', () => {
    expect(place(fp, 24 * GiB, 64 * GiB)).toEqual({ fp, vramBytes: fp.total, ramBytes: 0, offload: false });
    expect(place(fp, 8 * GiB, 64 * GiB)).toEqual({ fp, vramBytes: 8 * GiB, ramBytes: fp.total - 8 * GiB, offload: true });
    expect(place(fp, 8 * GiB, 2 * GiB)).toEqual({ error: 'model requires more system memory (3.8 GiB) than is available (2.0 GiB)' });
    expect(place(fp, 8 * GiB, 0)).toEqual({ error: 'model requires more system memory (3.8 GiB) than is available (0.0 GiB)' });
  });
});
