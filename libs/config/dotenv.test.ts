// Settings files: .env under the environment, HYDRA_ENV_FILE, `off`, and a named file that is missing.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dotEnvLoaded, loadDotEnv } from './dotenv.js';
import { ConfigError, loadConfig } from './index.js';

describe('loadDotEnv', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hydra-dotenv-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, '.env'), '# a comment\nPORT=9001\nHOST=0.0.0.0\nLOG_LEVEL="debug"\nAPI_KEYS=from-the-file-0123456789\nHYDRA_ENV_FILE=elsewhere\n');
  writeFileSync(join(dir, 'other.env'), 'PORT=9002\n');

  it('loads .env from the working directory under the environment, and says which came from where', () => {
    const env: NodeJS.ProcessEnv = { HOST: '127.0.0.1', API_KEYS: '' };
    const r = loadDotEnv(env, dir);
    expect(r.path).toBe(join(dir, '.env'));
    expect(env).toMatchObject({ PORT: '9001', HOST: '127.0.0.1', LOG_LEVEL: 'debug', API_KEYS: 'from-the-file-0123456789' });
    // An empty value in the environment is unset, as loadConfig reads it; the file cannot name another file.
    expect(r.loaded.sort()).toEqual(['API_KEYS', 'LOG_LEVEL', 'PORT']);
    expect(r.overridden).toEqual(['HOST']);
    expect(env.HYDRA_ENV_FILE).toBeUndefined();
    expect(dotEnvLoaded()).toBe(r);
    // What the processes then parse.
    expect(loadConfig(env)).toMatchObject({ PORT: 9001, HOST: '127.0.0.1', LOG_LEVEL: 'debug' });
  });

  it('reads the file HYDRA_ENV_FILE names instead (relative to the working directory); off reads none', () => {
    const env: NodeJS.ProcessEnv = { HYDRA_ENV_FILE: 'other.env' };
    expect(loadDotEnv(env, dir)).toMatchObject({ path: join(dir, 'other.env'), loaded: ['PORT'] });
    expect(env.PORT).toBe('9002');
    const off: NodeJS.ProcessEnv = { HYDRA_ENV_FILE: 'off' };
    expect(loadDotEnv(off, dir)).toEqual({ path: null, loaded: [], overridden: [] });
    expect(off.PORT).toBeUndefined();
  });

  it('without a .env does nothing; a named file that is missing stops with a message naming HYDRA_ENV_FILE', () => {
    const empty = mkdtempSync(join(tmpdir(), 'hydra-dotenv-none-'));
    try {
      const env: NodeJS.ProcessEnv = {};
      expect(loadDotEnv(env, empty)).toEqual({ path: null, loaded: [], overridden: [] });
      expect(env).toEqual({});
      expect(() => loadDotEnv({ HYDRA_ENV_FILE: 'missing.env' }, empty)).toThrow(ConfigError);
      expect(() => loadDotEnv({ HYDRA_ENV_FILE: 'missing.env' }, empty)).toThrow(/HYDRA_ENV_FILE="missing.env": cannot read the settings file \(ENOENT\)/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
