// The dashboard in real headless Chromium against a small simulated cluster: it needs the key, shows every node,
// a VRAM bar fills when a job starts, a routing decision appears when a job ends; and a 50-node state renders
// worst first with every user-supplied string shown as text. Screenshots: test-artifacts/dashboard-*.png.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildState, type QueueCounts } from '../apps/api/dashboard/state.js';
import type { NodeView } from '../libs/registry/index.js';
import { hasChromium, launchChromium, NO_CHROMIUM, openPage, screenshot } from './support/browser.js';
import { startCluster, type TestCluster } from './support/cluster.js';

const KEY = 'dashboard-key-0123456789abcdef';
const bearer = { authorization: `Bearer ${KEY}` };
const basic = (password: string) => ({ authorization: `Basic ${Buffer.from(`hydra:${password}`).toString('base64')}` });

if (!hasChromium) console.warn(`test/dashboard.browser.test.ts: ${NO_CHROMIUM}`);

describe.skipIf(!hasChromium)(hasChromium ? 'dashboard in headless Chromium' : `dashboard in headless Chromium — ${NO_CHROMIUM}`, () => {
  let c: TestCluster;
  let browser: Browser;
  const credentials = { httpCredentials: { username: 'hydra', password: KEY } };

  beforeAll(async () => {
    [c, browser] = await Promise.all([startCluster({ API_KEYS: KEY }), launchChromium()]);
    // gpu-big decodes qwen3:14b at ~170 tokens/s: a 2000-token answer runs for ~12 s. gpu-small answers at once.
    await Promise.all([
      c.simWorker('gpu-big', { vramGb: 24, models: [{ name: 'qwen3:14b', sizeGb: 9.3 }], tokensPerSecond: 200, loadMsPerGb: 0, loadFixedMs: 0 }),
      c.simWorker('gpu-small', { vramGb: 8, models: [{ name: 'llama3.2:3b', sizeGb: 2 }], tokensPerSecond: 4000, loadMsPerGb: 0, loadFixedMs: 0 }),
    ]);
  });
  afterAll(async () => {
    await browser?.close();
    await c?.stop();
  });

  it('needs the key: 401 without it (with a Basic challenge), 200 with Bearer or Basic, in a browser too', async () => {
    for (const path of ['/dashboard', '/dashboard/state', '/dashboard/dashboard.js']) {
      const none = await fetch(`${c.url}${path}`);
      expect(none.status, path).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/^Basic realm="hydra"/);
      expect((await fetch(`${c.url}${path}`, { headers: basic('wrong-key-0123456789') })).status, path).toBe(401);
      expect((await fetch(`${c.url}${path}`, { headers: bearer })).status, path).toBe(200);
      expect((await fetch(`${c.url}${path}`, { headers: basic(KEY) })).status, path).toBe(200);
    }
    const anonymous = await openPage(browser);
    // Headless Chromium has nobody to ask for a password: it either shows the 401 or gives up on the challenge.
    const refused = await anonymous.page.goto(`${c.url}/dashboard`).then(
      (r) => String(r?.status()),
      (e: Error) => e.message,
    );
    expect(refused).toMatch(/^401$|ERR_INVALID_AUTH_CREDENTIALS/);
    await anonymous.close();
  });

  it('shows every node; a VRAM bar fills while a long job runs; its routing decision appears when a job ends', async () => {
    const w = await openPage(browser, credentials);
    const { page } = w;
    const loaded = await page.goto(`${c.url}/dashboard`);
    expect(loaded?.status()).toBe(200);

    const ids = (await c.nodes()).map((n: { id: string }) => n.id).sort();
    expect(ids).toEqual(['gpu-big', 'gpu-small']);
    for (const id of ids) await page.locator(`[data-node-id="${id}"]`).waitFor({ timeout: 10_000 });
    expect(await page.locator('article.node').count()).toBe(ids.length);
    const bigBar = page.locator('[data-node-id="gpu-big"] .bar');
    expect(await bigBar.getAttribute('data-reserved-mb')).toBe('0');
    await expect.poll(() => page.locator('[data-node-id="gpu-big"] .tag.sim').count()).toBe(1);
    await screenshot(page, 'dashboard-idle');

    // A long job on gpu-big: its memory is reserved for as long as it runs.
    const long = await c.post('/v1/jobs', { type: 'generate', model: 'qwen3:14b', prompt: 'a long one', options: { num_predict: 2000, sim_answer_tokens: 2000 } }, bearer);
    expect(long.status).toBe(202);
    await expect.poll(async () => Number(await bigBar.getAttribute('data-reserved-mb')), { timeout: 15_000 }).toBeGreaterThan(0);
    expect((await page.locator('[data-node-id="gpu-big"] .seg.reserved').boundingBox())?.width).toBeGreaterThan(0);
    expect(await page.locator('[data-node-id="gpu-big"]').getAttribute('data-status')).toBe('busy');
    await expect.poll(() => page.locator('[data-node-id="gpu-big"] .model.running .m-slots').textContent(), { timeout: 10_000 }).toBe('1/4');
    await screenshot(page, 'dashboard-busy');

    // A short job elsewhere completes while the long one runs: its routing decision shows, with the node's reason.
    const quick = await c.post('/v1/jobs', { type: 'generate', model: 'llama3.2:3b', prompt: 'hi', wait: true }, bearer);
    expect(quick.status).toBe(200);
    const row = page.locator(`#decisions tr[data-job-id="${quick.body.id}"]`);
    await row.waitFor({ timeout: 10_000 });
    expect(await row.locator('td.reason').textContent()).toBe(quick.body.result.routing_decision.reason);
    expect(await row.textContent()).toContain('gpu-small');
    const jobLink = await row.locator('a').getAttribute('href');
    expect(jobLink).toBe(`/admin/queues/queue/${quick.body.queue}/${quick.body.id}`);
    expect((await fetch(`${c.url}${jobLink}`, { headers: bearer })).status).toBe(200); // Bull Board serves its page there
    expect(await page.locator('#latency tbody').textContent()).toContain('llama3.2:3b');
    // This cluster runs with MEMORY_URL=off: the history panel says so.
    expect(await page.locator('#history tbody').textContent()).toContain('the results history is off (MEMORY_URL=off)');

    // Cancelling the long job frees gpu-big's memory, and its end is a decision too.
    expect((await fetch(`${c.url}/v1/jobs/${long.body.id}`, { method: 'DELETE', headers: bearer })).ok).toBe(true);
    await expect.poll(() => bigBar.getAttribute('data-reserved-mb'), { timeout: 15_000 }).toBe('0');
    await expect.poll(() => page.locator(`#decisions tr[data-job-id="${long.body.id}"]`).textContent(), { timeout: 10_000 }).toContain('failed: cancelled');
    await screenshot(page, 'dashboard-after');
    expect(w.errors).toEqual([]);
    await w.close();
  });

  it('renders a 50-node cluster worst first, every user-supplied string as text', async () => {
    const w = await openPage(browser, credentials);
    const { page } = w;
    const evil = '<img src=x onerror="window.__pwned=1">';
    const state = fiftyNodeState(evil);
    await page.route(`${c.url}/dashboard/state`, (r) => r.fulfill({ json: state }));
    await page.goto(`${c.url}/dashboard`);
    await page.locator('article.node').nth(49).waitFor({ timeout: 10_000 });
    expect(await page.locator('article.node').count()).toBe(50);

    const statuses = await page.locator('article.node').evaluateAll((els) => els.map((e) => e.getAttribute('data-status')));
    expect(statuses.slice(0, 4)).toEqual(['down', 'down', 'breaker_open', 'probing']);
    expect(statuses).toEqual(state.nodes.map((n) => n.status));
    expect(await page.locator('#node-counts').textContent()).toBe('2 down · 1 breaker open · 1 probing · 7 full · 14 busy · 25 idle');

    // The hostile strings are on the page as text, and nothing they hold ran or became an element.
    expect(await page.locator('article.node').first().locator('.node-id').textContent()).toBe(`${evil}-0`);
    expect(await page.locator('#decisions td.reason').first().textContent()).toBe(`routed by ${evil}`);
    expect(await page.locator('#latency tbody').textContent()).toContain(evil);
    expect(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await page.locator('main img').count()).toBe(0);
    await screenshot(page, 'dashboard-50-nodes');
    expect(w.errors).toEqual([]);
    await w.close();
  });
});

