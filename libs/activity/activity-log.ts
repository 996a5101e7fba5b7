// The activity log in Redis: a capped list of finished jobs, newest first. Workers append (one pipelined
// LPUSH + LTRIM), the dashboard reads the recent routing decisions and the latency per model from it.
import type { HydraKeys, RedisClient } from '../queue/index.js';
import { parseEntry, type ActivityEntry } from './entry.js';
import { summarizeLatency, type LatencySummary } from './summary.js';

/** Entries kept: a few minutes of a busy cluster, ~150 KB, cheap enough to read in full every second. */
const ACTIVITY_CAP = 500;

export class ActivityLog {
  private readonly key: string;
  private readonly cap: number;

  constructor(
    private readonly redis: RedisClient,
    keys: Pick<HydraKeys, 'activity'>,
    opts: { cap?: number } = {},
  ) {
    this.key = keys.activity;
    this.cap = Math.max(1, opts.cap ?? ACTIVITY_CAP);
  }

  /** Append one entry; the list never holds more than the cap. One round trip. */
  async record(entry: ActivityEntry): Promise<void> {
    await this.redis
      .pipeline()
      .lpush(this.key, JSON.stringify(entry))
      .ltrim(this.key, 0, this.cap - 1)
      .exec();
  }

  /** The last `n` finished jobs (at most the cap), newest first; entries that do not parse are skipped. */
  async recentDecisions(n: number): Promise<ActivityEntry[]> {
    if (n <= 0) return [];
    const raw = await this.redis.lrange(this.key, 0, Math.min(n, this.cap) - 1);
    return raw.flatMap((r) => parseEntry(r) ?? []);
  }

  /** p50/p95 of total time and time to first token per model, over the jobs that ended in the last `windowMs`. */
  async latencyByModel(windowMs: number, now = Date.now()): Promise<LatencySummary> {
    const raw = await this.redis.lrange(this.key, 0, this.cap - 1);
    return summarizeLatency(
      raw.flatMap((r) => parseEntry(r) ?? []),
      now,
      windowMs,
      raw.length >= this.cap,
    );
  }
}
