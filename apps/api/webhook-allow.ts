// The callback allow-list: a callback_url may reach only public addresses, unless WEBHOOK_ALLOW names its host, or an
// address or CIDR holding every address it resolves to. Checked at submit (a 400 naming the field and why) and again
// when the callback is delivered, on the address the connection actually uses (a lookup that checks what it
// resolves), so a name that resolved to a public address at submit and to 127.0.0.1 later (DNS rebinding) is refused.
import { lookup } from 'node:dns';
import { isIP } from 'node:net';
import { allowedAddress, allowedHost, deniedAddress, ErrorCode, HydraError } from '../../libs/core/index.js';

type Verdict = { ok: true } | { ok: false; why: string };

/** Every address a host name resolves to (IPv4 and IPv6), as connect would pick from. */
type ResolveAll = (host: string) => Promise<string[]>;

const resolveAll: ResolveAll = (host) =>
  new Promise((resolve, reject) => lookup(host, { all: true, verbatim: true }, (err, addrs) => (err ? reject(err) : resolve(addrs.map((a) => a.address)))));

/** Why `address` may not be called (its class), or null when it is public or WEBHOOK_ALLOW covers it. */
export function refusedAddress(address: string, allow: readonly string[]): string | null {
  const why = deniedAddress(address);
  return why === null || allowedAddress(address, allow) ? null : `${address} is ${why}`;
}

/** Whether a callback URL may be called now: its host is allowed by name, or every address it resolves to is allowed. */
export async function checkCallbackUrl(url: string, allow: readonly string[], resolve: ResolveAll = resolveAll): Promise<Verdict> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { ok: false, why: 'it is not a URL' };
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return { ok: false, why: `its scheme ${u.protocol} is not http: or https:` };
  // The WHATWG parser has normalised the host: 2130706433 and 0x7f.1 are 127.0.0.1 here, IPv6 is in brackets.
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (allowedHost(host, allow)) return { ok: true };
  let addrs: string[];
  if (isIP(host)) addrs = [host];
  else {
    try {
      addrs = await resolve(host);
    } catch (e) {
      return { ok: false, why: `its host ${host} does not resolve (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
    }
  }
  if (addrs.length === 0) return { ok: false, why: `its host ${host} resolves to no address` };
  for (const a of addrs) {
    const why = refusedAddress(a, allow);
    if (why) return { ok: false, why: host === a ? `${why} (WEBHOOK_ALLOW does not cover it)` : `its host ${host} resolves to ${why} (WEBHOOK_ALLOW does not cover it)` };
  }
  return { ok: true };
}

/** At submit: throws bad_request naming `field` when the callback URL may not be called. */
export async function requireCallbackAllowed(url: string, field: string, allow: readonly string[]): Promise<void> {
  const v = await checkCallbackUrl(url, allow);
  if (v.ok) return;
  const problem = `may not be called: ${v.why}; callbacks go to public addresses only, unless WEBHOOK_ALLOW lists the host or its network`;
  throw new HydraError(ErrorCode.BadRequest, `invalid request body: ${field} ${problem}`, { details: { fields: [{ field, problem }] } });
}

/** Marks a connection refused by the allow-list: the delivery is logged and not retried. */
export class RefusedAddressError extends Error {
  readonly code = 'EHYDRAREFUSED';
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | { address: string; family: number }[], family?: number) => void;

/**
 * A `lookup` for net.connect (undici's connect options) that resolves as usual and refuses addresses the allow-list
 * does not cover, so the check holds for the very address the callback is sent to. `allow()` is read per connection.
 * A host that WEBHOOK_ALLOW names is not checked (as at submit).
 */
export function guardedLookup(allow: () => readonly string[]) {
  return (host: string, options: { all?: boolean; family?: number | string }, cb: LookupCallback): void => {
    lookup(host, { all: true, verbatim: true }, (err, addrs) => {
      if (err) return cb(err, '');
      const list = allow();
      if (!allowedHost(host, list)) {
        for (const a of addrs) {
          const why = refusedAddress(a.address, list);
          if (why) return cb(new RefusedAddressError(`${host} resolves to ${why} (WEBHOOK_ALLOW does not cover it)`), '');
        }
      }
      const fam = options.family === 6 || options.family === 'IPv6' ? 6 : options.family === 4 || options.family === 'IPv4' ? 4 : 0;
      const usable = fam ? addrs.filter((a) => a.family === fam) : addrs;
      if (options.all) return cb(null, usable);
      const first = usable[0];
      if (!first) return cb(Object.assign(new Error(`${host} has no IPv${fam} address`), { code: 'ENOTFOUND' }), '');
      cb(null, first.address, first.family);
    });
  };
}
