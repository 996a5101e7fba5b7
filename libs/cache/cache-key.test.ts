// Cache keys and policy: what makes two requests the same, and what is cached by default. Table-driven, no Redis.
import { describe, expect, it } from 'vitest';
import type { InferenceCall } from '../core/index.js';
import { cacheDecision, cacheKeyOf, canonicalJson, hashKey, isDeterministic } from './cache-key.js';

const g = (extra: Partial<Extract<InferenceCall, { type: 'generate' }>> = {}): InferenceCall => ({ type: 'generate', model: 'm', prompt: 'p', ...extra });

describe('cache key', () => {
  it('sorts keys at every level', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"y":2,"z":1}]},"b":1}');
  });

  const same: [string, InferenceCall, InferenceCall][] = [
    ['option order', g({ options: { temperature: 0, top_k: 5 } }), g({ options: { top_k: 5, temperature: 0 } })],
    ['keep_alive (only how long the model stays loaded)', g({ keep_alive: '5m' }), g({ keep_alive: 0 })],
    ['llama3 = llama3:latest', g({ model: 'llama3' }), g({ model: 'llama3:latest' })],
  ];
  it.each(same)('ignores %s', (_why, a, b) => expect(cacheKeyOf(a)).toBe(cacheKeyOf(b)));

  const different: [string, InferenceCall, InferenceCall][] = [
    ['temperature', g({ options: { temperature: 0 } }), g({ options: { temperature: 0.7 } })],
    ['seed', g({ options: { seed: 1 } }), g({ options: { seed: 2 } })],
    ['an unknown option', g({ options: { temperature: 0 } }), g({ options: { temperature: 0, mirostat: 1 } })],
    ['system', g(), g({ system: 's' })],
    ['format', g(), g({ format: 'json' })],
    ['model', g(), g({ model: 'n' })],
    ['prompt', g(), g({ prompt: 'q' })],
    ['type', g(), { type: 'chat', model: 'm', messages: [{ role: 'user', content: 'p' }] }],
    ['images', { type: 'chat', model: 'm', messages: [{ role: 'user', content: 'p' }] }, { type: 'chat', model: 'm', messages: [{ role: 'user', content: 'p', images: ['aGk='] }] }],
  ];
  it.each(different)('depends on %s', (_why, a, b) => expect(cacheKeyOf(a)).not.toBe(cacheKeyOf(b)));

  it('is 64 hex characters, and other values share the key space without colliding', () => {
    expect(cacheKeyOf(g())).toMatch(/^[0-9a-f]{64}$/);
    expect(hashKey({ kind: 'orchestrate' })).not.toBe(cacheKeyOf(g()));
  });
});

describe('cache policy', () => {
  const rows: [string, InferenceCall, boolean | undefined, boolean][] = [
    ['temperature 0', g({ options: { temperature: 0 } }), undefined, true],
    ['a seed', g({ options: { seed: 7, temperature: 0.8 } }), undefined, true],
    ['sampled', g({ options: { temperature: 0.8 } }), undefined, false],
    ['no options (model default sampling)', g(), undefined, false],
    ['embeddings', { type: 'embed', model: 'm', input: 'x' }, undefined, true],
    ['cache: true forces', g(), true, true],
    ['cache: false bypasses', g({ options: { temperature: 0 } }), false, false],
  ];
  it.each(rows)('%s', (_why, call, requested, use) => {
    expect(cacheDecision(call, requested).use).toBe(use);
    if (requested === undefined) expect(isDeterministic(call)).toBe(use);
  });
});
