// Waits for jobs to end: one pub/sub subscription for all waiting requests, so `wait: true` costs no connection per request.
import { parseDoneMessage, type DoneMessage, type HydraKeys, type RedisClient } from '../../libs/queue/index.js';

interface Entry {
  msg: DoneMessage | null;
  wakers: Set<() => void>;
  refs: number;
}

export interface Watch {
  /** The job's done message, or null when `ms` passed first (pub/sub is best-effort: re-check the job then). */
  next(ms: number, signal: AbortSignal): Promise<DoneMessage | null>;
  close(): void;
}

export class Waiters {
  private readonly byJob = new Map<string, Entry>();

  constructor(
    private readonly sub: RedisClient,
    private readonly keys: HydraKeys,
  ) {}

  async start(): Promise<void> {
    this.sub.on('message', (channel: string, raw: string) => {
      if (channel !== this.keys.channels.done) return;
      const msg = parseDoneMessage(raw);
      if (!msg) return;
      const e = this.byJob.get(msg.id);
      if (!e) return;
      e.msg = msg;
      for (const w of e.wakers) w();
    });
    await this.sub.subscribe(this.keys.channels.done);
  }

  /** Start watching before the job is added, so its done message cannot be missed. */
  watch(jobId: string): Watch {
    let e = this.byJob.get(jobId);
    if (!e) this.byJob.set(jobId, (e = { msg: null, wakers: new Set(), refs: 0 }));
    e.refs++;
    const entry = e;
    let closed = false;
    return {
      next: (ms, signal) =>
        new Promise((resolve) => {
          if (entry.msg || signal.aborted) return resolve(entry.msg);
          const done = () => {
            clearTimeout(t);
            signal.removeEventListener('abort', done);
            entry.wakers.delete(done);
            resolve(entry.msg);
          };
          const t = setTimeout(done, ms);
          signal.addEventListener('abort', done);
          entry.wakers.add(done);
        }),
      close: () => {
        if (closed) return;
        closed = true;
        if (--entry.refs <= 0) this.byJob.delete(jobId);
      },
    };
  }

  close(): void {
    for (const e of this.byJob.values()) for (const w of e.wakers) w();
    this.byJob.clear();
  }
}
