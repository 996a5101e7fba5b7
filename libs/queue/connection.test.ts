// Redis URL handling (Hydra's tls_* parameters, password masking) and the reconnect schedule.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fastRetry, parseRedisUrl, redactRedisUrl, RETRY_CAP_MS } from './connection.js';

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
