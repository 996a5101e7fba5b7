// Redis connections with the failover settings DESIGN.md measured: fast reconnect, workers never give up a command,
// producers fail fast; the password and TLS settings come from the URL.
import { readFileSync } from 'node:fs';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { Redis, type RedisOptions } from 'ioredis';

/** Longest wait between reconnect attempts (ms): a Redis that comes back is seen within about this long. */
export const RETRY_CAP_MS = 1000;

/**
 * Reconnect quickly, capped at RETRY_CAP_MS, with jitter so many clients do not retry in step.
 * ioredis' default resumed 18 s after a 20 s outage; a 2 s cap resumed after 1-2 s, this one within 1 s.
 */
export const fastRetry = (times: number): number => Math.round(Math.min(50 * 2 ** Math.min(times, 5), RETRY_CAP_MS) * (0.75 + Math.random() * 0.25));

/** Longest a producer command waits for its reply (ms): a hung Redis or a network partition then answers 503, not never. */
const PRODUCER_COMMAND_TIMEOUT_MS = 2000;

export type ConnectionRole = 'worker' | 'producer' | 'subscriber';

/**
 * A connection for one role. Workers and blocking readers wait out an outage (commands queue until Redis is back).
 * Producers (the API) never queue: while Redis is down, or before the first connection is ready, a command fails
 * at once, and one that gets no reply within PRODUCER_COMMAND_TIMEOUT_MS fails too, so requests get a 503.
 */
export function createRedis(url: string, role: ConnectionRole, extra: RedisOptions = {}): Redis {
  const target = parseRedisUrl(url);
  const base: RedisOptions = {
    retryStrategy: fastRetry,
    maxRetriesPerRequest: role === 'producer' ? 1 : null,
    ...(role === 'producer' ? { enableOfflineQueue: false, commandTimeout: PRODUCER_COMMAND_TIMEOUT_MS } : {}),
    enableReadyCheck: true,
    connectionName: `hydra-${role}`,
    ...(target.tls ? { tls: target.tls } : {}),
    ...extra,
  };
  return new Redis(target.url, base);
}

/** Hydra's own query parameters of a rediss:// URL (removed before ioredis reads the URL). */
const TLS_PARAMS = {
  tls_ca_file: 'PEM file of the CA that signed the server certificate (default: the system CAs)',
  tls_cert_file: 'client certificate (PEM), for servers that require client certificates',
  tls_key_file: 'client private key (PEM)',
  tls_servername: 'host name to check the server certificate against (default: the URL host)',
  tls_insecure: '1 to skip certificate verification (development only)',
} as const;

/**
 * Split a Redis URL into the URL ioredis reads and the TLS options of Hydra's parameters, e.g.
 * `rediss://:password@redis.internal:6380/0?tls_ca_file=/etc/hydra/redis-ca.pem`.
 * Throws an error naming the parameter when a file cannot be read or TLS parameters come with redis://.
 */
export function parseRedisUrl(url: string): { url: string; tls: TlsOptions | undefined } {
  if (!/[?&]tls_/.test(url)) return { url, tls: undefined };
  const u = new URL(url);
  const tls: TlsOptions = {};
  const read = (param: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (e) {
      throw new Error(`Redis URL parameter ${param}=${file}: cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  };
  let any = false;
  for (const [param, value] of [...u.searchParams]) {
    if (!(param in TLS_PARAMS)) continue;
    any = true;
    u.searchParams.delete(param);
    if (param === 'tls_ca_file') tls.ca = read(param, value);
    else if (param === 'tls_cert_file') tls.cert = read(param, value);
    else if (param === 'tls_key_file') tls.key = read(param, value);
    else if (param === 'tls_servername') tls.servername = value;
    else if (param === 'tls_insecure') tls.rejectUnauthorized = !/^(1|true|yes)$/i.test(value);
  }
  if (!any) return { url, tls: undefined };
  if (u.protocol !== 'rediss:') throw new Error(`Redis URL parameters ${Object.keys(TLS_PARAMS).join(', ')} need a rediss:// URL`);
  return { url: u.toString(), tls };
}

/** The URL with its password (and user) masked, for logs and messages. */
export const redactRedisUrl = (url: string): string => url.replace(/\/\/[^@/]*@/, '//***@');

/** Whether a Redis answers PING at `url` within `timeoutMs`; one try, no retries, never throws for a down Redis. */
export async function redisAnswers(url: string, timeoutMs = 1000): Promise<boolean> {
  const r = createRedis(url, 'producer', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: timeoutMs });
  r.on('error', () => {});
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}
