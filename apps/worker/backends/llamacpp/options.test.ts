// Ollama options → node-llama-cpp generation settings, by table.
import { describe, expect, it } from 'vitest';
import { OLLAMA_DEFAULTS, doneReason, planGeneration, unloadsAfter } from './options.js';
import { defaultThreads } from './runtime.js';

describe('planGeneration', () => {
  it('uses Ollama defaults when the job sets nothing', () => {
    expect(planGeneration(undefined)).toEqual({
      temperature: OLLAMA_DEFAULTS.temperature,
      topK: 40,
      topP: 0.9,
      minP: 0,
      repeatPenalty: { penalty: 1.1, lastTokens: 64 },
      stop: [],
    });
  });

  it.each([
    ['temperature 0 is greedy', { temperature: 0 }, { temperature: 0 }],
    ['seed kept', { seed: 42 }, { seed: 42 }],
    ['seed -1 is random (no seed)', { seed: -1 }, { seed: undefined }],
    ['top_k / top_p / min_p', { top_k: 5, top_p: 0.5, min_p: 0.05 }, { topK: 5, topP: 0.5, minP: 0.05 }],
    ['num_predict caps tokens', { num_predict: 12 }, { maxTokens: 12 }],
    ['num_predict -1 runs to a full window', { num_predict: -1 }, { maxTokens: undefined }],
    ['num_predict -2 fills the window', { num_predict: -2 }, { maxTokens: undefined }],
    ['stop strings, empty ones dropped', { stop: ['\n\n', ''] }, { stop: ['\n\n'] }],
    ['num_ctx', { num_ctx: 8192 }, { contextSize: 8192 }],
    ['repeat_penalty 1 disables', { repeat_penalty: 1 }, { repeatPenalty: false }],
    ['repeat_last_n 0 disables', { repeat_penalty: 1.3, repeat_last_n: 0 }, { repeatPenalty: false }],
    ['repeat_last_n -1 is the whole context', { repeat_penalty: 1.3, repeat_last_n: -1 }, { repeatPenalty: { penalty: 1.3 } }],
    ['frequency and presence penalties', { repeat_penalty: 1, frequency_penalty: 0.2, presence_penalty: 0.1 }, { repeatPenalty: { penalty: 1, lastTokens: 64, frequencyPenalty: 0.2, presencePenalty: 0.1 } }],
  ])('%s', (_name, options, expected) => {
    const plan = planGeneration(options);
    for (const [k, v] of Object.entries(expected)) expect(plan[k as keyof typeof plan]).toEqual(v);
  });

  it('layers job options over model defaults over Ollama defaults', () => {
    const plan = planGeneration({ top_k: 3 }, { temperature: 0.2, top_k: 10, stop: ['<|end|>'] });
    expect(plan).toMatchObject({ temperature: 0.2, topK: 3, stop: ['<|end|>'] });
  });
});

describe('unloadsAfter (keep_alive)', () => {
  it.each([
    [0, true],
    ['0', true],
    ['0s', true],
    ['0m', true],
    [undefined, false],
    [-1, false],
    ['5m', false],
    [300, false],
  ] as const)('%j → %s', (keepAlive, expected) => {
    expect(unloadsAfter(keepAlive)).toBe(expected);
  });
});

it('maps stop reasons to done_reason', () => {
  expect(doneReason('maxTokens')).toBe('length');
  for (const r of ['eogToken', 'customStopTrigger', 'stopGenerationTrigger']) expect(doneReason(r)).toBe('stop');
});

it.each([
  [1, 1],
  [2, 1],
  [4, 3],
  [8, 4],
  [64, 4],
])('defaultThreads on %i cores is %i (never all cores, at most 4)', (cores, threads) => {
  expect(defaultThreads(cores)).toBe(threads);
});
