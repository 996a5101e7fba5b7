// Redis connections with the failover settings DESIGN.md measured: fast reconnect, workers never give up a command.
import { Redis, type RedisOptions } from 'ioredis';

/** Reconnect quickly (capped at 2 s): ioredis' default resumed 18 s after a 20 s outage, this after ~1 s. */
export const fastRetry = (times: number): number => Math.min(100 * 2 ** Math.min(times, 5), 2000);

export type ConnectionRole = 'worker' | 'producer' | 'subscriber';

export function createRedis(url: string, role: ConnectionRole, extra: RedisOptions = {}): Redis {
  const base: RedisOptions = {
    retryStrategy: fastRetry,
    // BullMQ Workers and blocking readers must wait out an outage; producers answer fast instead of hanging.
    maxRetriesPerRequest: role === 'producer' ? 1 : null,
    enableReadyCheck: true,
    connectionName: `hydra-${role}`,
    ...extra,
  };
  return new Redis(url, base);
}
