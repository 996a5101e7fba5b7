// What a node reports about its memory: nvidia-smi, NODE_VRAM_GB minus loaded models, or RAM for CPU nodes.
import { describe, expect, it } from 'vitest';
import type { BackendProbe } from '../../libs/core/index.js';
import { buildNodeRecord, parseNvidiaSmi, type RecordInputs } from './resources.js';

const GB = 1024 ** 3;
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

  it('estimates each model’s need as weights + KV cache for NUM_CTX', () => {
    const r = buildNodeRecord(base({ nodeVramGb: 24 }));
    // KV: 2 × 40 layers × 8 kv heads × 128 head dim × 4096 ctx × 2 bytes = 640 MiB.
    expect(r.models_available).toEqual([{ name: 'qwen3:14b', size_mb: 9216, need_mb: 9216 + 640, size_bytes: 9 * GB, details: {} }]);
  });

  it('takes the backend’s exact need when it has one (llama.cpp)', () => {
    const exact = { ...probe(), models_available: [{ name: 'tiny', size_bytes: 521_248, need_bytes: 7_865_600 }] };
    expect(buildNodeRecord(base({ probe: exact })).models_available).toEqual([{ name: 'tiny', size_mb: 0, need_mb: 8, size_bytes: 521_248, details: {} }]);
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
