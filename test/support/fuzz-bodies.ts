// A small deterministic generator of malformed HTTP request bodies (seeded PRNG, no dependencies) for the API fuzz test.
import { mulberry32, type Rng } from '../../libs/core/index.js';

export type { Rng } from '../../libs/core/index.js';
/** Cases picked reproducibly from a seed. */
export const rng = mulberry32;

export const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const int = (r: Rng, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

export interface FuzzBody {
  /** What kind of malformation, for the report. */
  kind: string;
  body: Buffer;
  headers: Record<string, string>;
}

/** Placeholders replaced after JSON.stringify by raw text no serializer would produce (deep nesting, bad literals). */
const RAW = '@@RAW@@'; // plain characters: JSON.stringify leaves them as they are
const raw = (text: string) => `${RAW}${Buffer.from(text).toString('base64')}${RAW}`;
const expandRaw = (json: string) =>
  json.replace(new RegExp(`"${RAW}([A-Za-z0-9+/=]*)${RAW}"`, 'g'), (_m, b64: string) => Buffer.from(b64, 'base64').toString());

const deepArray = (n: number) => '['.repeat(n) + ']'.repeat(n);
const deepObject = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);

/** Values of the wrong type, out of range, or hostile, for any field. */
function weird(r: Rng): unknown {
  const cases: (() => unknown)[] = [
    () => null,
    () => true,
    () => false,
    () => 0,
    () => -1,
    () => 1.5,
    () => 1e308,
    () => -1e308,
    () => 2 ** 53 + 1,
    () => -(2 ** 31),
    () => '',
    () => ' ',
    () => 'NaN',
    () => 'Infinity',
    () => '-0',
    () => '1e400',
    () => '0x1F',
    () => 'null',
    () => 'undefined',
    () => '١٢٣',
    () => '\u0000\u0001\u001f',
    () => '\ud800 lone surrogate',
    () => '🦙'.repeat(int(r, 1, 2000)),
    () => 'x'.repeat(int(r, 1000, 60_000)),
    () => "'; DROP TABLE jobs; --",
    () => '../../../etc/passwd',
    () => '%s%s%n{{7*7}}${process.exit()}',
    () => '<script>alert(1)</script>',
    () => [],
    () => ({}),
    () => [null],
    () => [[[[]]]],
    () => ({ a: { b: { c: {} } } }),
    () => Array.from({ length: int(r, 100, 5000) }, (_, i) => i),
    () => Object.fromEntries(Array.from({ length: int(r, 100, 2000) }, (_, i) => [`k${i}`, i])),
    () => JSON.parse('{"__proto__": {"polluted": "yes"}}'),
    () => JSON.parse('{"constructor": {"prototype": {"polluted": "yes"}}}'),
    () => raw('NaN'),
    () => raw('Infinity'),
    () => raw('-Infinity'),
    () => raw('1e99999'),
    () => raw('-'),
    () => raw('01'),
    () => raw('0x10'),
    () => raw('undefined'),
    () => raw(deepArray(int(r, 10, 60_000))),
    () => raw(deepObject(int(r, 10, 30_000))),
  ];
  return pick(r, cases)();
}

const POLLUTING_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__', ''];

/** Every path (as key lists) to a value inside `v`, the root included. */
function paths(v: unknown, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) paths(x, [...at, k], out);
  return out;
}

function setAt(root: unknown, path: (string | number)[], value: unknown, del = false): unknown {
  if (path.length === 0) return value;
  let o = root as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
  const last = path.at(-1)!;
  if (del) {
    if (Array.isArray(o)) o.splice(Number(last), 1);
    else delete o[last];
  } else Object.defineProperty(o, last, { value, enumerable: true, writable: true, configurable: true });
  return root;
}

/** A structured mutation of a valid body: one to three fields given wrong values, removed, or joined by odd keys. */
function mutate(r: Rng, base: unknown): { kind: string; value: unknown } {
  let v: unknown = structuredClone(base);
  const kinds: string[] = [];
  for (let i = 0, n = pick(r, [1, 1, 2, 3]); i < n; i++) {
    const all = paths(v);
    const p = pick(r, all);
    const op = r();
    if (op < 0.45) {
      v = setAt(v, p, weird(r));
      kinds.push(`wrong value at ${p.join('.') || '(root)'}`);
    } else if (op < 0.65) {
      // Deep nesting where a route accepts any JSON (format, options) is what recursive code chokes on.
      const depth = pick(r, [70, 5000, int(r, 10_000, 40_000), int(r, 10_000, 40_000)]);
      v = setAt(v, p, raw(r() < 0.5 ? deepObject(depth) : deepArray(depth)));
      kinds.push(`${depth} levels deep at ${p.join('.') || '(root)'}`);
    } else if (op < 0.8 && p.length > 0) {
      v = setAt(v, p, undefined, true);
      kinds.push(`missing ${p.join('.')}`);
    } else {
      const objects = all.filter((q) => {
        let o: unknown = v;
        for (const k of q) o = (o as Record<string | number, unknown>)[k];
        return o !== null && typeof o === 'object' && !Array.isArray(o);
      });
      if (objects.length === 0) continue;
      const q = pick(r, objects);
      const key = r() < 0.7 ? pick(r, POLLUTING_KEYS) : `unknown_${int(r, 0, 99)}`;
      v = setAt(v, [...q, key], r() < 0.5 ? weird(r) : { polluted: 'yes' });
      kinds.push(`extra key ${JSON.stringify(key)}`);
    }
  }
  return { kind: kinds.join(', ') || 'unchanged', value: v };
}

