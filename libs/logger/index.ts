// One pino logger factory; secrets are redacted wherever they appear in log fields.
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

const REDACT_PATHS = [
  'apiKey',
  'apiKeys',
  'api_key',
  'authorization',
  'password',
  '*.apiKey',
  '*.apiKeys',
  '*.password',
  '*.authorization',
  'req.headers.authorization',
  'headers.authorization',
  'config.API_KEYS',
  'config.OPENAI_API_KEY',
  'config.HYDRA_API_KEY',
  'config.REDIS_URL',
  'config.CACHE_REDIS_URL',
  'config.MEMORY_URL',
  'config.REDIS_SENTINEL_PASSWORD',
  'redisUrl',
  '*.redisUrl',
];

export function createLogger(opts: { name: string; level?: string; destination?: NodeJS.WritableStream }): Logger {
  return pino(
    {
      name: opts.name,
      level: opts.level ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid, app: opts.name },
    },
    opts.destination as pino.DestinationStream | undefined,
  );
}

/** A logger that drops everything (tests, library defaults). */
export const silentLogger = (): Logger => pino({ level: 'silent' });