describe.skipIf(!hasChromium)('dashboard: the results history per model', () => {
  let c: TestCluster;
  let browser: Browser;
  const dir = mkdtempSync(join(tmpdir(), 'hydra-dash-history-'));

  beforeAll(async () => {
    [c, browser] = await Promise.all([startCluster({ API_KEYS: KEY, MEMORY_URL: `sqlite:${join(dir, 'history.sqlite')}`, JOB_ATTEMPTS: '1' }), launchChromium()]);
    await c.simWorker('gpu', { vramGb: 24, models: [{ name: 'qwen3:4b', sizeGb: 2.5 }], tokensPerSecond: 4000, loadMsPerGb: 0, loadFixedMs: 0 });
  });
  afterAll(async () => {
    await browser?.close();
    await c?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows the last 7 days per model from the store: jobs, outcomes, tokens, p50 / p95', async () => {
    for (let i = 0; i < 3; i++) expect((await c.post('/v1/jobs', { type: 'generate', model: 'qwen3:4b', prompt: `history ${i}`, cache: false, wait: true }, bearer)).status).toBe(200);
    // In the store before the page first asks: the panel reads the store at most every 30 s.
    await expect.poll(async () => ((await c.get('/v1/history/stats?by=model', bearer)).body.groups ?? [])[0]?.jobs ?? 0, { timeout: 10_000 }).toBe(3);
    const w = await openPage(browser, { httpCredentials: { username: 'hydra', password: KEY } });
    await w.page.goto(`${c.url}/dashboard`);
    const row = w.page.locator('#history tbody tr').first();
    await expect.poll(() => row.locator('td').allTextContents(), { timeout: 10_000 }).toEqual(expect.arrayContaining(['qwen3:4b']));
    const cells = await row.locator('td').allTextContents();
    expect(cells.slice(0, 5)).toEqual(['qwen3:4b', '3', '3', '0', '0']);
    expect(Number(cells[5])).toBeGreaterThan(0);
    expect(cells[6]).toMatch(/^\d+ ms$|^[\d.]+ s$/);
    expect(await w.page.locator('#history-window').textContent()).toBe('last 7 days, sqlite');
    await screenshot(w.page, 'dashboard-history');
    expect(w.errors).toEqual([]);
    await w.close();
  });
});

