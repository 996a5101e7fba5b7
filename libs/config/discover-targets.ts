// DISCOVER's grammar (and `hydra discover`'s): comma-separated hosts, host:port, http(s)://host:port and IPv4 CIDRs;
// DISCOVER_PORTS' port list. Pure parsing; scanning lives in apps/worker/discovery.ts (docs/discovery.md).

/** One DISCOVER entry. `port` absent: probed on each DISCOVER_PORTS port. */
export type DiscoverTarget =
  | { kind: 'host'; scheme: 'http' | 'https'; host: string; port?: number }
  /** IPv4 network: `base` is the address as an unsigned 32-bit number, masked to `bits`. */
  | { kind: 'cidr'; base: number; bits: number; text: string };

/** The widest CIDR accepted: a /16 is 65 536 addresses (per port), already minutes of probes on a sparse network. */
export const MAX_CIDR_BITS = 16;

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
/** A DNS name or an IPv4 address (letters, digits, dots, hyphens, underscores). */
const HOSTNAME = /^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})$/;

export const ipv4ToInt = (ip: string): number | null => {
  const m = IPV4.exec(ip);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return null;
  return ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!;
};

export const intToIpv4 = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

const port = (raw: string): number | null => {
  const p = Number(raw);
  return /^\d{1,5}$/.test(raw) && p >= 1 && p <= 65535 ? p : null;
};

/** One entry, or the reason it is not one (a phrase that quotes it). */
function parseEntry(item: string): DiscoverTarget | string {
  const cidr = /^([\d.]+)\/(\d{1,2})$/.exec(item);
  if (cidr) {
    const base = ipv4ToInt(cidr[1]!);
    const bits = Number(cidr[2]);
    if (base === null || bits > 32) return `"${item}" is not an IPv4 CIDR (a.b.c.d/n, n at most 32)`;
    if (bits < MAX_CIDR_BITS) return `"${item}" is larger than /${MAX_CIDR_BITS} (${2 ** (32 - bits)} addresses); split it into /${MAX_CIDR_BITS} or smaller networks`;
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    return { kind: 'cidr', base: (base & mask) >>> 0, bits, text: `${intToIpv4((base & mask) >>> 0)}/${bits}` };
  }
  let scheme: 'http' | 'https' = 'http';
  let rest = item;
  const url = /^(https?):\/\/(.*)$/i.exec(item);
  if (url) {
    scheme = url[1]!.toLowerCase() as 'http' | 'https';
    rest = url[2]!.replace(/\/+$/, '');
    if (rest.includes('/')) return `"${item}" has a path; give only scheme, host and port (e.g. http://10.0.0.5:11434)`;
  }
  // [IPv6]:port, [IPv6], host:port, host.
  const m = /^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$/.exec(rest) ?? /^([^:[\]]+)(?::(\d+))?$/.exec(rest);
  if (!m) return `"${item}" is not host, host:port, http(s)://host:port or a.b.c.d/n`;
  const host = m[1]!;
  if (!rest.startsWith('[') && !HOSTNAME.test(host)) return `"${item}": "${host}" is not a host name or IPv4 address`;
  if (m[2] === undefined) return { kind: 'host', scheme, host };
  const p = port(m[2]);
  if (p === null) return `"${item}": port must be 1-65535`;
  return { kind: 'host', scheme, host, port: p };
}

/** Parse a DISCOVER value; throws an Error whose message names each bad entry. Empty: no entries. */
export function parseDiscoverTargets(text: string): DiscoverTarget[] {
  const out: DiscoverTarget[] = [];
  const problems: string[] = [];
  for (const item of text.split(',').map((i) => i.trim()).filter(Boolean)) {
    const t = parseEntry(item);
    if (typeof t === 'string') problems.push(t);
    else out.push(t);
  }
  if (problems.length) throw new Error(problems.join('; '));
  return out;
}

/** Parse a DISCOVER_PORTS value ("11434,8080"): at least one port, duplicates dropped. */
export function parsePortList(text: string): number[] {
  const items = text.split(',').map((i) => i.trim()).filter(Boolean);
  const ports = items.map(port);
  if (items.length === 0 || ports.some((p) => p === null)) throw new Error('must be a comma list of ports 1-65535, e.g. "11434,8080"');
  return [...new Set(ports as number[])];
}
