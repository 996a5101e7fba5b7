// The callback check with a stand-in resolver: a name is judged by every address it resolves to, WEBHOOK_ALLOW covers
// hosts by name or by network, and a refusal says why.
import { describe, expect, it } from 'vitest';
import { checkCallbackUrl, refusedAddress } from './webhook-allow.js';

const dns = (table: Record<string, string[]>) => async (host: string) => {
  const a = table[host];
  if (!a) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  return a;
};
const resolve = dns({ 'hooks.example.com': ['93.184.216.34'], 'rebind.example.com': ['93.184.216.34', '127.0.0.1'], localhost: ['127.0.0.1', '::1'], 'metadata.google.internal': ['169.254.169.254'] });

describe('checkCallbackUrl', () => {
  it('lets a public host through', async () => {
    expect(await checkCallbackUrl('https://hooks.example.com/x', [], resolve)).toEqual({ ok: true });
  });

  it.each([
    ['http://127.0.0.1:9/x', '127.0.0.1 is loopback'],
    ['http://2130706433/', '127.0.0.1 is loopback'],
    ['http://0x7f.1/', '127.0.0.1 is loopback'],
    ['http://169.254.169.254/latest/meta-data/', '169.254.169.254 is link-local'],
    ['http://[::1]:8080/', '::1 is loopback'],
    ['http://[::ffff:127.0.0.1]/', '::ffff:7f00:1 is loopback'],
    ['http://localhost:8080/', 'its host localhost resolves to 127.0.0.1 is loopback'],
    ['http://metadata.google.internal/', 'resolves to 169.254.169.254'],
    ['http://rebind.example.com/', 'resolves to 127.0.0.1 is loopback'],
    ['http://nowhere.example.com/', 'does not resolve (ENOTFOUND)'],
  ])('refuses %s', async (url, why) => {
    const v = await checkCallbackUrl(url, [], resolve);
    expect(v.ok).toBe(false);
    expect(!v.ok && v.why).toContain(why);
  });

  it('takes what WEBHOOK_ALLOW covers, by address, network or name, and no more', async () => {
    expect((await checkCallbackUrl('http://127.0.0.1:9/', ['127.0.0.1'], resolve)).ok).toBe(true);
    expect((await checkCallbackUrl('http://2130706433:9/', ['127.0.0.0/8'], resolve)).ok).toBe(true);
    // localhost also resolves to ::1, which 127.0.0.1 does not cover.
    expect((await checkCallbackUrl('http://localhost:9/', ['127.0.0.1'], resolve)).ok).toBe(false);
    expect((await checkCallbackUrl('http://localhost:9/', ['localhost'], resolve)).ok).toBe(true);
    expect((await checkCallbackUrl('http://169.254.169.254/', ['127.0.0.1'], resolve)).ok).toBe(false);
  });

  it('names the address and its class', () => {
    expect(refusedAddress('10.0.0.1', [])).toBe('10.0.0.1 is private');
    expect(refusedAddress('10.0.0.1', ['10.0.0.0/8'])).toBeNull();
    expect(refusedAddress('8.8.8.8', [])).toBeNull();
  });
});
