// Redis URL handling (Hydra's tls_* parameters, password masking), the reconnect schedule, and where each connection goes
// (Sentinel options, the cache's own Redis, reconnecting on a demoted master). No Redis: connections are never opened.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, type Redis, type RedisOptions } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import { cacheRedisTarget, createRedis, fastRetry, keySlot, parseRedisUrl, queueRedisTarget, redactRedisUrl, RETRY_CAP_MS, slotServer, type ConnectionRole, type RedisTarget } from './connection.js';

const dir = mkdtempSync(join(tmpdir(), 'hydra-conn-'));
const ca = join(dir, 'ca.pem');
writeFileSync(ca, 'CA PEM');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('parseRedisUrl', () => {
  it.each([
    'redis://127.0.0.1:6379',
    'redis://:p%40ss@host:6379/2',
    'rediss://user:pw@host:6380',
    'redis://host:6379?family=6',
  ])('leaves a URL without tls_* parameters as it is: %s', (url) => {
    expect(parseRedisUrl(url)).toEqual({ url, tls: undefined });
  });

  it('turns tls_* parameters into TLS options and removes them from the URL', () => {
    const r = parseRedisUrl(`rediss://:pw@host:6380/1?tls_ca_file=${encodeURIComponent(ca)}&tls_servername=redis.internal&tls_insecure=1&family=4`);
    expect(r.url).toBe('rediss://:pw@host:6380/1?family=4');
    expect(r.tls).toEqual({ ca: Buffer.from('CA PEM'), servername: 'redis.internal', rejectUnauthorized: false });
    expect(parseRedisUrl(`rediss://host?tls_insecure=0`).tls).toEqual({ rejectUnauthorized: true });
  });

  it('names the parameter when a file cannot be read, and refuses tls_* on redis://', () => {
    expect(() => parseRedisUrl('rediss://host?tls_ca_file=/nonexistent/ca.pem')).toThrow(/tls_ca_file=\/nonexistent\/ca.pem: cannot read the file \(ENOENT\)/);
    expect(() => parseRedisUrl(`redis://host?tls_ca_file=${ca}`)).toThrow(/need a rediss:\/\/ URL/);
  });
});

describe('redactRedisUrl', () => {
  it.each([
    ['redis://:secret@host:6379', 'redis://***@host:6379'],
    ['rediss://user:secret@host:6380/0?tls_insecure=1', 'rediss://***@host:6380/0?tls_insecure=1'],
    ['redis://host:6379', 'redis://host:6379'],
  ])('%s → %s', (url, shown) => expect(redactRedisUrl(url)).toBe(shown));
});

describe('fastRetry', () => {
  it('starts fast and never waits longer than RETRY_CAP_MS between attempts', () => {
    for (let times = 1; times < 50; times++) {
      const ms = fastRetry(times);
      expect(ms).toBeGreaterThan(0);
      expect(ms).toBeLessThanOrEqual(RETRY_CAP_MS);
    }
    expect(fastRetry(1)).toBeLessThanOrEqual(100);
  });
});

describe('where connections go', () => {
  const cfg = (env: Record<string, string>) => loadConfig(env);

  it('without REDIS_SENTINELS: REDIS_URL, and the cache shares it unless CACHE_REDIS_URL differs', () => {
    expect(queueRedisTarget(cfg({ REDIS_URL: 'redis://q:6379' }))).toEqual({ url: 'redis://q:6379', sentinel: undefined });
    expect(cacheRedisTarget(cfg({ REDIS_URL: 'redis://q:6379' }))).toBeNull();
    expect(cacheRedisTarget(cfg({ REDIS_URL: 'redis://q:6379', CACHE_REDIS_URL: 'redis://q:6379' }))).toBeNull();
    expect(cacheRedisTarget(cfg({ REDIS_URL: 'redis://q:6379', CACHE_REDIS_URL: 'redis://c:6379' }))).toEqual({ url: 'redis://c:6379' });
  });

  it('with REDIS_SENTINELS: the named master; the cache is its own master only with CACHE_REDIS_SENTINEL_NAME', () => {
    const env = { REDIS_URL: 'redis://:pw@mymaster/1', REDIS_SENTINELS: 's1:26379,s2:26380', REDIS_SENTINEL_NAME: 'queue', REDIS_SENTINEL_PASSWORD: 'sp' };
    const sentinel = { sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26380 }], name: 'queue', password: 'sp', tls: false };
    expect(queueRedisTarget(cfg(env))).toEqual({ url: 'redis://:pw@mymaster/1', sentinel });
    expect(cacheRedisTarget(cfg(env))).toBeNull();
    expect(cacheRedisTarget(cfg({ ...env, CACHE_REDIS_SENTINEL_NAME: 'queue' }))).toBeNull();
    expect(cacheRedisTarget(cfg({ ...env, CACHE_REDIS_SENTINEL_NAME: 'cache' }))).toEqual({ url: 'redis://:pw@mymaster/1', sentinel: { ...sentinel, name: 'cache' } });
    expect(cacheRedisTarget(cfg({ ...env, CACHE_REDIS_SENTINEL_NAME: 'cache', CACHE_REDIS_URL: 'redis://:cpw@cache' }))?.url).toBe('redis://:cpw@cache');
    // A plain cache Redis next to a Sentinel-managed queue.
    expect(cacheRedisTarget(cfg({ ...env, CACHE_REDIS_URL: 'redis://c:6379' }))).toEqual({ url: 'redis://c:6379' });
  });
});

