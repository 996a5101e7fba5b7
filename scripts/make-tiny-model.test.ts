// The make-tiny-model CLI writes the same bytes as the library, where it is told to.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { encodeGguf, tinyModelGguf } from '../libs/tiny-model/index.js';
import { main } from './make-tiny-model.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'make-tiny-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

it('writes the model to --out and says where', async () => {
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  try {
    const path = join(dir, 'nested', 'toy.gguf');
    expect(await main(['--out', path])).toBe(0);
    expect((await readFile(path)).equals(encodeGguf(tinyModelGguf()))).toBe(true);
    expect(out.mock.calls.map((c) => String(c[0])).join('')).toContain(path);
  } finally {
    out.mockRestore();
  }
});

it('rejects an unknown argument with usage', async () => {
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    expect(await main(['--nope'])).toBe(2);
    expect(err.mock.calls.map((c) => String(c[0])).join('')).toContain('usage: make-tiny-model');
  } finally {
    err.mockRestore();
  }
});
