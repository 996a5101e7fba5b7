// `hydra config [--json]`: the effective configuration of this machine's hydra processes (the environment over the
// settings file over the defaults), every variable with where its value came from; secrets masked.
import { parseArgs } from 'node:util';
import { CONFIG_KEYS, dotEnvLoaded, loadConfigOrExit, SECRET_VARS, URL_VARS } from '../../libs/config/index.js';

export interface ConfigLine {
  name: string;
  /** As the process reads it: the raw text when set, the default rendered as text, '' when unset. Secrets masked. */
  value: string;
  source: 'environment' | 'file' | 'default' | 'unset';
}

/** A value safe to print: secrets as (secret, set), URL passwords as ***. */
function shown(name: string, raw: string): string {
  if (SECRET_VARS.has(name)) return raw ? '(secret, set)' : '';
  return URL_VARS.has(name) ? raw.replace(/\/\/[^@/]*@/, '//***@') : raw;
}

const asText = (v: unknown): string => (v === undefined || v === null ? '' : Array.isArray(v) ? v.join(',') : typeof v === 'object' ? JSON.stringify(v) : String(v));

export function configLines(env: NodeJS.ProcessEnv, parsed: Record<string, unknown>, fromFile: ReadonlySet<string>): ConfigLine[] {
  return CONFIG_KEYS.map((name) => {
    const raw = env[name];
    if (raw !== undefined && raw !== '') return { name, value: shown(name, raw), source: fromFile.has(name) ? 'file' : 'environment' };
    const v = parsed[name];
    return v === undefined ? { name, value: '', source: 'unset' } : { name, value: shown(name, asText(v)), source: 'default' };
  });
}

export function config(argv: string[], env: NodeJS.ProcessEnv): void {
  let json = false;
  try {
    json = parseArgs({ args: argv, options: { json: { type: 'boolean' } }, strict: true }).values.json === true;
  } catch (e) {
    process.stderr.write(`hydra config: ${(e as Error).message}\nusage: hydra config [--json]\n`);
    process.exit(2);
  }
  const parsed = loadConfigOrExit(env, 'hydra config') as unknown as Record<string, unknown>;
  const file = dotEnvLoaded();
  const lines = configLines(env, parsed, new Set(file.loaded));
  if (json) {
    process.stdout.write(`${JSON.stringify({ file: file.path, overridden_by_environment: file.overridden, variables: lines }, null, 2)}\n`);
    return;
  }
  const width = Math.min(60, Math.max(...lines.map((l) => l.name.length + 1 + l.value.length)));
  const where = (l: ConfigLine) => (l.source === 'file' ? `# ${file.path}` : `# ${l.source}`);
  const out = [`# settings file: ${file.path ?? 'none (no .env in the working directory, HYDRA_ENV_FILE unset)'}`];
  if (file.overridden.length) out.push(`# set in the environment and in the file (the environment wins): ${file.overridden.join(', ')}`);
  for (const l of lines) out.push(`${`${l.name}=${l.value}`.padEnd(width)}  ${where(l)}`);
  process.stdout.write(`${out.join('\n')}\n`);
}