describe('createRedis options', () => {
  const opened: Redis[] = [];
  afterAll(() => opened.forEach((r) => r.disconnect()));
  const optionsOf = (t: string | (RedisTarget & { cluster?: undefined }), role: ConnectionRole = 'worker'): RedisOptions & Record<string, unknown> => {
    const r = createRedis(t, role, { lazyConnect: true });
    opened.push(r);
    return r.options as RedisOptions & Record<string, unknown>;
  };
  const sentinel = { sentinels: [{ host: '127.0.0.1', port: 26379 }], name: 'mymaster', tls: false };

  it('through Sentinel: the group, and the credentials and db of the URL, not its host', () => {
    const o = optionsOf({ url: 'redis://app:p%40ss@ignored-host:1234/3', sentinel: { ...sentinel, password: 'sentinel-pw' } });
    expect(o).toMatchObject({ sentinels: sentinel.sentinels, name: 'mymaster', username: 'app', password: 'p@ss', db: 3, sentinelPassword: 'sentinel-pw', enableTLSForSentinelMode: false });
    expect(o.host).not.toBe('ignored-host');
    expect(o.sentinelTLS).toBeUndefined();
  });

  it('TLS: rediss:// is TLS to the master; REDIS_SENTINEL_TLS adds it to the sentinels, without the master server name', () => {
    const o = optionsOf({ url: `rediss://:pw@m/0?tls_ca_file=${encodeURIComponent(ca)}&tls_servername=redis.internal`, sentinel: { ...sentinel, tls: true } });
    expect(o).toMatchObject({ enableTLSForSentinelMode: true, tls: { ca: Buffer.from('CA PEM'), servername: 'redis.internal' }, sentinelTLS: { ca: Buffer.from('CA PEM') } });
    expect((o.sentinelTLS as Record<string, unknown>).servername).toBeUndefined();
  });

  it('reconnects on a demoted master: through Sentinel, workers and readers send the refused command again, producers fail it', () => {
    const readonly = new Error("READONLY You can't write against a read only replica.");
    const unblocked = new Error('UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)');
    const other = new Error('ERR wrong number of arguments');
    const decide = (t: string | (RedisTarget & { cluster?: undefined }), role: ConnectionRole) => optionsOf(t, role).reconnectOnError as (e: Error) => unknown;
    const viaSentinel = { url: 'redis://m', sentinel };
    expect(decide(viaSentinel, 'worker')(readonly)).toBe(2);
    expect(decide(viaSentinel, 'subscriber')(unblocked)).toBe(2);
    expect(decide(viaSentinel, 'producer')(readonly)).toBe(1);
    expect(decide('redis://m', 'worker')(readonly)).toBe(1); // same address again: resending would only loop
    expect(decide(viaSentinel, 'worker')(other)).toBe(false);
  });
});

describe('Redis Cluster', () => {
  it('computes key slots as CLUSTER KEYSLOT does: the first non-empty hash tag only', () => {
    // Values from redis-server 7.0's CLUSTER KEYSLOT.
    expect(keySlot('123456789')).toBe(12739);
    expect(keySlot('{hydra}')).toBe(keySlot('hydra'));
    expect(keySlot('{hydra}:infer.x:wait')).toBe(keySlot('{hydra}:node:a'));
    expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'));
    expect(keySlot('foo{}{bar}')).not.toBe(keySlot('bar'));
  });

  it('connects to the seed nodes with the roles of one server: credentials and TLS from the URL, producers fail fast', () => {
    const c = loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.5:7000,10.0.0.6', REDIS_URL: 'rediss://app:s3cret@redis-cluster' });
    const open = (role: ConnectionRole, extra: RedisOptions = {}) => createRedis(queueRedisTarget(c), role, { lazyConnect: true, ...extra }) as Cluster;
    const worker = open('worker', { connectionName: 'hydra-live-p1' });
    const producer = open('producer');
    try {
      expect(worker).toBeInstanceOf(Cluster);
      expect(worker.options).toMatchObject({ enableOfflineQueue: true, enableReadyCheck: true, lazyConnect: true, maxRedirections: 1200 });
      expect(worker.options.redisOptions).toMatchObject({ username: 'app', password: 's3cret', tls: {}, maxRetriesPerRequest: null, connectionName: 'hydra-live-p1' });
      expect(producer.options).toMatchObject({ enableOfflineQueue: false, maxRedirections: 16 });
      expect(producer.options.redisOptions).toMatchObject({ maxRetriesPerRequest: 1, commandTimeout: 2000, connectionName: 'hydra-producer' });
      expect(worker.options.clusterRetryStrategy?.(3)).toBeLessThanOrEqual(RETRY_CAP_MS);
      // No slot map before the first connection: keyless commands have no server to go to yet.
      expect(slotServer(worker, '{hydra}:live')).toBeNull();
      // The cache without its own URL shares the cluster connection.
      expect(cacheRedisTarget(c)).toBeNull();
    } finally {
      worker.disconnect();
      producer.disconnect();
    }
  });
});
