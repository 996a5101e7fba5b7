// Callback URLs (webhooks): the schema of a `callback_url` field, and which IP addresses a callback may not reach
// (loopback, private, link-local and cloud metadata, unspecified, multicast) unless an allow-list entry covers them.
// Pure: resolving a host name is the API's (apps/api/webhook-allow.ts).
import { z } from 'zod';

/** Longest callback URL accepted (characters). */
const CALLBACK_URL_MAX = 2048;

/** An http(s) URL with a host; the WHATWG parser normalises odd host spellings (2130706433, 0x7f.1) to dotted quads. */
export const CallbackUrlSchema = z
  .string({ error: 'must be an http:// or https:// URL' })
  .max(CALLBACK_URL_MAX, `must be at most ${CALLBACK_URL_MAX} characters`)
  .refine((v) => {
    if (!URL.canParse(v)) return false;
    const u = new URL(v);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
  }, 'must be an http:// or https:// URL');

/** An address as a number: 32 bits for IPv4, 128 for IPv6. */
interface Ip {
  v: 4 | 6;
  n: bigint;
}

function parseIpv4(s: string): bigint | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  let n = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return null;
    n = (n << 8n) | BigInt(Number(p));
  }
  return n;
}

function parseIpv6(s: string): bigint | null {
  const zone = s.indexOf('%');
  let text = (zone >= 0 ? s.slice(0, zone) : s).toLowerCase();
  // A dotted quad at the end (::ffff:127.0.0.1) is the last two groups.
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (quad) {
    const v4 = parseIpv4(quad[1]!);
    if (v4 === null) return null;
    text = `${text.slice(0, quad.index)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groups = (h: string) => (h === '' ? [] : h.split(':'));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 1 && missing !== 0) || (halves.length === 2 && missing < 1)) return null;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  let n = 0n;
  for (const g of all) {
    if (!/^[0-9a-f]{1,4}$/.test(g)) return null;
    n = (n << 16n) | BigInt(parseInt(g, 16));
  }
  return n;
}

/** An IP literal (IPv6 with or without brackets), or null when `s` is not one. */
export function parseIp(s: string): Ip | null {
  const bare = s.startsWith('[') && s.endsWith(']') ? s.slice(1, -1) : s;
  const v4 = parseIpv4(bare);
  if (v4 !== null) return { v: 4, n: v4 };
  if (!bare.includes(':')) return null;
  const v6 = parseIpv6(bare);
  return v6 === null ? null : { v: 6, n: v6 };
}

interface Range {
  v: 4 | 6;
  base: bigint;
  bits: number;
}

const inRange = (ip: Ip, r: Range): boolean => {
  if (ip.v !== r.v) return false;
  const width = ip.v === 4 ? 32 : 128;
  const shift = BigInt(width - r.bits);
  return ip.n >> shift === r.base >> shift;
};

const range = (cidr: string): Range => {
  const [a, bits] = cidr.split('/');
  const ip = parseIp(a!)!;
  return { v: ip.v, base: ip.n, bits: Number(bits) };
};

/** IPv4 ranges a callback may not reach, with the reason a refusal names. */
const DENIED_V4: [Range, string][] = [
  ['0.0.0.0/8', 'unspecified ("this network")'],
  ['127.0.0.0/8', 'loopback'],
  ['10.0.0.0/8', 'private'],
  ['172.16.0.0/12', 'private'],
  ['192.168.0.0/16', 'private'],
  ['100.64.0.0/10', 'shared (carrier-grade NAT)'],
  ['169.254.0.0/16', 'link-local (cloud metadata lives here)'],
  ['192.0.0.0/24', 'reserved (IETF protocol assignments)'],
  ['198.18.0.0/15', 'reserved (benchmarking)'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved'],
].map(([c, why]) => [range(c!), why!]);

const DENIED_V6: [Range, string][] = [
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'site-local (private)'],
  ['fc00::/7', 'unique local (private)'],
  ['ff00::/8', 'multicast'],
].map(([c, why]) => [range(c!), why!]);

/** IPv6 forms that carry an IPv4 address (mapped ::ffff:a.b.c.d, compatible ::a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16). */
function embeddedV4(ip: Ip): Ip | null {
  if (ip.v !== 6) return null;
  const low32 = ip.n & 0xffffffffn;
  if (inRange(ip, range('::ffff:0:0/96')) || inRange(ip, range('64:ff9b::/96')) || inRange(ip, range('::/96'))) return { v: 4, n: low32 };
  if (inRange(ip, range('2002::/16'))) return { v: 4, n: (ip.n >> 80n) & 0xffffffffn };
  return null;
}

/** Why a callback may not reach `address` (an IP literal), or null when it is a public address. */
export function deniedAddress(address: string): string | null {
  const ip = parseIp(address);
  if (!ip) return 'not an IP address';
  if (ip.v === 6 && ip.n <= 1n) return DENIED_V6.find(([r]) => inRange(ip, r))![1];
  const v4 = embeddedV4(ip);
  if (v4) {
    const why = deniedAddress(formatV4(v4.n));
    return why === null ? null : `${why}, as an IPv4 address inside IPv6`;
  }
  for (const [r, why] of ip.v === 4 ? DENIED_V4 : DENIED_V6) if (inRange(ip, r)) return why;
  return null;
}

const formatV4 = (n: bigint): string => [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 0xffn)).join('.');

/** Whether an allow-list entry (a host name, an address or a CIDR, as WEBHOOK_ALLOW holds them) covers `address`. */
export function allowedAddress(address: string, allow: readonly string[]): boolean {
  const ip = parseIp(address);
  if (!ip) return false;
  const v4 = embeddedV4(ip);
  return allow.some((entry) => {
    const [a, bits] = entry.split('/');
    const base = parseIp(a!);
    if (!base) return false;
    const r: Range = { v: base.v, base: base.n, bits: bits === undefined ? (base.v === 4 ? 32 : 128) : Number(bits) };
    return inRange(ip, r) || (v4 !== null && inRange(v4, r));
  });
}

/** Whether an allow-list entry names host `host` itself (case-insensitive, a trailing dot ignored). */
export const allowedHost = (host: string, allow: readonly string[]): boolean => {
  const h = host.toLowerCase().replace(/\.$/, '');
  return allow.some((entry) => entry.replace(/\.$/, '') === h);
};
