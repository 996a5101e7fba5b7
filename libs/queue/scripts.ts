// The one loader of Hydra's Lua scripts. Each script is a file `<name>.lua` whose header declares what it touches:
//   -- KEYS: key1 key2 ...      (every key the script reads or writes: required on Redis Cluster; `(none)` if none)
//   -- ARGV: arg1 arg2 ...
//   -- RETURNS: what it answers (named codes such as 'ok' / 'full', not bare numbers)
// A list may end in a repeated part: `name...` (any number of them) or `[a b c]...` (any number of such groups).
// `loadScript` reads the file once and defines it on a connection as a command; calls are checked against the header.
// A line `-- @include name` is replaced by `local function name(KEYS, ARGV) <text> end`, the text given by the caller
// (another script, or one of BullMQ's): the included script runs on the KEYS and ARGV it is called with, and its
// top-level `return` returns from the function.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ChainableCommander } from 'ioredis';
import { isCluster, type RedisClient } from './connection.js';

/** A header list: fixed names, then an optional repeated group (empty when the list has a fixed length). */
export interface ScriptArgs {
  fixed: readonly string[];
  each: readonly string[];
}

export interface ScriptSpec {
  name: string;
  lua: string;
  /** Of the file's text: names the command, so a changed script never reuses a stale definition. */
  sha: string;
  keys: ScriptArgs;
  argv: ScriptArgs;
  /** `-- @include` names the caller did not give: such a spec has a header to read but cannot be loaded. */
  missing: readonly string[];
}

const specs = new Map<string, ScriptSpec>();

function parseArgs(file: URL, tag: string, line: string): ScriptArgs {
  const words = (s: string) => s.trim().split(/\s+/).filter((w) => w && w !== '(none)');
  const m = /^(.*?)(?:\[([^\]]*)\]|(\S+))\.\.\.\s*$/.exec(line);
  const fixed = m ? m[1]! : line;
  const each = m ? words(m[2] ?? m[3]!) : [];
  if (/[[\]]|\.\.\./.test(fixed) || (m && each.length === 0)) {
    throw new Error(`Lua script ${file.pathname}: "-- ${tag}:" may end in one repeated part, "name..." or "[a b]..."`);
  }
  return { fixed: words(fixed), each };
}

/** Lua texts a script includes, by the name its `-- @include` lines give; a script's includes never change. */
export type ScriptIncludes = Readonly<Record<string, string>>;

/**
 * Parse a script file's header and put its includes in; throws naming the file when the KEYS line is missing. An
 * include not given is listed in `missing` (the header can still be read; `loadScript` refuses such a spec).
 */
export function readScript(dir: URL, name: string, includes: ScriptIncludes = {}): ScriptSpec {
  const given = Object.keys(includes);
  const cacheKey = `${dir.href}${name}${given.length ? `#${createHash('sha1').update(JSON.stringify(includes)).digest('hex')}` : ''}`;
  const have = specs.get(cacheKey);
  if (have) return have;
  const file = new URL(`${name}.lua`, dir);
  const text = readFileSync(file, 'utf8');
  const missing: string[] = [];
  const lua = text.replace(/^--\s*@include\s+(\w+)\s*$/gm, (line, fn: string) => {
    const body = includes[fn];
    if (body === undefined) {
      missing.push(fn);
      return line;
    }
    return `local function ${fn}(KEYS, ARGV)\n${body}\nend`;
  });
  // The header is the file's own: an included script's header lines come after it.
  const header = (tag: string): string | null => new RegExp(`^--\\s*${tag}:(.*)$`, 'm').exec(text)?.[1] ?? null;
  const keys = header('KEYS');
  if (keys === null) throw new Error(`Lua script ${file.pathname} has no "-- KEYS:" header line`);
  const sha = createHash('sha1').update(lua).digest('hex');
  const spec = { name, lua, sha, keys: parseArgs(file, 'KEYS', keys), argv: parseArgs(file, 'ARGV', header('ARGV') ?? ''), missing };
  specs.set(cacheKey, spec);
  return spec;
}

/** A loaded script: its keys, then its arguments, as its header lists them. */
export type ScriptCall<R> = (keys: readonly string[], argv: readonly (string | number)[]) => Promise<R>;

const fits = (n: number, a: ScriptArgs): boolean =>
  a.each.length === 0 ? n === a.fixed.length : n >= a.fixed.length && (n - a.fixed.length) % a.each.length === 0;
const describe = (a: ScriptArgs): string => [...a.fixed, ...(a.each.length ? [`[${a.each.join(' ')}]...`] : [])].join(' ') || '(none)';

