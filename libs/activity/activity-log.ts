// The activity log in Redis: a capped list of finished jobs, newest first. Workers append (an LPUSH, and an LTRIM once
// the list holds a tenth more than the cap), the dashboard reads the recent routing decisions and the latency per model
// from it.
import type { EndWrite, HydraKeys, RedisClient } from '../queue/index.js';
import { parseEntry, type ActivityEntry } from './entry.js';
import { summarizeLatency, type LatencySummary } from './summary.js';

/** Entries kept: a few minutes of a busy cluster, ~150 KB, cheap enough to read in full every second. */
const ACTIVITY_CAP = 500;

export class ActivityLog {
  private readonly key: string;
  private readonly cap: number;
  /** Entries the list may hold beyond the cap before it is trimmed back to it (one LTRIM per this many entries). */
  private readonly slack: number;

  constructor(
    private readonly redis: RedisClient,
    keys: Pick<HydraKeys, 'activity'>,
    opts: { cap?: number } = {},
  ) {
    this.key = keys.activity;
    this.cap = Math.max(1, opts.cap ?? ACTIVITY_CAP);
    this.slack = Math.floor(this.cap / 10);
  }

  /**
   * Append one entry. The list holds at most a tenth more than the cap (readers read the newest `cap` only): the trim
   * is one command per cap/10 entries, not one per entry (#14, bench/README.md).
   */
  async record(entry: ActivityEntry): Promise<void> {
    await this.trimAt(await this.redis.lpush(this.key, JSON.stringify(entry)));
  }

  /** The same append as a write of a job's end (libs/queue/job-end.ts); trimmed after it. */
  recordWrite(entry: ActivityEntry, failed: (e: Error) => void): EndWrite {
    return {
      kind: 'command',
      keys: [this.key],
      args: ['LPUSH', JSON.stringify(entry)],
      then: (n, err) => (err ? failed(err) : void this.trimAt(Number(n)).catch(failed)),
    };
  }

  private async trimAt(length: number): Promise<void> {
    if (length > this.cap + this.slack) await this.redis.ltrim(this.key, 0, this.cap - 1);
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
