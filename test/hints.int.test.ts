// Hydra's routing hints and limits on the drop-in surfaces: X-Hydra-Priority and a key's default priority
// (API_KEY_PRIORITIES) reach the job; rate limits answer 429 with Retry-After in each caller's own error shape.
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from './support/cluster.js';

const KEY_HIGH = 'k-high-priority-0001';
const KEY_PLAIN = 'k-plain-priority-0002';
const MODEL = 'qwen3:4b';

describe('hints and limits on the Ollama and OpenAI surfaces', () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({ API_KEYS: `${KEY_HIGH},${KEY_PLAIN}`, API_KEY_PRIORITIES: `${KEY_HIGH}=9` });
    await c.simWorker('n1', { vramGb: 24, models: [{ name: MODEL, sizeGb: 2.5 }], tokensPerSecond: 2000, loadMsPerGb: 0 });
  }, 60_000);
  afterAll(async () => c?.stop());

  const priorityOf = async (jobId: string | null, key: string) => {
    const r = await fetch(`${c.url}/v1/jobs/${jobId}`, { headers: { authorization: `Bearer ${key}` } });
    return ((await r.json()) as { priority: number }).priority;
  };

  it('gives a key its configured default priority, and X-Hydra-Priority overrides it', async () => {
    const call = async (key: string, extra: Record<string, string> = {}) => {
      const r = await fetch(`${c.url}/api/generate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...extra },
        body: JSON.stringify({ model: MODEL, prompt: 'hello there', stream: false }),
      });
      expect(r.status).toBe(200);
      return r.headers.get('x-hydra-job-id');
    };
    expect(await priorityOf(await call(KEY_HIGH), KEY_HIGH)).toBe(9);
    expect(await priorityOf(await call(KEY_PLAIN), KEY_PLAIN)).toBe(5);
    expect(await priorityOf(await call(KEY_HIGH, { 'X-Hydra-Priority': '2' }), KEY_HIGH)).toBe(2);
  });

});

describe('rate limits on the Ollama and OpenAI surfaces', () => {
  let c: TestCluster;
  // No node is needed: a request past the limit is refused before anything is routed.
  beforeAll(async () => void (c = await startCluster({ API_KEYS: KEY_PLAIN, RATE_LIMIT_PER_MIN: '4' })));
  afterAll(async () => c?.stop());

  it('answers past the rate limit with 429, Retry-After and each protocol’s error shape', async () => {
    const ollama = new Ollama({ host: c.url, headers: { Authorization: `Bearer ${KEY_PLAIN}` } });
    const openai = new OpenAI({ baseURL: `${c.url}/v1`, apiKey: KEY_PLAIN, maxRetries: 0 });
    // Spend the key's budget of 4 per minute.
    for (let i = 0; i < 4; i++) await fetch(`${c.url}/api/tags`, { headers: { authorization: `Bearer ${KEY_PLAIN}` } });
    const raw = await fetch(`${c.url}/api/chat`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY_PLAIN}` }, body: JSON.stringify({ model: MODEL, messages: [] }) });
    expect(raw.status).toBe(429);
    expect(Number(raw.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Object.keys((await raw.json()) as object)).toEqual(['error']);
    const viaOllama = await ollama.list().catch((e: unknown) => e as { status_code?: number; error?: string });
    expect(viaOllama).toMatchObject({ status_code: 429 });
    const viaOpenAI = await openai.models.list().catch((e: unknown) => e);
    expect(viaOpenAI).toBeInstanceOf(OpenAI.RateLimitError);
    expect((viaOpenAI as InstanceType<typeof OpenAI.RateLimitError>).error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limited' });
  });
});
