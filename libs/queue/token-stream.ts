// Per-job Redis Stream writer: coalesces tokens (one XADD per flush interval or 4 KB), then the terminal entry and an
// expiry. The entry format and the length cap are the lifecycle protocol's (lifecycle.ts).
import type { RedisClient } from './connection.js';
import { appendEnd, entryArgs, loadStreamEnd } from './lifecycle.js';

/** Pending token text that forces a write before the flush interval. */
const FLUSH_BYTES = 4096;

export class TokenStream {
  private buf = '';
  /** What `buf` holds: answer text or reasoning text (switching kind flushes, so order is kept). */
  private kind: 'token' | 'thinking' = 'token';
  /** Whether the first entry (which names the node) was written. */
  private marked = false;
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
    private readonly opts: { flushMs: number; retentionS: number; /** Written on the first entry (see StreamEntry.node). */ nodeId?: string },
  ) {
    loadStreamEnd(redis);
  }

  push(text: string, kind: 'token' | 'thinking' = 'token'): void {
    if (!text) return;
    if (kind !== this.kind) {
      this.flush();
      this.kind = kind;
    }
    this.buf += text;
    // The first piece goes out at once: it is the time to first token every client waits for; later ones coalesce.
    if (!this.marked || this.buf.length >= FLUSH_BYTES) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.opts.flushMs);
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.buf) return;
    const text = this.buf;
    this.buf = '';
    this.append(this.kind, text);
  }

  private append(e: 'token' | 'thinking' | 'progress' | 'retry' | 'requeued', d: string): void {
    // Ordered: each XADD waits for the previous one. Failures are not fatal for the job itself.
    const node = this.marked ? undefined : this.opts.nodeId;
    this.marked = true;
    // One XADD, not a pipeline of one: a pipeline costs more CPU than the command (bench/README.md, "The hot path").
    this.chain = this.chain.then(() => this.redis.xadd(this.key, ...entryArgs(e, d, node))).catch(() => undefined);
  }

  /** A non-terminal event (e.g. an attempt failed and the job will retry). */
  event(e: 'progress' | 'retry' | 'requeued', data: unknown): Promise<void> {
    this.flush();
    this.append(e, JSON.stringify(data));
    return this.chain.then(() => undefined);
  }

  /** Flush pending tokens, write the terminal entry and set the stream to expire. */
  async finish(e: 'done' | 'error', data: unknown): Promise<void> {
    this.flush();
    await this.chain;
    // A pipeline, not MULTI: both commands in one write, and nothing depends on them being atomic.
    await appendEnd(this.redis.pipeline(), this.key, e, data, this.opts.retentionS).exec();
  }

  discard(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.buf = '';
  }
}
