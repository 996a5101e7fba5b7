// Connections for the API's blocking stream readers (XREAD BLOCK: one connection per reader while it reads). A reader
// that read its stream to the end leaves its connection idle, and the next reader takes it: a streamed answer then
// starts reading without a Redis connect (TCP, the ready check, CLIENT SETNAME: round trips before its first XREAD).
// A reader closed while its XREAD blocks disconnects it instead (the blocked call cannot be taken back).
import type { RedisClient } from '../../libs/queue/index.js';

/** Idle connections kept per API process: readers beyond it still get one, made for them and closed after. */
export const BLOCKING_POOL_IDLE_MAX = 16;

export class BlockingPool {
  private readonly idle: RedisClient[] = [];
  private closed = false;

  constructor(
    private readonly make: () => RedisClient,
    private readonly max = BLOCKING_POOL_IDLE_MAX,
  ) {}

  /** A connection for one reader: an idle one when there is one still connected, else a new one. */
  take(): RedisClient {
    for (let c = this.idle.pop(); c; c = this.idle.pop()) {
      if (c.status === 'ready') return c;
      c.disconnect();
    }
    const c = this.make();
    c.on('error', () => {});
    return c;
  }

  /** A reader is done with `c`; `idle`: no blocking call of its is in flight, so another reader can use it. */
  give(c: RedisClient, idle: boolean): void {
    if (idle && !this.closed && c.status === 'ready' && this.idle.length < this.max) this.idle.push(c);
    else c.disconnect();
  }

  /** How many idle connections wait (for tests and metrics). */
  get size(): number {
    return this.idle.length;
  }

  close(): void {
    this.closed = true;
    for (const c of this.idle.splice(0)) c.disconnect();
  }
}
