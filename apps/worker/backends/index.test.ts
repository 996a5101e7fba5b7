// The backend table: BACKEND=auto walks it in order, a named kind is built without probing, OPENAI_MODEL_SIZES reaches the probe.
import { describe, expect, it } from 'vitest';
import { BACKEND_KINDS } from '../../../libs/core/index.js';
import { ConfigError, loadConfig } from '../../../libs/config/index.js';
import { silentLogger } from '../../../libs/logger/index.js';
import { freePort } from '../../../test/support/wait.js';
import { cleanups, sim } from '../../../test/support/backend-fixtures.js';
import type { InferenceBackend } from './backend.js';
import { BACKENDS, chooseBackend } from './index.js';

async function choose(env: Record<string, string>): Promise<InferenceBackend> {
  const b = await chooseBackend(loadConfig(env), silentLogger());
  cleanups.push(() => b.close());
  return b;
}
const nobody = async () => `http://127.0.0.1:${await freePort()}`;

describe('backend table', () => {
  it('has one entry per backend kind, in BACKEND=auto order', () => {
    expect(Object.keys(BACKENDS)).toEqual([...BACKEND_KINDS]);
  });

  it('auto takes Ollama when it answers', async () => {
    const n = await sim();
    const b = await choose({ OLLAMA_URL: n.url, OPENAI_BASE_URL: `${n.url}/v1` });
    expect(b.kind).toBe('ollama');
  });

  it('auto passes over a silent Ollama to OPENAI_BASE_URL, whose models get their OPENAI_MODEL_SIZES', async () => {
    const n = await sim();
    const b = await choose({ OLLAMA_URL: await nobody(), OPENAI_BASE_URL: `${n.url}/v1`, OPENAI_MODEL_SIZES: 'm:8b=8,emb=0.5' });
    expect(b.kind).toBe('openai');
    const p = await b.probe();
    expect(p.models_available).toEqual([
      { name: 'm:8b', size_bytes: 8 * 1024 ** 3 },
      { name: 'emb', size_bytes: 512 * 1024 ** 2 },
      { name: 'huge', size_bytes: 0, size_unknown: true },
    ]);
  });

  it('a named kind is built without a probe', async () => {
    const b = await choose({ BACKEND: 'ollama', OLLAMA_URL: await nobody() });
    expect(b.kind).toBe('ollama');
  });

  it('BACKEND=openai without OPENAI_BASE_URL says which variable is missing', async () => {
    await expect(choose({ BACKEND: 'openai' })).rejects.toThrow(ConfigError);
    await expect(choose({ BACKEND: 'openai' })).rejects.toThrow(/OPENAI_BASE_URL: required when BACKEND=openai/);
  });
});
