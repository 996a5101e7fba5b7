// Stream readers reuse blocking connections: a reader that read its stream to the end hands its connection to the
// next reader (no Redis connect before its first XREAD), one closed while its XREAD blocks disconnects it.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { appendEnd, appendEntry, loadStreamEnd } from '../../libs/queue/index.js';
import { BlockingPool } from './blocking-pool.js';
import type { ApiContext } from './context.js';
import { readStream, type StreamItem } from './services/stream-reader.js';

describe('BlockingPool with stream readers', () => {
  const url = inject('redisUrl');
  const redis = new Redis(url);
  const made: Redis[] = [];
  const pool = new BlockingPool(() => {
    const c = new Redis(url);
    made.push(c);
    return c;
  });
  // readStream needs only the pool of the API context.
  const ctx = { blocking: pool } as unknown as ApiContext;
  const key = `{bp${randomBytes(4).toString('hex')}}:stream`;
  const src = (k: string) => ({ key: k, blockMs: 2000, onIdle: async () => null });
  const readAll = async (k: string) => {
    const out: StreamItem[] = [];
    for await (const e of readStream(ctx, src(k), '0')) out.push(e);
    return out;
  };
  afterAll(async () => {
    pool.close();
    await redis.del(key, `${key}:2`, `${key}:3`);
    redis.disconnect();
  });

  it('hands an idle connection to the next reader, and drops one whose XREAD was cut off', async () => {
    loadStreamEnd(redis);
    for (const k of [key, `${key}:2`]) await appendEnd(appendEntry(redis.multi(), k, 'token', 'hi'), k, 'done', { response: 'hi' }, 60).exec();
    expect((await readAll(key)).map((e) => e.event)).toEqual(['token', 'done']);
    expect(pool.size).toBe(1);
    const first = made[0]!;
    const id = await first.client('ID');
    expect((await readAll(`${key}:2`)).map((e) => e.event)).toEqual(['token', 'done']);
    // The second reader ran on the same connection: nothing new was made.
    expect(made).toHaveLength(1);
    expect(await first.client('ID')).toBe(id);
    // A reader closed while its XREAD blocks (a client that left mid-answer): that connection is closed, not reused.
    const r = readStream(ctx, src(`${key}:3`), '0');
    const next = r[Symbol.asyncIterator]().next();
    await new Promise((res) => setTimeout(res, 100));
    r.close();
    await next;
    expect(pool.size).toBe(0);
    expect(first.status).not.toBe('ready');
  });
});
