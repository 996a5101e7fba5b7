// A stream ends once: the terminal entry is written by stream-end.lua only when the stream has none, so an end sent
// again (ioredis resends a command whose reply was lost, e.g. when Redis shut down between running it and answering)
// leaves one `done` (test/redis-outage.int.test.ts saw two before).
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { appendEnd, appendEntry, endStream, loadStreamEnd } from './lifecycle.js';
import { TokenStream } from './token-stream.js';

describe('appendEnd (stream-end.lua)', () => {
  const redis = new Redis(inject('redisUrl'));
  const key = `{se${randomBytes(4).toString('hex')}}:stream`;
  afterAll(async () => {
    await redis.del(key, `${key}:2`);
    redis.disconnect();
  });
  const events = async (k: string) => (await redis.xrange(k, '-', '+')).map(([, f]) => f[1]);

  it('writes the terminal entry and the expiry once, however often the end is sent, in a pipeline or a transaction', async () => {
    loadStreamEnd(redis);
    await appendEntry(redis.pipeline(), key, 'token', 'hi').exec();
    const first = await appendEnd(redis.pipeline(), key, 'done', { ok: 1 }, 60).exec();
    expect(first?.[0]).toEqual([null, 'ended']);
    // The same end again (a resend), then an error end racing it: neither writes.
    const again = await appendEnd(appendEnd(redis.multi(), key, 'done', { ok: 1 }, 60), key, 'error', { code: 'x' }, 60).exec();
    expect(again?.map(([, r]) => r)).toEqual(['already', 'already']);
    expect(await events(key)).toEqual(['token', 'done']);
    expect(await redis.ttl(key)).toBeGreaterThan(50);
  });

  it("a job's token stream ends once when finish is called twice", async () => {
    const s = new TokenStream(redis, `${key}:2`, { flushMs: 5, retentionS: 60 });
    s.push('a');
    await s.finish('done', { response: 'a' });
    await s.finish('done', { response: 'a' });
    expect(await events(`${key}:2`)).toEqual(['token', 'done']);
  });

  it('sends the tokens and the end at once: whatever the connection sends next runs after them (the done message)', async () => {
    const k = `${key}:3`;
    const s = new TokenStream(redis, k, { flushMs: 50, retentionS: 60 });
    s.push('a');
    s.push('b'); // held for the flush interval
    const finished = s.finish('done', { response: 'ab' });
    // Sent before anything was answered: Redis runs one connection's commands in order, so this read sees the end.
    const seen = await redis.xrange(k, '-', '+');
    expect(seen.map(([, f]) => f[1])).toEqual(['token', 'token', 'done']);
    expect(seen[1]![1][3]).toBe('b'); // the held token, written by the end's own call
    await finished;
    // The same end with its last tokens sent again (a resend): nothing more is written.
    expect(await endStream(redis, k, 'done', { response: 'ab' }, 60, [['token', 'b']])).toBe('already');
    expect(await redis.xlen(k)).toBe(3);
    await redis.del(k);
  });

  it('refuses a pipeline made from a connection the script was not loaded on, naming the fix', () => {
    const other = new Redis(inject('redisUrl'), { lazyConnect: true });
    expect(() => appendEnd(other.pipeline(), key, 'done', {}, 60)).toThrow(/stream-end is not loaded on the connection/);
    other.disconnect();
  });
});
