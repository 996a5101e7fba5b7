// Fuzz: thousands of generated malformed requests to every write endpoint answer 4xx (never 5xx), pollute nothing,
// and leave the API healthy. Deterministic: FUZZ_SEED reproduces a run, FUZZ_COUNT scales it.
import { Agent, request } from 'node:http';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from './support/cluster.js';
import { fuzzBodies, oddIds, type FuzzBody } from './support/fuzz-bodies.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_123);
const COUNT = Number(process.env.FUZZ_COUNT ?? 1000);
const M = 'm:7b';

/** Valid bodies per endpoint, the seeds of the mutations. Endpoints another part of Hydra may not serve yet are probed. */
const ENDPOINTS: { method: 'POST' | 'DELETE'; path: string; bases: unknown[] }[] = [
  {
    method: 'POST',
    path: '/v1/jobs',
    bases: [
      { type: 'generate', model: M, prompt: 'hi', system: 'be brief', priority: 5, options: { temperature: 0.2, num_predict: 8, stop: ['\n'] }, format: { type: 'object' }, node_id: 'paper', min_vram_gb: 1, prefer_local: false, timeout_ms: 60_000, keep_alive: '5m' },
      { type: 'chat', model: M, messages: [{ role: 'system', content: 's' }, { role: 'user', content: 'u', images: ['aGk='] }], format: 'json', priority: 9 },
      { type: 'embed', model: M, input: ['a', 'b'], options: { num_ctx: 512 } },
    ],
  },
  {
    method: 'POST',
    path: '/v1/distribute',
    bases: [{ prompts: ['a', 'b'], models: [M], pairing: 'cross', type: 'generate', system: 's', options: { num_predict: 4 }, priority: 4 }],
  },
  {
    method: 'POST',
    path: '/v1/workflows',
    bases: [
      {
        name: 'fuzz',
        input: { topic: 'x', n: 2 },
        steps: [
          { id: 'a', model: M, prompt: 'about {{input.topic}}' },
          { id: 'b', type: 'chat', model: M, messages: [{ role: 'user', content: '{{steps.a.output}}' }], depends_on: ['a'], optional: true },
        ],
        priority: 6,
      },
    ],
  },
  {
    method: 'POST',
    path: '/v1/orchestrate',
    bases: [{ prompt: 'solve x', light_model: M, heavy_model: M, models: [M], synthesis: 'consensus', weights: { [M]: 2 }, max_subtasks: 2, options: { temperature: 0 } }],
  },
];

interface Answer {
  status: number;
  text: string;
}

const agent = new Agent({ keepAlive: true, maxSockets: 8 });