/** A state as the API would build it for 50 nodes in every status, names and reasons carrying `evil`. */
function fiftyNodeState(evil: string) {
  const now = Date.now();
  const nodes: NodeView[] = Array.from({ length: 50 }, (_, i) => {
    const down = i === 0 || i === 17;
    const active = i < 10 ? 4 : i < 25 ? 1 + (i % 3) : 0;
    const loaded = i % 5 === 0 ? [] : [{ name: i === 1 ? evil : 'qwen3:14b', size_mb: 9300, vram_mb: 9300 }, ...(i % 3 === 0 ? [{ name: 'llama3.2:3b', size_mb: 2000, vram_mb: 2000 }] : [])];
    return {
      id: i < 2 ? `${evil}-${i}` : `gpu-${String(i).padStart(2, '0')}`,
      url: `http://10.0.0.${i}:11434`,
      backend: i % 7 === 0 ? 'openai' : 'ollama',
      type: i % 10 === 9 ? 'cpu' : 'gpu',
      healthy: !down,
      ...(down ? { error: `connect ECONNREFUSED ${evil}` } : {}),
      simulated: i % 2 === 0,
      host: `host-${i}`,
      vram_total_mb: i % 10 === 9 ? 0 : 8192 * (1 + (i % 4)),
      vram_available_mb: i % 10 === 9 ? 0 : 4096,
      ram_total_mb: 65_536,
      ram_available_mb: 32_768,
      capacity_mb: i % 10 === 9 ? 30_000 : 8192 * (1 + (i % 4)) - 200,
      buffer_mb: 200,
      models_available: [{ name: 'qwen3:14b', size_mb: 9300, need_mb: 9800 }],
      models_loaded: loaded,
      slots: 4,
      parallel: 4,
      ...(i === 3 ? { breaker: { state: 'open' as const, recent_failures: 5, open_until: now + 30_000 } } : {}),
      ...(i === 4 ? { breaker: { state: 'half_open' as const, recent_failures: 5, open_until: null } } : {}),
      last_heartbeat: now - (i === 5 ? 9000 : 400),
      active_jobs: down || i === 3 || i === 4 ? 0 : active,
      reserved_mb: active > 0 && !down ? 2000 * active : 0,
      inflight_by_model: {},
      processes: i === 6 ? 2 : 1,
      ...(i % 4 === 0 ? { perf: { 'qwen3:14b': { tokens_per_s: 40 + i, ttft_ms: 180, job_ms: 4000, samples: 20, updated_at: now } } } : {}),
    };
  });
  const inUse = new Map(nodes.map((n) => [n.id, new Map(n.active_jobs ? [[n.models_loaded[0]?.name ?? 'qwen3:14b', Math.min(4, n.active_jobs)]] : [])]));
  const queues: QueueCounts[] = [
    { info: { kind: 'class', name: 'infer.qwen3_14b', model: 'qwen3:14b', min_vram_mb: 0 }, bands: { 1: 3, 6: 40, 10: 2 }, active: 30, delayed: 1, failed: 2, completed: 900, waiting_children: 0 },
    { info: { kind: 'class', name: 'infer.llama3.2_3b', model: 'llama3.2:3b', min_vram_mb: 0 }, bands: { 6: 4 }, active: 5, delayed: 0, failed: 0, completed: 100, waiting_children: 0 },
    ...nodes.map((n): QueueCounts => ({ info: { kind: 'node', name: `node.${n.id.slice(0, 12)}`, node: n.id }, bands: {}, active: 0, delayed: 0, failed: 0, completed: 0, waiting_children: 0 })),
  ];
  const decisions = Array.from({ length: 25 }, (_, i) => ({
    at: now - i * 1000,
    job_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    model: i % 2 ? 'qwen3:14b' : evil,
    type: 'chat',
    node: nodes[i + 2]!.id,
    queue: 'infer.qwen3_14b',
    priority: 1 + (i % 10),
    outcome: i % 6 === 5 ? ('failed' as const) : ('completed' as const),
    ...(i % 6 === 5 ? { error_code: 'timeout' } : {}),
    reason: i === 0 ? `routed by ${evil}` : `model qwen3:14b on 48 nodes; warm on this node (${i})`,
    queued_ms: 40 * i,
    total_ms: 900 + 100 * i,
    ttft_ms: 120 + 10 * i,
  }));
  const latency = {
    window_ms: 300_000,
    covered_ms: 200_000,
    truncated: true,
    models: [
      { model: 'qwen3:14b', jobs: 400, failed: 3, total_ms: { p50: 2100, p95: 6900 }, ttft_ms: { p50: 240, p95: 1800 } },
      { model: evil, jobs: 12, failed: 12, total_ms: null, ttft_ms: null },
    ],
  };
  return buildState({ nodes, inUse, queues, decisions, latency }, now, '/admin/queues');
}
