// Model names and sources: folder files, explicit pairs, Ollama's naming rules.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalModelName, findModel, ollamaDisplayName, scanCatalog } from './catalog.js';

describe('names', () => {
  it.each([
    ['llama3', 'llama3:latest'],
    ['Llama3:8B', 'llama3:8b'],
    ['library/llama3', 'llama3:latest'],
    ['registry.ollama.ai/library/llama3:8b', 'llama3:8b'],
    ['alice/toy', 'alice/toy:latest'],
    ['hf.co/org/model:Q4_K_M', 'hf.co/org/model:q4_k_m'],
  ])('%s compares as %s', (name, canonical) => {
    expect(canonicalModelName(name)).toBe(canonical);
  });

  it.each([
    [['registry.ollama.ai', 'library', 'llama3', 'latest'], 'llama3:latest'],
    [['registry.ollama.ai', 'alice', 'toy', 'q8'], 'alice/toy:q8'],
    [['hf.co', 'org', 'model', 'Q4_K_M'], 'hf.co/org/model:Q4_K_M'],
  ] as const)('manifest %j is shown as %s', ([registry, namespace, model, tag], name) => {
    expect(ollamaDisplayName(registry, namespace, model, tag)).toBe(name);
  });
});

describe('scanCatalog', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'catalog-'));
    for (const f of ['a.gguf', 'B.GGUF', 'notes.txt', 'big-00001-of-00002.gguf', 'big-00002-of-00002.gguf', 'mmproj-vision.gguf']) await writeFile(join(dir, f), '');
    await mkdir(join(dir, 'sub.gguf'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('names folder files after their base name, one entry per split model, and lets explicit pairs win', async () => {
    const c = await scanCatalog({ modelsDir: dir, ollamaModelsDir: join(dir, 'no-store'), extraModels: [{ name: 'a', path: '/elsewhere/a.gguf' }] });
    expect(c.entries.map((e) => [e.name, e.source])).toEqual([
      ['a', 'extra'],
      ['B', 'folder'],
      ['big', 'folder'],
    ]);
    expect(findModel(c, 'b:latest')?.path).toBe(join(dir, 'B.GGUF'));
    expect(findModel(c, 'big')?.path).toBe(join(dir, 'big-00001-of-00002.gguf'));
    expect(c.problems.join('\n')).toMatch(/shadowed by \/elsewhere\/a\.gguf/);
    expect(c.problems.join('\n')).toMatch(/Ollama model store .*no-store: does not exist/);
    expect(c.sources).toEqual({ configured: 2, readable: 1 });
  });
});
