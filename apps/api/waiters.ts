// Waits for jobs to end: one pub/sub subscription for all waiting requests, so `wait: true` costs no connection per request.
import type { Redis } from 'ioredis';
import type { HydraKeys } from '../../libs/queue/index.js';

type Wake = () => void;

export class Waiters {
  private readonly byJob = new Map<string, Set<Wake>>();

  constructor(
    private readonly sub: Redis,
    private readonly keys: HydraKeys,
  ) {}

  async start(): Promise<void> {
    this.sub.on('message', (channel: string, msg: string) => {
      if (channel !== this.keys.channels.done) return;
      let id: string;
      try {
        id = (JSON.parse(msg) as { id: string }).id;
      } catch {
        return;
      }
      const set = this.byJob.get(id);
      if (!set) return;
      this.byJob.delete(id);
      for (const w of set) w();
    });
    await this.sub.subscribe(this.keys.channels.done);
  }

  /**
   * Resolve when the job may have ended: on its done message, or every `pollMs` so a missed message
   * (pub/sub is best-effort) only delays the answer. The caller re-checks the job's state.
   */
  wait(jobId: string, pollMs: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        this.byJob.get(jobId)?.delete(done);
        resolve();
      };
      const t = setTimeout(done, pollMs);
      signal.addEventListener('abort', done);
      let set = this.byJob.get(jobId);
      if (!set) this.byJob.set(jobId, (set = new Set()));
      set.add(done);
    });
  }

  close(): void {
    for (const set of this.byJob.values()) for (const w of set) w();
    this.byJob.clear();
  }
}
