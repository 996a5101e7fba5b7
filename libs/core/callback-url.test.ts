// Callback URL addresses: the forms that reach loopback, private, link-local and metadata addresses are refused,
// IPv4 inside IPv6 included; allow-list entries (addresses, CIDRs, host names) cover what they name and nothing more.
import { describe, expect, it } from 'vitest';
import { allowedAddress, allowedHost, CallbackUrlSchema, deniedAddress, parseIp } from './callback-url.js';

describe('deniedAddress', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['0.0.0.0', 'unspecified'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['100.100.100.200', 'shared'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fe80::1', 'link-local'],
    ['fd00:ec2::254', 'unique local'],
    ['fc00::1', 'unique local'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback, as an IPv4 address inside IPv6'],
    ['::ffff:7f00:1', 'loopback, as an IPv4 address inside IPv6'],
    ['::ffff:a9fe:a9fe', 'link-local'],
    ['64:ff9b::a9fe:a9fe', 'link-local'],
    ['2002:7f00:1::', 'loopback'],
    ['[::1]', 'loopback'],
  ])('refuses %s (%s)', (address, why) => {
    expect(deniedAddress(address)).toContain(why);
  });

  it.each(['8.8.8.8', '1.1.1.1', '172.32.0.1', '192.169.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '2a00:1450:4001::200e'])('lets %s through', (address) => {
    expect(deniedAddress(address)).toBeNull();
  });

  it('reads only IP literals', () => {
    expect(parseIp('localhost')).toBeNull();
    expect(parseIp('1.2.3')).toBeNull();
    expect(parseIp('1.2.3.256')).toBeNull();
    expect(parseIp('1::2::3')).toBeNull();
    expect(parseIp('fe80::1%eth0')).toEqual({ v: 6, n: (0xfe80n << 112n) | 1n });
  });
});

describe('the WHATWG parser normalises the tricky host spellings to what the checker sees', () => {
  it.each([
    ['http://2130706433/', '127.0.0.1'],
    ['http://0x7f.1/', '127.0.0.1'],
    ['http://0177.0.0.1/', '127.0.0.1'],
    ['http://127.1/', '127.0.0.1'],
    ['http://0xa9fea9fe/', '169.254.169.254'],
    ['http://[::ffff:127.0.0.1]/', '[::ffff:7f00:1]'],
    ['http://[0:0:0:0:0:0:0:1]/', '[::1]'],
  ])('%s has host %s, which is refused', (url, host) => {
    const h = new URL(url).hostname;
    expect(h).toBe(host);
    expect(deniedAddress(h)).not.toBeNull();
  });
});

describe('allow-list entries', () => {
  it('cover an address, a CIDR, and IPv4 written inside IPv6', () => {
    expect(allowedAddress('127.0.0.1', ['127.0.0.1'])).toBe(true);
    expect(allowedAddress('127.0.0.2', ['127.0.0.1'])).toBe(false);
    expect(allowedAddress('10.1.200.3', ['10.1.0.0/16'])).toBe(true);
    expect(allowedAddress('10.2.0.1', ['10.1.0.0/16'])).toBe(false);
    expect(allowedAddress('::ffff:7f00:1', ['127.0.0.0/8'])).toBe(true);
    expect(allowedAddress('fd00::5', ['fd00::/8'])).toBe(true);
    expect(allowedAddress('::1', ['127.0.0.1'])).toBe(false);
    expect(allowedAddress('127.0.0.1', ['localhost'])).toBe(false);
  });

  it('name hosts exactly, case-insensitive', () => {
    expect(allowedHost('Hooks.Internal.', ['hooks.internal'])).toBe(true);
    expect(allowedHost('evil.hooks.internal', ['hooks.internal'])).toBe(false);
  });
});

describe('CallbackUrlSchema', () => {
  it('takes http(s) URLs only, of bounded length', () => {
    expect(CallbackUrlSchema.safeParse('https://example.com/hook').success).toBe(true);
    expect(CallbackUrlSchema.safeParse('ftp://example.com/').success).toBe(false);
    expect(CallbackUrlSchema.safeParse('file:///etc/passwd').success).toBe(false);
    expect(CallbackUrlSchema.safeParse('not a url').success).toBe(false);
    expect(CallbackUrlSchema.safeParse(`https://example.com/${'a'.repeat(2048)}`).success).toBe(false);
  });
});
