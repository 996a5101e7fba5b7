// API keys: Bearer for the API, Bearer or HTTP Basic (password = key) for Bull Board in a browser. Keys are never logged.
import { timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { ErrorCode, HydraError } from '../../libs/core/index.js';
import { sendError } from './errors.js';

function matches(candidate: string, keys: readonly string[]): boolean {
  const c = Buffer.from(candidate);
  let ok = false;
  for (const k of keys) {
    const b = Buffer.from(k);
    if (b.length === c.length && timingSafeEqual(b, c)) ok = true;
  }
  return ok;
}

/** The key a request presents, if any. */
export function presentedKey(header: string | undefined): string | null {
  if (!header) return null;
  const [scheme, value] = header.split(' ', 2);
  if (!value) return null;
  if (/^bearer$/i.test(scheme ?? '')) return value.trim();
  if (/^basic$/i.test(scheme ?? '')) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    return decoded.slice(decoded.indexOf(':') + 1);
  }
  return null;
}

/** No keys configured: everything is open (the server then binds loopback only). */
export function requireKey(keys: readonly string[], opts: { basicRealm?: string } = {}): RequestHandler {
  return (req, res, next) => {
    if (keys.length === 0) return next();
    const key = presentedKey(req.header('authorization'));
    if (key && matches(key, keys)) return next();
    if (opts.basicRealm) res.setHeader('WWW-Authenticate', `Basic realm="${opts.basicRealm}"`);
    sendError(res, new HydraError(ErrorCode.Unauthorized, key ? 'invalid API key' : 'missing API key: send Authorization: Bearer <key>'));
  };
}
