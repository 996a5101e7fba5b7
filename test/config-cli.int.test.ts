// Settings files as a user meets them: `hydra config` in a directory with a .env (the environment wins, secrets
// masked, where each value came from), and a command that takes HYDRA_URL from the file.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HYDRA_BIN } from './support/cluster.js';
import { freePort } from './support/wait.js';

const SECRET = 'file-secret-key-0123456789abcdef';

describe('settings files (.env) and hydra config', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hydra-config-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // HYDRA_ENV_FILE unset for these children (the test run sets it to off for every other hydra process).
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !['HYDRA_ENV_FILE', 'HOST', 'PORT', 'API_KEYS', 'HYDRA_URL', 'REDIS_URL'].includes(k)));
  const hydra = (args: string[], env: Record<string, string> = {}) => spawnSync(process.execPath, [HYDRA_BIN, ...args], { cwd: dir, env: { ...inherited, ...env }, encoding: 'utf8', timeout: 30_000 });

  it('prints every variable with its source: environment over the file over the default; secrets and URL passwords masked', () => {
    writeFileSync(join(dir, '.env'), `PORT=9123\nHOST=0.0.0.0\nAPI_KEYS=${SECRET}\nREDIS_URL=redis://:hunter2@10.0.0.5:6379\n`);
    const r = hydra(['config', '--json'], { HOST: '127.0.0.1' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).not.toContain(SECRET);
    expect(r.stdout).not.toContain('hunter2');
    const out = JSON.parse(r.stdout);
    expect(out.file).toBe(join(dir, '.env'));
    expect(out.overridden_by_environment).toEqual(['HOST']);
    const v = Object.fromEntries(out.variables.map((l: { name: string }) => [l.name, l]));
    expect(v.PORT).toEqual({ name: 'PORT', value: '9123', source: 'file' });
    expect(v.HOST).toEqual({ name: 'HOST', value: '127.0.0.1', source: 'environment' });
    expect(v.API_KEYS).toEqual({ name: 'API_KEYS', value: '(secret, set)', source: 'file' });
    expect(v.REDIS_URL).toEqual({ name: 'REDIS_URL', value: 'redis://***@10.0.0.5:6379', source: 'file' });
    expect(v.POLL_MS).toEqual({ name: 'POLL_MS', value: '1000', source: 'default' });
    expect(v.OPENAI_API_KEY).toEqual({ name: 'OPENAI_API_KEY', value: '', source: 'unset' });
    // The text form says the same, one line a variable.
    const text = hydra(['config'], { HOST: '127.0.0.1' });
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/^# settings file: .*\.env$/m);
    expect(text.stdout).toMatch(/^PORT=9123\s+# .*\.env$/m);
    expect(text.stdout).toMatch(/^HOST=127\.0\.0\.1\s+# environment$/m);
    expect(text.stdout).not.toContain(SECRET);
  });

  it('a bad value from the file stops the command naming the variable; a missing HYDRA_ENV_FILE stops it too', () => {
    writeFileSync(join(dir, '.env'), 'PORT=not-a-port\n');
    const bad = hydra(['config']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/hydra config: invalid configuration:\n\s+- PORT="not-a-port"/);
    const missing = hydra(['config'], { HYDRA_ENV_FILE: 'nope.env' });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('HYDRA_ENV_FILE="nope.env": cannot read the settings file (ENOENT)');
  });

  it('every command reads it: hydra status asks the HYDRA_URL the file gives', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    writeFileSync(join(dir, '.env'), `HYDRA_URL=${url}\n`);
    const r = hydra(['status']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`cannot reach the Hydra API at ${url}`);
  });
});
