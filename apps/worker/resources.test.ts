// What a node reports about its memory: nvidia-smi, NODE_VRAM_GB minus loaded models, or RAM for CPU nodes; each model's need.
import { describe, expect, it } from 'vitest';
import type { BackendProbe } from '../../libs/core/index.js';
import { loadConfig } from '../../libs/config/index.js';
import { needMbFor } from '../../libs/scheduling/index.js';
import { buildNodeRecord, parseNvidiaSmi, type RecordInputs } from './resources.js';

const GB = 1024 ** 3;
const MB = 1024 ** 2;
const probe = (loadedGb = 0): BackendProbe => ({
  healthy: true,
  version: '0.12.0',
  models_available: [{ name: 'qwen3:14b', size_bytes: 9 * GB, arch: { block_count: 40, head_count: 40, head_count_kv: 8, embedding_length: 5120 } }],
  models_loaded: loadedGb ? [{ name: 'qwen3:14b', size_bytes: loadedGb * GB, vram_bytes: loadedGb * GB }] : [],
});
const base = (over: Partial<RecordInputs>): RecordInputs => ({
  id: 'n',
  url: 'http://x',
  backend: 'ollama',
  probe: probe(),
  gpu: null,
  bufferMb: 200,
  numCtx: 4096,
  numParallel: 1,
  slots: 4,
  now: 1,
  ram: { total_mb: 64 * 1024, free_mb: 32 * 1024 },
  ...over,
});