/**
 * Define script `name` from `dir` on `redis` (once per connection) and return a caller that takes the keys then the
 * arguments. Keys and arguments are counted against the header, so a caller cannot pass keys as ARGV (which would
 * hide them from Redis Cluster) nor drift from the script. The command name carries the script's hash: two folders'
 * scripts of one name, or an edited script, never reuse a stale definition.
 */
export function loadScript<R = unknown>(redis: RedisClient, dir: URL, name: string, includes?: ScriptIncludes): ScriptCall<R> {
  const { spec, command, fixedKeys } = commandOf(dir, name, includes);
  if (!(command in redis)) redis.defineCommand(command, { numberOfKeys: fixedKeys, lua: spec.lua });
  return async (keys, argv) => {
    const args = checkedArgs(spec, fixedKeys, keys, argv);
    // ioredis routes a script by its first key; without one a Cluster runs it on a random node, not the one with the data.
    if (keys.length === 0 && isCluster(redis)) throw new Error(`script ${name} called with no keys: on a Redis Cluster it would run on a random node`);
    const fn = (redis as unknown as Record<string, (...a: (string | number)[]) => Promise<R>>)[command]!;
    return fn.call(redis, ...args);
  };
}

/**
 * Add a call of script `name` to a pipeline or transaction `c` (checked like `loadScript`'s calls). The script must have
 * been loaded (`loadScript`) on the connection `c` was made from, before it was made: ioredis copies the connection's
 * commands into each pipeline when it creates it.
 */
export function scriptIn<C extends ChainableCommander>(c: C, dir: URL, name: string, keys: readonly string[], argv: readonly (string | number)[]): C {
  const { spec, command, fixedKeys } = commandOf(dir, name);
  const fn = (c as unknown as Record<string, ((...a: (string | number)[]) => C) | undefined>)[command];
  if (typeof fn !== 'function') throw new Error(`script ${name} is not loaded on the connection this pipeline was made from: loadScript it there first`);
  return fn.call(c, ...checkedArgs(spec, fixedKeys, keys, argv));
}

function commandOf(dir: URL, name: string, includes?: ScriptIncludes): { spec: ScriptSpec; command: string; fixedKeys: number | undefined } {
  const spec = readScript(dir, name, includes);
  if (spec.missing.length) throw new Error(`Lua script ${new URL(`${name}.lua`, dir).pathname} includes ${spec.missing.map((m) => `"${m}"`).join(', ')}, which its caller did not give`);
  // A fixed key count is declared once; a repeated one is sent with each call (ioredis then reads it first).
  return { spec, command: `hydra_${name.replace(/[^A-Za-z0-9]/g, '_')}_${spec.sha.slice(0, 10)}`, fixedKeys: spec.keys.each.length === 0 ? spec.keys.fixed.length : undefined };
}

function checkedArgs(spec: ScriptSpec, fixedKeys: number | undefined, keys: readonly string[], argv: readonly (string | number)[]): (string | number)[] {
  if (!fits(keys.length, spec.keys)) throw new Error(`script ${spec.name} takes KEYS ${describe(spec.keys)}, got ${keys.length}`);
  if (!fits(argv.length, spec.argv)) throw new Error(`script ${spec.name} takes ARGV ${describe(spec.argv)}, got ${argv.length}`);
  return fixedKeys === undefined ? [keys.length, ...keys, ...argv] : [...keys, ...argv];
}

/**
 * A script's status code, checked against the codes its caller handles: anything else means the script and its
 * caller drifted apart, which must fail loudly rather than read as one of the codes.
 */
export function replyCode<const C extends string>(script: string, reply: unknown, codes: readonly C[]): C {
  if (typeof reply === 'string' && (codes as readonly string[]).includes(reply)) return reply as C;
  throw new Error(`script ${script} answered ${JSON.stringify(reply)}, expected one of ${codes.join(', ')}`);
}

/** This folder's scripts (libs/queue/scripts/). */
export const QUEUE_SCRIPTS = new URL('./scripts/', import.meta.url);

/**
 * A hash as Hydra's read scripts send it (cluster-read.lua, read-nodes.lua: HGETALL's fields and values joined by
 * NUL, one bulk string instead of a list) back as HGETALL's flat list; `key` names it in the error.
 */
export function asPairs(joined: string, key: string): string[] {
  if (joined === '') return [];
  const flat = joined.split('\0');
  if (flat.length % 2 !== 0) throw new Error(`hash ${key} holds a NUL byte in a field or value: cannot read it in one string`);
  return flat;
}

/** A flat field/value list as an object. */
export function asHash(flat: readonly string[]): Record<string, string> {
  const h: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) h[flat[i]!] = flat[i + 1]!;
  return h;
}
