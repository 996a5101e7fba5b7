// Discovery's pure parts: which addresses a target list probes, and the node ids of discovered servers.
import { describe, expect, it } from 'vitest';
import { parseDiscoverTargets } from '../../libs/config/index.js';
import { discoveredNodeId, expandTargets } from './discovery.js';

describe('expandTargets', () => {
  it('probes each address of a CIDR on each port, without its network and broadcast addresses', () => {
    const eps = expandTargets(parseDiscoverTargets('127.0.0.0/29'), [1, 2]);
    expect(eps.map((e) => `${e.host}:${e.port}`)).toEqual(['127.0.0.1:1', '127.0.0.1:2', '127.0.0.2:1', '127.0.0.2:2', '127.0.0.3:1', '127.0.0.3:2', '127.0.0.4:1', '127.0.0.4:2', '127.0.0.5:1', '127.0.0.5:2', '127.0.0.6:1', '127.0.0.6:2']);
    expect(expandTargets(parseDiscoverTargets('10.0.0.7/32,10.0.0.8/31'), [9]).map((e) => e.host)).toEqual(['10.0.0.7', '10.0.0.8', '10.0.0.9']);
    expect(expandTargets(parseDiscoverTargets('10.0.0.0/16'), [1])).toHaveLength(65_534);
  });

  it('keeps an entry\'s own port and scheme, and probes each address once', () => {
    const eps = expandTargets(parseDiscoverTargets('a,a:5,https://b:6,a'), [7, 8]);
    expect(eps).toEqual([
      { scheme: 'http', host: 'a', port: 7 },
      { scheme: 'http', host: 'a', port: 8 },
      { scheme: 'http', host: 'a', port: 5 },
      { scheme: 'https', host: 'b', port: 6 },
    ]);
  });
});

describe('discoveredNodeId', () => {
  const valid = /^[A-Za-z0-9_.-]{1,64}$/;
  it('is <prefix>-<host>-<port>, made valid for node ids', () => {
    expect(discoveredNodeId('rack1', { host: '127.0.0.2', port: 11434 })).toBe('rack1-127.0.0.2-11434');
    expect(discoveredNodeId('my host', { host: '::1', port: 80 })).toBe('my-host---1-80');
  });
  it('stays within 64 characters and unique for long names', () => {
    const long = 'x'.repeat(70);
    const a = discoveredNodeId(long, { host: 'gpu-1.example.com', port: 11434 });
    const b = discoveredNodeId(long, { host: 'gpu-2.example.com', port: 11434 });
    expect(a).toMatch(valid);
    expect(b).toMatch(valid);
    expect(a).not.toBe(b);
    expect(discoveredNodeId('p', { host: 'h'.repeat(200), port: 1 })).toMatch(valid);
  });
});
