// The one loader of Hydra's Lua scripts. Each script is a file `<name>.lua` whose header declares what it touches:
//   -- KEYS: key1 key2 ...      (every key the script reads or writes: required on Redis Cluster)
//   -- ARGV: arg1 arg2 ...
//   -- RETURNS: what it answers (named codes, not bare numbers)
// `loadScript` reads the file once and defines it on a connection as a command with that many keys.
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

export interface ScriptSpec {
  name: string;
  lua: string;
  keys: string[];
  argv: string[];
}

const specs = new Map<string, ScriptSpec>();

/** Parse a script file's header; throws naming the file when the KEYS line is missing. */
export function readScript(dir: URL, name: string): ScriptSpec {
  const cacheKey = `${dir.href}${name}`;
  const have = specs.get(cacheKey);
  if (have) return have;
  const file = new URL(`${name}.lua`, dir);
  const lua = readFileSync(file, 'utf8');
  const header = (tag: string): string[] | null => {
    const m = new RegExp(`^--\\s*${tag}:(.*)$`, 'm').exec(lua);
    return m ? m[1]!.trim().split(/\s+/).filter((w) => w && w !== '(none)') : null;
  };
  const keys = header('KEYS');
  if (keys === null) throw new Error(`Lua script ${file.pathname} has no "-- KEYS:" header line`);
  const spec = { name, lua, keys, argv: header('ARGV') ?? [] };
  specs.set(cacheKey, spec);
  return spec;
}

/**
 * Define script `name` from `dir` on `redis` (once per connection) as command `hydra_<name>`, and return a caller
 * that takes the keys then the arguments. The key count comes from the header, so a caller cannot pass keys as ARGV.
 */
export function loadScript<R = unknown>(redis: Redis, dir: URL, name: string): (keys: readonly string[], argv: readonly (string | number)[]) => Promise<R> {
  const spec = readScript(dir, name);
  const command = `hydra_${name.replace(/[^A-Za-z0-9]/g, '_')}`;
  if (!(command in redis)) redis.defineCommand(command, { numberOfKeys: spec.keys.length, lua: spec.lua });
  return (keys, argv) => {
    if (keys.length !== spec.keys.length) throw new Error(`script ${name} takes ${spec.keys.length} keys (${spec.keys.join(' ')}), got ${keys.length}`);
    const fn = (redis as unknown as Record<string, (...a: (string | number)[]) => Promise<R>>)[command]!;
    return fn.call(redis, ...keys, ...argv);
  };
}

/** This folder's scripts (libs/queue/scripts/). */
export const QUEUE_SCRIPTS = new URL('./scripts/', import.meta.url);
