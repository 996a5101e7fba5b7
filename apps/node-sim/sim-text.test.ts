// The simulated node's embeddings: deterministic unit vectors that carry word overlap (hashed bag of words plus noise).
import { describe, expect, it } from 'vitest';
import { embeddingFor } from './sim-text.js';

const cos = (a: number[], b: number[]): number => a.reduce((s, x, i) => s + x * b[i]!, 0);
const norm = (a: number[]): number => Math.sqrt(cos(a, a));

describe('simulated embeddings', () => {
  it('gives the same unit vector for the same text, of the width asked', () => {
    for (const len of [16, 384, 768]) {
      const v = embeddingFor('How do I reverse a linked list in Python?', len);
      expect(v).toHaveLength(len);
      expect(norm(v)).toBeCloseTo(1, 9);
      expect(embeddingFor('How do I reverse a linked list in Python?', len)).toEqual(v);
    }
  });

  it('puts texts sharing content words close and texts sharing none near zero', () => {
    const e = (t: string) => embeddingFor(t, 768);
    const q = e('How do I reverse a linked list in Python?');
    // Reworded, same content words (stopwords, case and plurals ignored).
    expect(cos(q, e('Reverse a linked list in python: how?'))).toBeGreaterThan(0.95);
    expect(cos(q, e('What is the way to reverse linked lists with Python'))).toBeGreaterThan(0.8);
    // Shares two of four content words.
    const partial = cos(q, e('How do I sort a list in Python?'));
    expect(partial).toBeGreaterThan(0.3);
    expect(partial).toBeLessThan(0.8);
    // Nothing in common.
    expect(Math.abs(cos(q, e('Write a haiku about autumn leaves')))).toBeLessThan(0.2);
  });

  it('stems lightly: trailing s, ing and ed, only when 3 characters remain', () => {
    const e = (t: string) => embeddingFor(t, 384);
    expect(cos(e('tokens counted'), e('token count'))).toBeGreaterThan(0.95);
    expect(cos(e('caching'), e('cache'))).toBeLessThan(0.5); // "cach" is not "cache": light stemming only
    // Stopwords only: the text's noise alone, still a unit vector, unlike another such text.
    expect(norm(e('is it'))).toBeCloseTo(1, 9);
    expect(Math.abs(cos(e('is it'), e('what is')))).toBeLessThan(0.3);
  });

  it('differs from the old SHA-256 noise: word order does not matter, the text hash only a little', () => {
    const a = embeddingFor('alpha beta gamma', 64);
    const b = embeddingFor('gamma beta alpha', 64);
    expect(a).not.toEqual(b);
    expect(cos(a, b)).toBeGreaterThan(0.97);
  });
});