describe('node resources', () => {
  it('parses nvidia-smi and sums several GPUs', () => {
    expect(parseNvidiaSmi('24576, 20000\n24576, 10000\n')).toEqual({ total_mb: 49152, free_mb: 30000 });
    expect(parseNvidiaSmi('[N/A], [N/A]\n')).toBeNull();
  });

  it('uses nvidia-smi when present: capacity leaves out the buffer and memory used outside the backend', () => {
    // 24 GB card, 9 GB of it our loaded model, 3 GB used by something else: 12 GB free.
    const r = buildNodeRecord(base({ gpu: { total_mb: 24 * 1024, free_mb: 12 * 1024 }, probe: probe(9) }));
    expect(r).toMatchObject({ type: 'gpu', vram_total_mb: 24576, vram_available_mb: 12 * 1024 - 200, capacity_mb: 24576 - 200 - 3 * 1024 });
    expect(r.models_loaded).toEqual([{ name: 'qwen3:14b', size_mb: 9216, vram_mb: 9216, size_bytes: 9 * GB, vram_bytes: 9 * GB }]);
  });

  it('without nvidia-smi: NODE_VRAM_GB minus what the backend has loaded', () => {
    const r = buildNodeRecord(base({ nodeVramGb: 24, probe: probe(9) }));
    expect(r).toMatchObject({ type: 'gpu', vram_total_mb: 24576, vram_available_mb: 24576 - 9216 - 200, capacity_mb: 24576 - 200 });
  });

  it('with no VRAM at all it is a CPU node whose capacity is RAM', () => {
    const r = buildNodeRecord(base({ nodeRamGb: 32 }));
    expect(r).toMatchObject({ type: 'cpu', vram_total_mb: 0, ram_total_mb: 32768, capacity_mb: 32768 - 200 });
  });

  it('estimates each model’s need as weights + KV cache + compute graph for NUM_CTX, with the facts to redo it at another context', () => {
    const r = buildNodeRecord(base({ nodeVramGb: 24 }));
    // KV: 40 layers × 8 kv heads × (128 + 128) head widths × 2 bytes (f16) = 160 KiB a token; × 4096 = 640 MiB.
    // Graph (no vocabulary known: attention only): 4 × 512 × (1 + 4 × 5120 + 4096 × (1 + 40)) = 385 878 016 bytes.
    const graph = 4 * 512 * (1 + 4 * 5120 + 4096 * 41);
    expect(r.models_available).toEqual([
      {
        name: 'qwen3:14b',
        size_mb: 9216,
        need_mb: Math.ceil((9 * GB + 640 * MB + graph) / MB),
        need_source: 'estimate',
        size_bytes: 9 * GB,
        details: {},
        kv_bytes_per_token: 160 * 1024,
        kv_cache_type: 'f16',
        graph: { embedding_length: 5120, head_count: 40 },
      },
    ]);
    expect(r.num_ctx).toBe(4096);
    expect(needMbFor(r.models_available[0]!, 4096, 1)).toBe(r.models_available[0]!.need_mb);
  });

  it('sizes the KV cache by KV_CACHE_TYPE, unless the backend says what it uses', () => {
    const q8 = buildNodeRecord(base({ nodeVramGb: 24, kvCacheType: 'q8_0' })).models_available[0]!;
    // q8_0: 34 bytes per 32 elements.
    expect(q8).toMatchObject({ kv_cache_type: 'q8_0', kv_bytes_per_token: 40 * 8 * 256 * (34 / 32) });
    const f16 = buildNodeRecord(base({ nodeVramGb: 24 })).models_available[0]!;
    expect(f16.need_mb - q8.need_mb).toBe(640 - 340); // 640 MiB of f16 KV → 340 MiB of q8_0
    const own = buildNodeRecord(base({ nodeVramGb: 24, kvCacheType: 'q4_0', probe: { ...probe(), kv_cache_type: 'f16' } })).models_available[0]!;
    expect(own).toMatchObject({ kv_cache_type: 'f16', need_mb: f16.need_mb });
  });

  it('reads KV_CACHE_TYPE as Ollama reads OLLAMA_KV_CACHE_TYPE, and names the accepted values for anything else', () => {
    expect(loadConfig({}).KV_CACHE_TYPE).toBe('f16');
    expect(loadConfig({ KV_CACHE_TYPE: 'Q8_0' }).KV_CACHE_TYPE).toBe('q8_0');
    expect(() => loadConfig({ KV_CACHE_TYPE: 'q5_1' })).toThrow(/KV_CACHE_TYPE="q5_1": must be one of f16, q8_0, q4_0/);
  });

  it('takes the backend’s exact need when it has one (llama.cpp), and corrects the formula to agree with it', () => {
    const exact = { ...probe(), models_available: [{ name: 'tiny', size_bytes: 521_248, need_bytes: 7_865_600 }] };
    expect(buildNodeRecord(base({ probe: exact })).models_available).toEqual([{ name: 'tiny', size_mb: 0, need_mb: 8, need_source: 'backend', size_bytes: 521_248, details: {} }]);
    const arch = { block_count: 2, head_count: 4, head_count_kv: 4, embedding_length: 64, context_length: 4096, vocab_size: 360 };
    const withArch = buildNodeRecord(base({ probe: { ...exact, models_available: [{ name: 'tiny', size_bytes: 521_248, need_bytes: 7_865_600, arch }] } })).models_available[0]!;
    expect(withArch).toMatchObject({ need_mb: 8, need_source: 'backend', correction_mb: expect.any(Number) });
    // At the configured context the formula gives llama.cpp's figure; a longer context adds the formula's growth.
    expect(needMbFor(withArch, 4096, 1)).toBe(8);
    expect(needMbFor(withArch, 4096, 2)).toBeGreaterThan(8);
  });

  it('shows a model of unknown size as unknown, counted as the whole capacity', () => {
    const unknown: BackendProbe = { ...probe(), models_available: [{ name: 'served', size_bytes: 0, size_unknown: true }] };
    const r = buildNodeRecord(base({ nodeVramGb: 24, probe: unknown }));
    expect(r.models_available[0]).toMatchObject({ name: 'served', size_mb: 0, need_mb: r.capacity_mb, need_source: 'unknown' });
    expect(needMbFor(r.models_available[0]!, 32768, 8)).toBe(r.capacity_mb);
    // Weights known but no architecture: the weights alone, said so.
    const sized: BackendProbe = { ...probe(), models_available: [{ name: 'served', size_bytes: 2 * GB }] };
    expect(buildNodeRecord(base({ nodeVramGb: 24, probe: sized })).models_available[0]).toMatchObject({ need_mb: 2048, need_source: 'weights' });
  });

  it('copies what /api/tags, /api/ps and the capability check need: digest, dates, details, capabilities, expiry, context', () => {
    const details = { format: 'gguf', family: 'qwen3', families: ['qwen3'], parameter_size: '14.8B', quantization_level: 'Q4_K_M' };
    const rich: BackendProbe = {
      ...probe(),
      models_available: [{ name: 'qwen3:14b', size_bytes: 9 * GB, digest: 'abc', modified_at: '2025-01-01T00:00:00+01:00', details, capabilities: ['completion', 'tools', 'thinking'] }],
      models_loaded: [{ name: 'qwen3:14b', size_bytes: 9 * GB, vram_bytes: 9 * GB, expires_at: '2025-01-01T00:05:00+01:00', digest: 'abc', context_length: 4096 }],
    };
    const r = buildNodeRecord(base({ nodeVramGb: 24, probe: rich }));
    expect(r.models_available[0]).toMatchObject({ digest: 'abc', modified_at: '2025-01-01T00:00:00+01:00', details, capabilities: ['completion', 'tools', 'thinking'] });
    expect(r.models_loaded[0]).toMatchObject({ expires_at: '2025-01-01T00:05:00+01:00', digest: 'abc', context_length: 4096 });
    // A backend that reports no capabilities leaves them out: unknown, which never blocks a request.
    expect(buildNodeRecord(base({})).models_available[0]).not.toHaveProperty('capabilities');
  });

  it('marks simulated nodes from the backend version', () => {
    expect(buildNodeRecord(base({ probe: { ...probe(), version: '0.12.0-simulated' } })).simulated).toBe(true);
    expect(buildNodeRecord(base({})).simulated).toBe(false);
  });
});
