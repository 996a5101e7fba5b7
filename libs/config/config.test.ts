// The env schema: defaults, errors that name the variable, and .env.example listing every variable.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_KEYS, ConfigError, loadConfig } from './index.js';

describe('config', () => {
  it('has working defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ REDIS_URL: 'redis://127.0.0.1:6379', PORT: 8080, HOST: '127.0.0.1', API_KEYS: [], VRAM_BUFFER_MB: 200, BACKEND: 'auto' });
  });
  it('names every bad variable and says why', () => {
    try {
      loadConfig({ PORT: '70000', REDIS_URL: 'http://x', BACKEND: 'gpu', API_KEYS: 'short', NODE_VRAM_GB: '-1' });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      const msg = (e as Error).message;
      expect(msg).toMatch(/PORT="70000": must be a port number/);
      expect(msg).toMatch(/REDIS_URL="http:\/\/x": must start with redis:\/\/ or rediss:\/\//);
      expect(msg).toMatch(/BACKEND="gpu"/);
      expect(msg).toMatch(/API_KEYS=\(secret, not shown\): each key must be at least 16 characters/);
      expect(msg).not.toContain('short'); // a bad key is still a secret: never printed
      expect(msg).toMatch(/NODE_VRAM_GB="-1"/);
    }
  });
  it('reads the count retention, naming the variable when it is wrong', () => {
    expect(loadConfig({})).toMatchObject({ JOB_RETENTION_COUNT: 50_000, JOB_RETENTION_FAILED_COUNT: 50_000 });
    expect(loadConfig({ JOB_RETENTION_COUNT: '1000', JOB_RETENTION_FAILED_COUNT: '500' })).toMatchObject({ JOB_RETENTION_COUNT: 1000, JOB_RETENTION_FAILED_COUNT: 500 });
    expect(() => loadConfig({ JOB_RETENTION_COUNT: '0' })).toThrow(/JOB_RETENTION_COUNT="0": must be at least 1/);
    expect(() => loadConfig({ JOB_RETENTION_FAILED_COUNT: 'many' })).toThrow(/JOB_RETENTION_FAILED_COUNT="many"/);
  });
  it('parses API_KEYS as a comma list', () => {
    expect(loadConfig({ API_KEYS: 'aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbb' }).API_KEYS).toEqual(['aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb']);
  });
  it('parses OPENAI_MODEL_SIZES as GB by model name', () => {
    expect(loadConfig({}).OPENAI_MODEL_SIZES).toEqual({});
    expect(loadConfig({ OPENAI_MODEL_SIZES: 'qwen3:14b=9.3, hf.co/org/m:Q4_K_M=0.5,' }).OPENAI_MODEL_SIZES).toEqual({ 'qwen3:14b': 9.3, 'hf.co/org/m:Q4_K_M': 0.5 });
  });
  it.each(['qwen3:14b', 'qwen3:14b=', '=2', 'qwen3:14b=big', 'qwen3:14b=-1'])('says how to write OPENAI_MODEL_SIZES, not %j', (bad) => {
    expect(() => loadConfig({ OPENAI_MODEL_SIZES: `llama3.2:3b=2,${bad}` })).toThrow(
      `OPENAI_MODEL_SIZES="llama3.2:3b=2,${bad}": must be "name=GB,..." with sizes in GB (GiB), e.g. "qwen3:14b=9.3,llama3.2:3b=2"; "${bad}" is not`,
    );
  });
  it('reads Sentinel settings: addresses with a default port, IPv6 in brackets, the master name', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ REDIS_SENTINELS: [], REDIS_SENTINEL_NAME: 'mymaster', REDIS_SENTINEL_TLS: false, REDIS_MIN_REPLICAS_ACK: 0, REDIS_REPLICA_ACK_TIMEOUT_MS: 1000 });
    const s = loadConfig({ REDIS_SENTINELS: ' 10.0.0.5:26380, sentinel-b ,[::1]:26381,', REDIS_SENTINEL_NAME: 'queue-1', REDIS_SENTINEL_TLS: 'true' });
    expect(s.REDIS_SENTINELS).toEqual([
      { host: '10.0.0.5', port: 26380 },
      { host: 'sentinel-b', port: 26379 },
      { host: '::1', port: 26381 },
    ]);
    expect(s).toMatchObject({ REDIS_SENTINEL_NAME: 'queue-1', REDIS_SENTINEL_TLS: true });
  });
  it.each(['10.0.0.5:0', 'host:port', 'a:1:2', 'host:70000'])('says how to write REDIS_SENTINELS, not %j', (bad) => {
    expect(() => loadConfig({ REDIS_SENTINELS: `s1:26379,${bad}` })).toThrow(`REDIS_SENTINELS="s1:26379,${bad}": must be "host:port,..." (Sentinel addresses, e.g. "10.0.0.5:26379,10.0.0.6:26379"); "${bad}" is not`);
  });
  it('refuses Sentinel settings without REDIS_SENTINELS, naming both and never printing a password', () => {
    try {
      loadConfig({ REDIS_SENTINEL_PASSWORD: 'hunter2-sentinel', REDIS_SENTINEL_TLS: '1', CACHE_REDIS_SENTINEL_NAME: 'cache' });
      expect.unreachable();
    } catch (e) {
      const msg = (e as Error).message;
      for (const name of ['REDIS_SENTINEL_PASSWORD', 'REDIS_SENTINEL_TLS', 'CACHE_REDIS_SENTINEL_NAME']) {
        expect(msg).toContain(`${name} is set but REDIS_SENTINELS is not: set REDIS_SENTINELS=host:port,... (the Sentinel addresses), or unset ${name}`);
      }
      expect(msg).not.toContain('hunter2');
    }
    expect(loadConfig({ REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_PASSWORD: 'x', CACHE_REDIS_SENTINEL_NAME: 'cache' }).CACHE_REDIS_SENTINEL_NAME).toBe('cache');
  });
  it('reads Redis Cluster seed nodes (port 6379 by default), and refuses them beside REDIS_SENTINELS, naming both', () => {
    expect(loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.5:7000, redis-b' }).REDIS_CLUSTER_NODES).toEqual([
      { host: '10.0.0.5', port: 7000 },
      { host: 'redis-b', port: 6379 },
    ]);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'a:1,host:port' })).toThrow('REDIS_CLUSTER_NODES="a:1,host:port": must be "host:port,..." (Redis Cluster nodes, e.g. "10.0.0.5:6379,10.0.0.6:6379"); "host:port" is not');
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'a:7000', REDIS_SENTINELS: 's1:26379' })).toThrow(
      'REDIS_SENTINELS and REDIS_CLUSTER_NODES are both set: Hydra reaches Redis through Sentinel or through a Redis Cluster, not both; unset one',
    );
  });
  it('hides the password of a bad Redis URL and of a sentinel password that fails with other errors', () => {
    try {
      loadConfig({ REDIS_URL: 'redis://:hunter2@host:port', CACHE_REDIS_URL: 'http://u:hunter3@cache', REDIS_SENTINEL_NAME: 'bad name', REDIS_SENTINEL_PASSWORD: 'hunter4' });
      expect.unreachable();
    } catch (e) {
      const msg = (e as Error).message;
      expect(msg).toMatch(/REDIS_URL="redis:\/\/\*\*\*@host:port": is not a valid URL/);
      expect(msg).toMatch(/CACHE_REDIS_URL="http:\/\/\*\*\*@cache": must start with redis:\/\//);
      expect(msg).toMatch(/REDIS_SENTINEL_NAME="bad name": must be a Sentinel master name/);
      expect(msg).not.toMatch(/hunter/);
    }
  });
  it.each([
    [{ REDIS_MIN_REPLICAS_ACK: '-1' }, /REDIS_MIN_REPLICAS_ACK="-1": must be at least 0/],
    [{ REDIS_MIN_REPLICAS_ACK: '1.5' }, /REDIS_MIN_REPLICAS_ACK="1.5": must be a whole number/],
    [{ REDIS_REPLICA_ACK_TIMEOUT_MS: '0' }, /REDIS_REPLICA_ACK_TIMEOUT_MS="0": must be at least 1/],
    [{ REDIS_SENTINEL_TLS: 'maybe' }, /REDIS_SENTINEL_TLS="maybe": must be 1 or 0/],
  ])('names a bad replica-ack or TLS setting: %j', (env, msg) => {
    expect(() => loadConfig(env)).toThrow(msg);
  });
  it('.env.example lists every variable, and only those', () => {
    const text = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');
    const listed = text.split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => l.slice(0, l.indexOf('=')));
    expect(listed.sort()).toEqual([...CONFIG_KEYS].sort());
    // and its defaults parse
    const env = Object.fromEntries(text.split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    expect(() => loadConfig(env)).not.toThrow();
  });

  it('reads the orchestrator catalog (model=capability+capability), naming a bad entry', () => {
    expect(loadConfig({ ORCH_CATALOG: 'qwen2.5-coder:7b=code, hf.co/org/math:7b=math+reasoning,llama3.1:8b=general' }).ORCH_CATALOG).toEqual([
      { model: 'qwen2.5-coder:7b', capabilities: ['code'] },
      { model: 'hf.co/org/math:7b', capabilities: ['math', 'reasoning'] },
      { model: 'llama3.1:8b', capabilities: ['general'] },
    ]);
    expect(loadConfig({}).ORCH_CATALOG).toEqual([]);
    expect(() => loadConfig({ ORCH_CATALOG: 'm=code+poetry' })).toThrow(/ORCH_CATALOG="m=code\+poetry": must be "model=capability\+capability,\.\.\." .*"m=code\+poetry" has the unknown capability "poetry"/);
    expect(() => loadConfig({ ORCH_CATALOG: 'just-a-model' })).toThrow(/"just-a-model" is not model=capabilities/);
  });
});
