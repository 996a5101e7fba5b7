// API keys: Bearer for the API, Bearer or HTTP Basic (password = key) for Bull Board in a browser. Keys are never logged.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
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

/**
 * The id of the key a request presents, for records that must name the caller without holding the secret (the results
 * history): `k_` + the first 16 hex digits of its SHA-256 (`printf %s "$KEY" | sha256sum | cut -c1-16`). Null when the
 * server has no keys (everything is open) or the request presents none that matches.
 */
export function keyIdOf(req: IncomingMessage, keys: readonly string[]): string | undefined {
  if (keys.length === 0) return undefined;
  const h = req.headers.authorization;
  const key = presentedKey(Array.isArray(h) ? h[0] : h);
  return key && matches(key, keys) ? `k_${createHash('sha256').update(key).digest('hex').slice(0, 16)}` : undefined;
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
