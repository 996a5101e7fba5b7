// Measured speed: one job's sample, the EWMA arithmetic, and what dispatch and the start estimate read from it.
import { describe, expect, it } from 'vitest';
import type { InferenceOutput, ModelPerf, NodeRecord } from '../core/index.js';
import { ewmaStep, expectedTokensPerS, foldSample, measuredLine, perfFor, perfSampleOf, type PerfNode, type PerfSample } from './perf.js';

const out = (o: Partial<InferenceOutput>): InferenceOutput => ({
  model: 'm',
  prompt_tokens: 10,
  completion_tokens: 100,
  total_duration_ms: 0,
  load_duration_ms: 0,
  prompt_eval_duration_ms: 20,
  eval_duration_ms: 2000,
  ...o,
});

describe('a job’s sample', () => {
  it('is eval_count / eval_duration, the first token without the load, and the load only when one happened', () => {
    // 100 tokens in 2 s; the first piece 1.53 s after the call, 1.5 s of it loading the model.
    const s = perfSampleOf(out({ load_duration_ms: 1500 }), { callMs: 3600, firstTokenMs: 1530, loaded: true });
    expect(s).toEqual({ tokens_per_s: 50, ttft_ms: 30, job_ms: 2100, load_ms: 1500 });
    // A warm node's few ms of "load" are not a load.
    expect(perfSampleOf(out({ load_duration_ms: 3 }), { callMs: 2100, firstTokenMs: 53, loaded: false })).toEqual({ tokens_per_s: 50, ttft_ms: 50, job_ms: 2097 });
  });
  it('takes the backend’s prompt time when nothing streamed, and learns nothing from jobs that decoded nothing', () => {
    expect(perfSampleOf(out({}), { callMs: 2050, loaded: false })?.ttft_ms).toBe(20);
    expect(perfSampleOf(out({ completion_tokens: 0, eval_duration_ms: 0 }), { callMs: 5, loaded: false })).toBeNull(); // embeddings
    expect(perfSampleOf(out({ eval_duration_ms: 0 }), { callMs: 5, loaded: false })).toBeNull();
  });
});

describe('EWMA', () => {
  it('averages the first 1/alpha samples, then weighs each new one by alpha', () => {
    expect(ewmaStep(0, 40, 1)).toBe(40);
    expect(ewmaStep(40, 60, 2)).toBe(50); // mean of 40, 60
    expect(ewmaStep(50, 80, 3)).toBe(60); // mean of 40, 60, 80
    expect(ewmaStep(100, 50, 10)).toBe(90); // 100 + 0.2 × (50 − 100)
    expect(ewmaStep(100, 50, 10, 0.5)).toBe(75);
  });

  const sample = (tps: number, load?: number): PerfSample => ({ tokens_per_s: tps, ttft_ms: tps / 10, job_ms: 1000 / tps, ...(load === undefined ? {} : { load_ms: load }) });
  it('folds samples into every figure; load_ms has its own count and stays absent until a load is seen', () => {
    let p: ModelPerf | undefined;
    p = foldSample(p, sample(100), 1);
    expect(p).toEqual({ tokens_per_s: 100, ttft_ms: 10, job_ms: 10, samples: 1, load_samples: 0, updated_at: 1 });
    p = foldSample(p, sample(50, 2000), 2);
    expect(p).toEqual({ tokens_per_s: 75, ttft_ms: 7.5, job_ms: 15, load_ms: 2000, samples: 2, load_samples: 1, updated_at: 2 });
    p = foldSample(p, sample(60), 3);
    expect(p).toMatchObject({ tokens_per_s: (100 + 50 + 60) / 3, load_ms: 2000, samples: 3, load_samples: 1 });
  });
  it('converges to a changed speed within a few tens of jobs, and a single outlier moves it by alpha', () => {
    let p: ModelPerf | undefined;
    for (let i = 0; i < 20; i++) p = foldSample(p, sample(100), i);
    p = foldSample(p, sample(10), 20);
    expect(p.tokens_per_s).toBeCloseTo(100 - 0.2 * 90, 9); // one slow job: 82, not 10
    for (let i = 0; i < 30; i++) p = foldSample(p, sample(40), 21 + i);
    expect(p.tokens_per_s).toBeGreaterThan(40);
    expect(p.tokens_per_s).toBeLessThan(40.1);
  });
});

const node = (id: string, o: Partial<PerfNode> = {}): PerfNode => ({
  id,
  url: `http://${id}`,
  backend: 'ollama',
  type: 'gpu',
  healthy: true,
  simulated: true,
  host: 'h',
  vram_total_mb: 24576,
  vram_available_mb: 24576,
  ram_total_mb: 0,
  ram_available_mb: 0,
  capacity_mb: 24376,
  buffer_mb: 200,
  models_available: [{ name: 'm:8b', size_mb: 8192, need_mb: 9000 }],
  models_loaded: [{ name: 'm:8b', size_mb: 9000, vram_mb: 9000 }],
  slots: 2,
  parallel: 2,
  last_heartbeat: 0,
  active_jobs: 0,
  ...o,
});
const perf = (tps: number, jobMs: number, loadMs?: number): Record<string, ModelPerf> => ({
  'm:8b': { tokens_per_s: tps, ttft_ms: 50, job_ms: jobMs, ...(loadMs === undefined ? {} : { load_ms: loadMs }), samples: 5 },
});

describe('reading a node’s figures', () => {
  it('expectedTokensPerS finds the model by its canonical name and is undefined when unknown', () => {
    const n: Pick<NodeRecord, 'perf'> = { perf: { 'llama3:latest': { tokens_per_s: 42, ttft_ms: 100, samples: 3 } } };
    expect(expectedTokensPerS(n, 'llama3')).toBe(42);
    expect(expectedTokensPerS(n, 'llama3:latest')).toBe(42);
    expect(perfFor(n, 'llama3')?.ttft_ms).toBe(100);
    expect(expectedTokensPerS(n, 'qwen3:8b')).toBeUndefined();
    expect(expectedTokensPerS({}, 'llama3')).toBeUndefined();
    expect(expectedTokensPerS({ perf: { 'x:latest': { tokens_per_s: 0, ttft_ms: 0, samples: 0 } } }, 'x')).toBeUndefined();
  });

  it.each([
    // [what, nodes, jobs/s, ms until a slot frees]
    ['one idle node, 2 slots of 1 s jobs', [node('a', { perf: perf(50, 1000) })], 2, 0],
    ['a busy node: half a job left on average', [node('a', { perf: perf(50, 1000), active_jobs: 2 })], 2, 500],
    ['busy and idle nodes: the idle one starts it', [node('a', { perf: perf(50, 1000), active_jobs: 2 }), node('b', { perf: perf(25, 4000) })], 2.5, 0],
    ['a cold node adds its measured load', [node('a', { perf: perf(50, 1000, 3000), models_loaded: [] })], 2, 3000],
    ['unmeasured, unhealthy or model-less nodes say nothing', [node('a'), node('b', { perf: perf(50, 1000), healthy: false }), node('c', { perf: perf(50, 1000), models_available: [] })], null, null],
  ] as const)('%s', (_what, nodes, perSecond, firstFreeMs) => {
    expect(measuredLine(nodes, 'm:8b')).toEqual({ perSecond, firstFreeMs });
  });
});