/** Raw HTTP, so bodies, encodings and headers reach the server exactly as generated. */
function send(base: string, method: string, path: string, body: Buffer | null, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const u = new URL(path, base);
    const req = request(
      { agent, host: u.hostname, port: u.port, method, path: path, headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) }, timeout: 20_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 20 s`)));
    req.on('error', reject);
    req.end(body ?? undefined);
  });
}

/** Run `jobs` with a few in flight at once (the API is one process on two cores). */
async function pool<T, R>(items: readonly T[], width: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

describe('fuzz', () => {
  let c: TestCluster;
  const failures: string[] = [];
  const tally: Record<string, Record<number, number>> = {};
  const note = (endpoint: string, what: string, a: Answer) => {
    const t = (tally[endpoint] ??= {});
    t[a.status] = (t[a.status] ?? 0) + 1;
    if (a.status >= 500 || a.status < 200) failures.push(`${endpoint} [${what}] → ${a.status} ${a.text.slice(0, 300)}`);
  };

  beforeAll(async () => {
    // Small limits so the limits themselves are exercised; short waits so a body that happens to be valid and asks
    // to wait does not hold the run.
    c = await startCluster({ BODY_LIMIT_BYTES: '262144', MAX_PROMPT_CHARS: '50000', WAIT_MAX_MS: '1000' });
    // A registered node with no worker behind it: valid requests are routed and queued (202), nothing runs.
    const now = Date.now();
    await c.ctx.registry.heartbeat(
      {
        id: 'paper',
        url: 'http://127.0.0.1:9',
        backend: 'ollama',
        type: 'gpu',
        healthy: true,
        simulated: true,
        host: os.hostname(),
        vram_total_mb: 24_000,
        vram_available_mb: 24_000,
        ram_total_mb: 32_000,
        ram_available_mb: 32_000,
        capacity_mb: 23_000,
        buffer_mb: 200,
        models_available: [{ name: M, size_mb: 4000, need_mb: 4500 }],
        models_loaded: [],
        slots: 4,
        last_heartbeat: now,
      },
      600_000,
    );
  });
  afterAll(async () => {
    agent.destroy();
    await c?.stop();
  });

  it(`sends ${COUNT} malformed bodies to every write endpoint: only 4xx, never 5xx; the API stays up and unpolluted`, async () => {
    const started = Date.now();
    // Data-driven: an endpoint is fuzzed when it exists (anything but the "no route" 404).
    const live: typeof ENDPOINTS = [];
    const skipped: string[] = [];
    for (const e of ENDPOINTS) {
      const probe = await send(c.url, e.method, e.path, Buffer.from('{}'), { 'content-type': 'application/json' });
      if (probe.status === 404 && /no route/.test(probe.text)) skipped.push(e.path);
      else live.push(e);
    }
    // The unmutated bases, for the record: mutations of a body the endpoint accepts reach deeper code.
    const baseStatuses: string[] = [];
    for (const e of live) {
      for (const b of e.bases) {
        const a = await send(c.url, e.method, e.path, Buffer.from(JSON.stringify(b)), { 'content-type': 'application/json' });
        note(`${e.method} ${e.path}`, 'valid base', a);
        baseStatuses.push(`${e.path} ${a.status}`);
      }
    }
    expect(live.map((e) => e.path)).toContain('/v1/jobs');

    let sent = 0;
    for (const [k, e] of live.entries()) {
      const bodies: FuzzBody[] = fuzzBodies(SEED + k, e.bases, COUNT);
      await pool(bodies, 6, async (b) => {
        const a = await send(c.url, e.method, e.path, b.body, b.headers);
        note(`${e.method} ${e.path}`, b.kind, a);
      });
      sent += bodies.length;
    }
    // DELETE /v1/jobs/:id with odd ids, some with a malformed body as well.
    const ids = oddIds(SEED, COUNT);
    const delBodies = fuzzBodies(SEED + 99, [{ reason: 'x' }], COUNT);
    await pool(ids, 6, async (id, i) => {
      const b = i % 3 === 0 ? delBodies[i]! : null;
      const a = await send(c.url, 'DELETE', `/v1/jobs/${id}`, b?.body ?? null, b?.headers ?? {});
      note('DELETE /v1/jobs/:id', `id ${id.slice(0, 60)}${b ? ` + ${b.kind}` : ''}`, a);
    });
    sent += ids.length;

    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    process.stdout.write(
      `fuzz (seed ${SEED}): ${sent} requests in ${seconds} s; ${Object.entries(tally)
        .map(([ep, t]) => `${ep}: ${Object.entries(t).map(([s, n]) => `${n}×${s}`).join(' ')}`)
        .join('; ')}; valid bases: ${baseStatuses.join(', ')}${skipped.length ? `; not served yet, skipped: ${skipped.join(', ')}` : ''}\n`,
    );
    expect(failures.slice(0, 20)).toEqual([]);

    // Still up and still working, and no body managed to pollute Object.prototype in the API process.
    expect((await send(c.url, 'GET', '/healthz', null)).status).toBe(200);
    const ok = await send(c.url, 'POST', '/v1/jobs', Buffer.from(JSON.stringify({ type: 'generate', model: M, prompt: 'after the fuzz' })), { 'content-type': 'application/json' });
    expect(ok.status).toBe(202);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted')).toBe(false);
  }, 180_000);
});
