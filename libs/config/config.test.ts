// The env schema: defaults, errors that name the variable, and .env.example listing every variable.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_KEYS, ConfigError, loadConfig } from './index.js';

describe('config', () => {
  it('has working defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ REDIS_URL: 'redis://127.0.0.1:6379', PORT: 8080, HOST: '127.0.0.1', API_KEYS: [], VRAM_BUFFER_MB: 200, BACKEND: 'auto' });
  });
  it('names every bad variable and says why', () => {
    try {
      loadConfig({ PORT: '70000', REDIS_URL: 'http://x', BACKEND: 'gpu', API_KEYS: 'short', NODE_VRAM_GB: '-1' });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      const msg = (e as Error).message;
      expect(msg).toMatch(/PORT="70000": must be a port number/);
      expect(msg).toMatch(/REDIS_URL="http:\/\/x": must start with redis:\/\/ or rediss:\/\//);
      expect(msg).toMatch(/BACKEND="gpu"/);
      expect(msg).toMatch(/API_KEYS=\(secret, not shown\): each key must be at least 16 characters/);
      expect(msg).not.toContain('short'); // a bad key is still a secret: never printed
      expect(msg).toMatch(/NODE_VRAM_GB="-1"/);
    }
  });
  it('parses API_KEYS as a comma list', () => {
    expect(loadConfig({ API_KEYS: 'aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbb' }).API_KEYS).toEqual(['aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb']);
  });
  it('parses OPENAI_MODEL_SIZES as GB by model name', () => {
    expect(loadConfig({}).OPENAI_MODEL_SIZES).toEqual({});
    expect(loadConfig({ OPENAI_MODEL_SIZES: 'qwen3:14b=9.3, hf.co/org/m:Q4_K_M=0.5,' }).OPENAI_MODEL_SIZES).toEqual({ 'qwen3:14b': 9.3, 'hf.co/org/m:Q4_K_M': 0.5 });
  });
  it.each(['qwen3:14b', 'qwen3:14b=', '=2', 'qwen3:14b=big', 'qwen3:14b=-1'])('says how to write OPENAI_MODEL_SIZES, not %j', (bad) => {
    expect(() => loadConfig({ OPENAI_MODEL_SIZES: `llama3.2:3b=2,${bad}` })).toThrow(
      `OPENAI_MODEL_SIZES="llama3.2:3b=2,${bad}": must be "name=GB,..." with sizes in GB (GiB), e.g. "qwen3:14b=9.3,llama3.2:3b=2"; "${bad}" is not`,
    );
  });
  it('.env.example lists every variable, and only those', () => {
    const text = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');
    const listed = text.split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => l.slice(0, l.indexOf('=')));
    expect(listed.sort()).toEqual([...CONFIG_KEYS].sort());
    // and its defaults parse
    const env = Object.fromEntries(text.split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    expect(() => loadConfig(env)).not.toThrow();
  });
});
