// The Lua loader against a real Redis: headers decide the key and argument counts, repeated groups, and no name clashes.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadScript, readScript, replyCode } from './scripts.js';

describe('loadScript', () => {
  let redis: Redis;
  const dirs: string[] = [];
  /** A folder of scripts `{name: body}`, as a URL the loader takes. */
  const folder = (scripts: Record<string, string>): URL => {
    const dir = mkdtempSync(join(tmpdir(), 'hydra-lua-'));
    dirs.push(dir);
    for (const [name, body] of Object.entries(scripts)) writeFileSync(join(dir, `${name}.lua`), body);
    return pathToFileURL(`${dir}/`);
  };
  const echo = (keys: string, argv: string) => `-- echoes what it was given\n-- KEYS: ${keys}\n-- ARGV: ${argv}\n-- RETURNS: {KEYS, ARGV}\nreturn {KEYS, ARGV}\n`;

  beforeAll(() => {
    redis = new Redis(inject('redisUrl'));
  });
  afterAll(() => {
    redis.disconnect();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('includes another script as a function run on the KEYS and ARGV it is given, and names an include it was not given', async () => {
    const dir = folder({
      outer: '-- calls inner on its second key and argument\n-- KEYS: a b\n-- ARGV: x y\n-- RETURNS: {inner reply, own key}\n-- @include inner\nreturn {inner({KEYS[2]}, {ARGV[2]}), KEYS[1]}\n',
      lost: '-- KEYS: a\n-- @include nowhere\nreturn 1\n',
    });
    // The included text has a header of its own and returns at its top level: it returns from the function.
    const inner = '-- KEYS: k\n-- ARGV: v\nif ARGV[1] == "stop" then return {"stopped", KEYS[1]} end\nreturn {KEYS[1], ARGV[1]}';
    const outer = loadScript(redis, dir, 'outer', { inner });
    expect(await outer(['{t}:a', '{t}:b'], [1, 'stop'])).toEqual([['stopped', '{t}:b'], '{t}:a']);
    expect(await outer(['{t}:a', '{t}:b'], [1, 'go'])).toEqual([['{t}:b', 'go'], '{t}:a']);
    // Its header can be read without it; it cannot be loaded.
    expect(readScript(dir, 'lost').missing).toEqual(['nowhere']);
    expect(() => loadScript(redis, dir, 'lost')).toThrow(/includes "nowhere", which its caller did not give/);
  });

  it('passes exactly the keys and arguments the header lists, fixed or repeated', async () => {
    const dir = folder({ fixed: echo('a b', 'x'), groups: echo('head [p w d]...', 'n [prefix]...'), tail: echo('(none)', 'x ids...') });
    expect(await loadScript(redis, dir, 'fixed')(['{t}:a', '{t}:b'], [1])).toEqual([['{t}:a', '{t}:b'], ['1']]);
    const groups = loadScript(redis, dir, 'groups');
    expect(await groups(['{t}:h', '{t}:p1', '{t}:w1', '{t}:d1', '{t}:p2', '{t}:w2', '{t}:d2'], [2, 'q1:', 'q2:'])).toEqual([
      ['{t}:h', '{t}:p1', '{t}:w1', '{t}:d1', '{t}:p2', '{t}:w2', '{t}:d2'],
      ['2', 'q1:', 'q2:'],
    ]);
    expect(await groups(['{t}:h'], [0])).toEqual([['{t}:h'], ['0']]);
    expect(await loadScript(redis, dir, 'tail')([], ['x', 'j1', 'j2', 'j3'])).toEqual([[], ['x', 'j1', 'j2', 'j3']]);
  });

  it('refuses a call that does not match the header, naming what the script takes', async () => {
    const dir = folder({ s: echo('head [p w d]...', 'n') });
    const s = loadScript(redis, dir, 's');
    await expect(s(['{t}:h', '{t}:p'], [1])).rejects.toThrow('script s takes KEYS head [p w d]..., got 2');
    await expect(s(['{t}:h'], [])).rejects.toThrow('script s takes ARGV n, got 0');
  });

  it('keeps scripts of one name from different folders apart on one connection', async () => {
    const one = folder({ same: '-- one\n-- KEYS: (none)\n-- ARGV: (none)\n-- RETURNS: 1\nreturn 1\n' });
    const two = folder({ same: '-- two\n-- KEYS: (none)\n-- ARGV: (none)\n-- RETURNS: 2\nreturn 2\n' });
    expect([await loadScript(redis, one, 'same')([], []), await loadScript(redis, two, 'same')([], [])]).toEqual([1, 2]);
  });

  it('rejects headers it cannot read', () => {
    const dir = folder({ nokeys: '-- ARGV: a\nreturn 1\n', twogroups: '-- KEYS: [a]... b\nreturn 1\n' });
    expect(() => readScript(dir, 'nokeys')).toThrow('has no "-- KEYS:" header line');
    expect(() => readScript(dir, 'twogroups')).toThrow('may end in one repeated part');
  });
});

describe('replyCode', () => {
  it('returns a code the caller handles and fails loudly on anything else', () => {
    expect(replyCode('reserve', 'full', ['admitted', 'full'])).toBe('full');
    expect(() => replyCode('reserve', 1, ['admitted', 'full'])).toThrow('script reserve answered 1, expected one of admitted, full');
  });
});
