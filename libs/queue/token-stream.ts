// Per-job Redis Stream writer: coalesces tokens (one XADD per flush interval or 4 KB), then the terminal entry and an
// expiry. The entry format and the length cap are the lifecycle protocol's (lifecycle.ts).
import type { RedisClient } from './connection.js';
import { endStream, entryArgs, type StreamEvent } from './lifecycle.js';

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
  ) {}

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
    const node = this.marked ? undefined : this.opts.nodeId;
    this.marked = true;
    // Sent at once: one connection's commands reach Redis, and run, in the order they were sent, so entries need not
    // wait for each other, and a turn's writes leave together (coalesceWrites). One XADD, not a pipeline of one: a
    // pipeline costs more CPU than the command (bench/README.md, "The hot path"). Failures are not fatal for the job.
    const sent = this.redis.xadd(this.key, ...entryArgs(e, d, node)).catch(() => undefined);
    this.chain = this.chain.then(() => sent);
  }

  /** A non-terminal event (e.g. an attempt failed and the job will retry). */
  event(e: 'progress' | 'retry' | 'requeued', data: unknown): Promise<void> {
    this.flush();
    this.append(e, JSON.stringify(data));
    return this.chain.then(() => undefined);
  }

  /**
   * Flush pending tokens and write the terminal entry with the stream's expiry. Both are sent before this returns its
   * promise, so whatever the caller sends next on this connection (the done message) runs after them in Redis; the
   * promise settles once Redis has answered them all.
   */
  finish(e: 'done' | 'error', data: unknown): Promise<void> {
    // Pending text rides in the end's own call (one command, not two) once the first entry, which names the node, is out.
    const tail = this.takeTail();
    const end = endStream(this.redis, this.key, e, data, this.opts.retentionS, tail);
    return Promise.all([this.chain, end]).then(() => undefined);
  }

  /**
   * For an end written elsewhere (job-end.lua): the pending text, as entries to write just before the end, and the
   * stream marked done here. The first entry (which names the node) is sent now if it was not yet.
   */
  takeTail(): [StreamEvent, string][] {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const tail: [StreamEvent, string][] = [];
    if (this.buf && this.marked) tail.push([this.kind, this.buf]);
    else this.flush();
    this.buf = '';
    return tail;
  }

  discard(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.buf = '';
  }
}
