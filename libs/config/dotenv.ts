// Settings files: every hydra command loads `.env` (or HYDRA_ENV_FILE) before it parses the environment, with the
// environment winning, and remembers which variables came from the file (`hydra config` shows it). Node's own parser
// (util.parseEnv, the one behind process.loadEnvFile and --env-file): no dependency.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseEnv } from 'node:util';
import { ConfigError } from './errors.js';

export interface DotEnv {
  /** The file read, absolute; null when there was none (no .env in the working directory). */
  path: string | null;
  /** Variables the file set (absent from the environment before). */
  loaded: string[];
  /** Variables the file also names that the environment had already set (the environment won). */
  overridden: string[];
}

let last: DotEnv = { path: null, loaded: [], overridden: [] };

/** What the last `loadDotEnv` of this process did. */
export const dotEnvLoaded = (): DotEnv => last;

/**
 * Load HYDRA_ENV_FILE (which must exist; `off`: no file) or `.env` in `cwd` (when there is one) into `env`, leaving every variable
 * the environment already has as it is. An empty value in the environment counts as unset, as loadConfig reads it
 * (the variable's default), so the file's value applies. Throws ConfigError for a
 * named file that cannot be read.
 */
export function loadDotEnv(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): DotEnv {
  const named = env.HYDRA_ENV_FILE;
  if (named === 'off') return (last = { path: null, loaded: [], overridden: [] });
  const path = resolve(cwd, named || '.env');
  if (!named && !existsSync(path)) return (last = { path: null, loaded: [], overridden: [] });
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError([`HYDRA_ENV_FILE=${JSON.stringify(named ?? path)}: cannot read the settings file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`]);
  }
  const loaded: string[] = [];
  const overridden: string[] = [];
  for (const [k, v] of Object.entries(parseEnv(text))) {
    if (k === 'HYDRA_ENV_FILE') continue;
    if (env[k] !== undefined && env[k] !== '') overridden.push(k);
    else {
      env[k] = v;
      loaded.push(k);
    }
  }
  return (last = { path, loaded, overridden });
}