/** Whole bodies that are not JSON objects, or not JSON at all. */
function rawText(r: Rng, base: unknown): { kind: string; text: string } {
  const json = JSON.stringify(base);
  const cases: [string, () => string][] = [
    ['empty', () => ''],
    ['whitespace', () => ' \n\t '],
    ['null', () => 'null'],
    ['number', () => String(int(r, -1e6, 1e6))],
    ['string', () => '"a string"'],
    ['array at the top', () => JSON.stringify([base, base])],
    ['empty array', () => '[]'],
    ['empty object', () => '{}'],
    ['truncated', () => json.slice(0, int(r, 1, Math.max(1, json.length - 1)))],
    ['trailing comma', () => json.replace(/}$/, ',}')],
    ['single quotes', () => json.replace(/"/g, "'")],
    ['two documents', () => json + json],
    ['BOM prefix', () => `\ufeff${json}`],
    ['comment', () => json.replace(/^{/, '{/* hi */')],
    ['duplicate keys', () => json.replace(/^{/, '{"type":"chat","type":"embed",')],
    ['NUL bytes', () => `${json}\u0000\u0000`],
    ['deep arrays', () => deepArray(int(r, 1000, 100_000))],
    ['deep objects', () => deepObject(int(r, 1000, 40_000))],
    ['unclosed deep', () => '['.repeat(int(r, 10, 50_000))],
    ['huge number', () => json.replace(/^{/, '{"priority":1e99999999,')],
    ['many keys', () => `{${Array.from({ length: int(r, 1000, 20_000) }, (_, i) => `"k${i}":${i}`).join(',')}}`],
    ['form encoded', () => 'type=generate&model=m&prompt=hi'],
    ['xml', () => '<job><type>generate</type></job>'],
  ];
  const [kind, make] = pick(r, cases);
  return { kind, text: make() };
}

/** Invalid UTF-8 sequences, spliced into a string of an otherwise valid body. */
const BAD_UTF8 = [[0xff], [0xfe, 0xff], [0xc3, 0x28], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82], [0x80]];

function badUtf8(r: Rng, base: unknown): Buffer {
  const text = Buffer.from(JSON.stringify(base));
  // Inside a string value: just after an opening quote of a value (the first `:"`), or anywhere.
  const at = text.indexOf(':"') >= 0 && r() < 0.8 ? text.indexOf(':"') + 2 : int(r, 0, text.length);
  return Buffer.concat([text.subarray(0, at), Buffer.from(pick(r, BAD_UTF8)), text.subarray(at)]);
}

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=utf-16',
  'application/json; charset=latin1',
  'application/json; charset=bogus-charset',
  'application/json; charset="utf-8"; foo=bar',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=xyz',
  'application/xml',
  'application/octet-stream',
  '*/*',
  ';;;',
];

/** `count` malformed bodies derived from the valid `bases`, reproducible from `seed`. */
export function fuzzBodies(seed: number, bases: readonly unknown[], count: number): FuzzBody[] {
  const r = rng(seed);
  const out: FuzzBody[] = [];
  for (let i = 0; i < count; i++) {
    const base = pick(r, bases);
    const headers: Record<string, string> = {};
    let kind: string;
    let body: Buffer;
    const c = r();
    if (c < 0.55) {
      const m = mutate(r, base);
      kind = m.kind;
      body = Buffer.from(expandRaw(JSON.stringify(m.value) ?? 'undefined'));
    } else if (c < 0.8) {
      const t = rawText(r, base);
      kind = t.kind;
      body = Buffer.from(t.text);
    } else if (c < 0.9) {
      kind = 'invalid UTF-8';
      body = badUtf8(r, base);
    } else if (c < 0.95) {
      kind = 'random bytes';
      body = Buffer.from(Array.from({ length: int(r, 1, 2000) }, () => int(r, 0, 255)));
    } else {
      kind = 'bad content-encoding';
      headers['content-encoding'] = pick(r, ['gzip', 'deflate', 'br', 'compress', 'identity, gzip', 'x-unknown']);
      body = Buffer.from(JSON.stringify(base));
    }
    // Mostly JSON content types, sometimes wrong or missing ones.
    const ct = r();
    if (ct < 0.6) headers['content-type'] = 'application/json';
    else if (ct < 0.95) headers['content-type'] = pick(r, CONTENT_TYPES);
    out.push({ kind, body, headers });
  }
  return out;
}

/** Odd job ids for DELETE /v1/jobs/:id (already URL-encoded where needed, or deliberately not). */
export function oddIds(seed: number, count: number): string[] {
  const r = rng(seed);
  const fixed = [
    '0', '1', '-1', '00000000-0000-0000-0000-000000000000', '__proto__', 'constructor', 'prototype', 'toString', 'null', 'undefined',
    '..', '.', '%2e%2e', '%2e%2e%2f%2e%2e%2fetc%2fpasswd', '%00', '%ff', '%E0%A4%A', '%', '%%', '%zz', 'a%20b', 'a:b', '%7Bhydra%7D', '*', '~',
    '%F0%9F%A6%99', 'x'.repeat(300), 'x'.repeat(6000), '%27%3B%20DROP%20TABLE', 'a;b', 'a,b', "a'b", 'a"b', 'a<b>', '%0d%0aSet-Cookie:%20x=1',
  ];
  const out = [...fixed];
  while (out.length < count) {
    const len = int(r, 1, 80);
    out.push(Array.from({ length: len }, () => (r() < 0.3 ? `%${int(r, 0, 255).toString(16).padStart(2, '0')}` : pick(r, [...'abcXYZ019-_.~!$&()*+,;=:@']))).join(''));
  }
  return out.slice(0, count);
}
