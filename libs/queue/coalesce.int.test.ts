// createRedis coalesces a turn's commands into one socket write (coalesceWrites): what a job's after-work sends in one
// turn (stream end, metrics, activity, history, done message) costs one syscall, not one each.
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createRedis } from './connection.js';

/** Count the writes that reach the socket (`_write` one chunk, `_writev` several at once). */
function countWrites(r: Redis): { writes: number } {
  const socket = (r as unknown as { stream: { _write: (...a: unknown[]) => void; _writev?: (...a: unknown[]) => void } }).stream;
  const seen = { writes: 0 };
  const w = socket._write.bind(socket);
  socket._write = (...a: unknown[]) => {
    seen.writes++;
    w(...a);
  };
  if (socket._writev) {
    const wv = socket._writev.bind(socket);
    socket._writev = (...a: unknown[]) => {
      seen.writes++;
      wv(...a);
    };
  }
  return seen;
}

const ready = (r: Redis) => (r.status === 'ready' ? Promise.resolve() : new Promise((ok) => r.once('ready', ok)));

describe('coalesceWrites', () => {
  const open: Redis[] = [];
  afterEach(() => {
    for (const r of open.splice(0)) r.disconnect();
  });

  it("sends a turn's commands in one write, in order, including those sent from promise continuations", async () => {
    const r = createRedis(inject('redisUrl'), 'worker') as Redis;
    open.push(r);
    await ready(r);
    const key = `coalesce:${process.pid}:${Date.now()}`;
    const seen = countWrites(r);
    const sent = (async () => {
      const a = r.rpush(key, 'a');
      const b = r.rpush(key, 'b');
      await Promise.resolve(); // a continuation in the same turn
      const c = r.pipeline().rpush(key, 'c').rpush(key, 'd').exec();
      return Promise.all([a, b, c]);
    })();
    await sent;
    expect(seen.writes).toBe(1);
    expect(await r.lrange(key, 0, -1)).toEqual(['a', 'b', 'c', 'd']);
    // Commands of later turns go out in their own writes (nothing waits for more to come).
    const before = seen.writes;
    await r.ping();
    await r.ping();
    expect(seen.writes - before).toBe(2);
    await r.del(key);
  });

  it('leaves the subscriber connection alone (it only ever sends a few commands)', async () => {
    const sub = createRedis(inject('redisUrl'), 'subscriber') as Redis;
    open.push(sub);
    await ready(sub);
    const seen = countWrites(sub);
    await Promise.all([sub.ping(), sub.ping()]);
    expect(seen.writes).toBe(2);
  });
});
