// The worker side of the history: one XADD per finished job or workflow into a Redis stream, never awaited by the
// answer's path. The stream is capped (MEMORY_STREAM_MAX, approximate) so a store that stays away cannot fill Redis.
import type { Config } from '../config/index.js';
import type { EndWrite, HydraKeys, RedisClient } from '../queue/index.js';
import type { HistoryRecord } from './record.js';

/** The stream entry's one field: the record as JSON. */
export const RECORD_FIELD = 'r';

export class HistoryWriter {
  constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
    private readonly maxLen: number,
  ) {}

  /** One command (XADD ... MAXLEN ~ n); resolves once Redis has the record. */
  async record(rec: HistoryRecord): Promise<void> {
    await this.redis.xadd(this.key, ...this.xaddArgs(rec));
  }

  /** The same XADD as a write of a job's end (libs/queue/job-end.ts). */
  recordWrite(rec: HistoryRecord, failed: (e: Error) => void): EndWrite {
    return { kind: 'command', keys: [this.key], args: ['XADD', ...this.xaddArgs(rec)], then: (_r, err) => err && failed(err) };
  }

  private xaddArgs(rec: HistoryRecord): ['MAXLEN', '~', number, '*', string, string] {
    return ['MAXLEN', '~', this.maxLen, '*', RECORD_FIELD, JSON.stringify(rec)];
  }
}

/** Null with MEMORY_URL=off: nothing is written. */
export function createHistoryWriter(config: Config, deps: { redis: RedisClient; keys: Pick<HydraKeys, 'history'> }): HistoryWriter | null {
  if (config.MEMORY_URL === 'off') return null;
  return new HistoryWriter(deps.redis, deps.keys.history, config.MEMORY_STREAM_MAX);
}
