// Per-job Redis Stream writer: coalesces tokens (one XADD per ~25 ms), then a terminal done/error entry and an expiry.
import type { Redis } from 'ioredis';

export type StreamEvent = 'token' | 'retry' | 'requeued' | 'done' | 'error';

export class TokenStream {
  private buf = '';
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly opts: { flushMs: number; retentionS: number },
  ) {}

  push(text: string): void {
    if (!text) return;
    this.buf += text;
    if (this.buf.length >= 4096) this.flush();
    else if (!this.timer) this.timer = setTimeout(() => this.flush(), this.opts.flushMs);
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.buf) return;
    const text = this.buf;
    this.buf = '';
    this.append('token', text);
  }

  private append(e: StreamEvent, d: string): void {
    // Ordered: each XADD waits for the previous one. Failures are not fatal for the job itself.
    this.chain = this.chain.then(() => this.redis.xadd(this.key, 'MAXLEN', '~', '20000', '*', 'e', e, 'd', d)).catch(() => undefined);
  }

  /** A non-terminal event (e.g. an attempt failed and the job will retry). */
  event(e: 'retry' | 'requeued', data: unknown): Promise<void> {
    this.flush();
    this.append(e, JSON.stringify(data));
    return this.chain.then(() => undefined);
  }

  /** Flush pending tokens, write the terminal entry and set the stream to expire. */
  async finish(e: 'done' | 'error', data: unknown): Promise<void> {
    this.flush();
    await this.chain;
    // A pipeline, not MULTI: both commands in one write, and nothing depends on them being atomic.
    await this.redis
      .pipeline()
      .xadd(this.key, '*', 'e', e, 'd', JSON.stringify(data))
      .expire(this.key, this.opts.retentionS)
      .exec();
  }

  discard(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.buf = '';
  }
}
