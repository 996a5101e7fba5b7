// DISCOVER's grammar: entries that parse, entries refused with a message, and the config errors naming each variable.
import { describe, expect, it } from 'vitest';
import { loadConfig, parseDiscoverTargets, parsePortList } from './index.js';

describe('DISCOVER entries', () => {
  it.each([
    ['10.0.0.5', [{ kind: 'host', scheme: 'http', host: '10.0.0.5' }]],
    ['gpu-box.lan:8080', [{ kind: 'host', scheme: 'http', host: 'gpu-box.lan', port: 8080 }]],
    ['https://gpu1:443/', [{ kind: 'host', scheme: 'https', host: 'gpu1', port: 443 }]],
    ['[::1]:11434', [{ kind: 'host', scheme: 'http', host: '::1', port: 11434 }]],
    ['127.0.0.9/28', [{ kind: 'cidr', base: 0x7f000000, bits: 28, text: '127.0.0.0/28' }]],
    [' a , b:1 ,', [{ kind: 'host', scheme: 'http', host: 'a' }, { kind: 'host', scheme: 'http', host: 'b', port: 1 }]],
    ['', []],
  ])('parses %j', (text, want) => {
    expect(parseDiscoverTargets(text)).toEqual(want);
  });

  it.each([
    ['10.0.0.0/8', /larger than \/16 \(16777216 addresses\)/],
    ['10.0.0.300/24', /not an IPv4 CIDR/],
    ['host:0', /port must be 1-65535/],
    ['http://h:1/v1', /has a path/],
    ['a b', /not a host name/],
  ])('refuses %j', (text, msg) => {
    expect(() => parseDiscoverTargets(text)).toThrow(msg);
  });

  it('reads DISCOVER_PORTS as a port list', () => {
    expect(parsePortList('11434, 8080,11434')).toEqual([11434, 8080]);
    expect(() => parsePortList('99999')).toThrow(/ports 1-65535/);
  });

  it('has defaults, and names each bad variable', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ DISCOVER: [], DISCOVER_PORTS: [11434], DISCOVER_INTERVAL_MS: 30_000, DISCOVER_CONCURRENCY: 64, DISCOVER_TIMEOUT_MS: 1000 });
    for (const [env, msg] of [
      [{ DISCOVER: '10.0.0.0/12' }, /DISCOVER="10.0.0.0\/12": .*larger than \/16/],
      [{ DISCOVER_PORTS: 'x' }, /DISCOVER_PORTS="x": must be a comma list of ports/],
      [{ DISCOVER_INTERVAL_MS: '5' }, /DISCOVER_INTERVAL_MS="5": must be at least 100/],
      [{ DISCOVER_CONCURRENCY: '0' }, /DISCOVER_CONCURRENCY="0": must be at least 1/],
      [{ DISCOVER_TIMEOUT_MS: '1e9' }, /DISCOVER_TIMEOUT_MS="1e9": must be at most 60000/],
    ] as const) {
      expect(() => loadConfig(env)).toThrow(msg);
    }
  });
});
