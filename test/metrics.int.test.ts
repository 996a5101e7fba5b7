// GET /metrics after a known run on a simulated node: exact job counts by outcome, retries, cancellations (running and
// waiting), cache hits, non-empty latency histograms, node gauges equal to /v1/nodes, valid Prometheus text, the
// worker's own /metrics, one Redis read shared by scrapes within half a second, and the API key on /metrics.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLUSTER_SHARE_MS } from '../apps/api/http-metrics.js';
import { startCluster, type TestCluster } from './support/cluster.js';
import { monitorRedis } from './support/redis-server.js';
import { freePort, waitFor } from './support/wait.js';

const MODEL = 'tiny:1b';
const NODE = 'm1';
const MB = 1024 * 1024;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\})? (-?[0-9.e+-]+|[+-]?Inf|NaN)$/i;

/**
 * Parse Prometheus text (0.0.4) strictly (values as Go's ParseFloat reads them: prom-client writes NaN as "Nan"): every line is a comment, blank or `name{labels} value`; every sample's
 * family has one HELP and one TYPE; no family appears twice (the text joins several registries).
 */
function parseExposition(text: string): Sample[] {
  const help = new Map<string, number>();
  const type = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      if (kind === 'HELP') help.set(name, (help.get(name) ?? 0) + 1);
      else {
        expect(type.has(name), `TYPE ${name} twice`).toBe(false);
        expect(['counter', 'gauge', 'histogram', 'summary', 'untyped']).toContain(rest);
        type.set(name, rest);
      }
      continue;
    }
    expect(line.startsWith('#'), `unexpected comment: ${line}`).toBe(false);
    const m = SAMPLE.exec(line);
    expect(m, `not a sample line: ${line}`).not.toBeNull();
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m![2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    samples.push({ name: m![1]!, labels, value: Number(m![3]!.replace(/inf$/i, 'Infinity').replace(/^nan$/i, 'NaN')) });
  }
  for (const s of samples) {
    const family = type.has(s.name) ? s.name : s.name.replace(/_(bucket|sum|count)$/, '');
    expect(type.has(family), `sample ${s.name} has no TYPE`).toBe(true);
    expect(help.get(family), `family ${family} needs exactly one HELP`).toBe(1);
  }
  return samples;
}

/** The value of the one sample named `name` whose labels include `labels` (sum when several match); 0 if none. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}
const has = (samples: Sample[], name: string, labels: Record<string, string> = {}): boolean =>
  samples.some((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));

describe('metrics', () => {
  let c: TestCluster;
  let workerMetrics: string;

  const scrape = async (): Promise<Sample[]> => {
    const r = await fetch(`${c.url}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    return parseExposition(await r.text());
  };
  const faults = async (body: unknown) => {
    const r = await fetch(`${c.sims[0]!.url}/admin/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(r.status).toBe(200);
  };
  const generate = (prompt: string, extra: Record<string, unknown> = {}) => c.post('/v1/jobs', { type: 'generate', model: MODEL, prompt, ...extra });

  beforeAll(async () => {
    // A failed attempt is retried here at once (no exclusion of the node: it is the only one).
    c = await startCluster({ EXCLUDE_FAILED_NODE_MS: '0' });
    const port = await freePort();
    workerMetrics = `http://127.0.0.1:${port}/metrics`;
    await c.simWorker(NODE, { vramGb: 8, models: [{ name: MODEL, sizeGb: 1 }], parallel: 1, loadFixedMs: 100 }, { METRICS_PORT: String(port) });
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('counts a known run exactly and serves it as valid Prometheus text', async () => {
    const before = await scrape();
    expect(value(before, 'hydra_jobs_finished_total')).toBe(0);
    expect(value(before, 'hydra_cluster_metrics_up')).toBe(1);

    // 3 completed (one deterministic, one after a retried 500), 1 failed (a 400 is not retried), 1 cache hit.
    const done = [await generate('one two three', { wait: true }), await generate('cache me', { options: { temperature: 0 }, wait: true })];
    await faults({ fail_next: 1, fail_status: 500 });
    done.push(await generate('after a retry', { wait: true }));
    for (const r of done) expect(r.body.state, JSON.stringify(r.body)).toBe('completed');
    expect(done[2]!.body.attempts_made).toBe(2);
    await faults({ fail_next: 1, fail_status: 400, fail_message: 'simulated bad request' });
    const failed = await generate('this one fails', { wait: true });
    expect(failed.body.state).toBe('failed');
    const hit = await generate('cache me', { options: { temperature: 0 }, wait: true });
    expect(hit.body.cached).toBe(true);

    // One running job cancelled, one waiting behind it (the node runs one request of the model at a time) cancelled.
    await faults({ hang_next: 1 });
    const running = (await generate('hangs until cancelled')).body.id as string;
    await waitFor(async () => (await c.get(`/v1/jobs/${running}`)).body.state === 'active', { what: 'the hanging job to start' });
    const waiting = (await generate('waits behind it', { priority: 7 })).body.id as string;
    const mid = await waitFor(async () => {
      const s = await scrape();
      return value(s, 'hydra_queue_waiting_jobs', { priority: '7' }) === 1 && s;
    });
    expect(value(mid, 'hydra_node_model_inflight_requests', { node: NODE, model: MODEL })).toBe(1);
    expect(value(mid, 'hydra_node_parallel_slots', { node: NODE })).toBe(1);
    expect(value(mid, 'hydra_queue_jobs', { state: 'active' })).toBe(1);
    expect(value(mid, 'hydra_queue_waiting_jobs')).toBe(1);
    expect(value(mid, 'hydra_queue_oldest_waiting_seconds')).toBeGreaterThan(0);
    expect((await c.del(`/v1/jobs/${waiting}`)).body.state).toBe('cancelled');
    expect((await c.del(`/v1/jobs/${running}`)).status).toBe(202);
    await waitFor(async () => (await c.get(`/v1/jobs/${running}`)).body.state === 'failed', { what: 'the running job to end cancelled' });

    // Workers record without holding up the answer: wait for the last records to land.
    const s = await waitFor(async () => {
      const x = await scrape();
      return value(x, 'hydra_jobs_finished_total') === 6 && value(x, 'hydra_model_loads_total') === 1 && x;
    });
    const job = { type: 'generate', model: MODEL };
    expect(value(s, 'hydra_jobs_finished_total', { ...job, node: NODE, outcome: 'completed' })).toBe(3);
    expect(value(s, 'hydra_jobs_finished_total', { ...job, node: NODE, outcome: 'failed' })).toBe(1);
    expect(value(s, 'hydra_jobs_finished_total', { ...job, node: NODE, outcome: 'cancelled' })).toBe(1);
    // The waiting one never reached a node: no node label.
    expect(s.filter((x) => x.name === 'hydra_jobs_finished_total' && x.labels.outcome === 'cancelled' && !('node' in x.labels)).map((x) => x.value)).toEqual([1]);
    expect(value(s, 'hydra_job_failures_total', { ...job, code: 'backend_error' })).toBe(1);
    expect(value(s, 'hydra_job_failures_total', { ...job, code: 'cancelled' })).toBe(2);
    expect(value(s, 'hydra_job_retries_total', job)).toBe(1);
    expect(value(s, 'hydra_job_stalls_total')).toBe(0);
    expect(value(s, 'hydra_cache_lookups_total', { result: 'hit' })).toBe(1);
    expect(value(s, 'hydra_cache_lookups_total', { result: 'miss' })).toBe(1);
    expect(value(s, 'hydra_cache_stores_total')).toBe(1);

    // Tokens as the jobs' own results say; latency histograms hold the 3 completed jobs.
    const results = await Promise.all(done.map(async (r) => (await c.get(`/v1/jobs/${r.body.id}`)).body.result));
    const sum = (k: string) => results.reduce((a, r) => a + Number(r[k]), 0);
    expect(value(s, 'hydra_prompt_tokens_total', { model: MODEL, node: NODE })).toBe(sum('prompt_tokens'));
    expect(value(s, 'hydra_completion_tokens_total', { model: MODEL, node: NODE })).toBe(sum('completion_tokens'));
    expect(value(s, 'hydra_decode_seconds_total', { model: MODEL, node: NODE })).toBeGreaterThan(0);
    for (const h of ['hydra_job_duration_seconds', 'hydra_job_queue_wait_seconds', 'hydra_job_time_to_first_token_seconds']) {
      expect(value(s, `${h}_count`, job), h).toBe(3);
      expect(value(s, `${h}_bucket`, { ...job, le: '+Inf' }), h).toBe(3);
      expect(value(s, `${h}_sum`, job), h).toBeGreaterThan(0);
    }
    // Every token after the first of each answer is one gap.
    expect(value(s, 'hydra_job_inter_token_seconds_count', job)).toBe(sum('completion_tokens') - 3);
    // Only the first job loaded the model (loadFixedMs 100); the heartbeat saw it appear once.
    expect(value(s, 'hydra_model_load_duration_seconds_count', { node: NODE, model: MODEL })).toBe(1);
    expect(value(s, 'hydra_model_load_duration_seconds_sum', { node: NODE, model: MODEL })).toBeGreaterThanOrEqual(0.1);
    expect(value(s, 'hydra_model_loads_total', { node: NODE, model: MODEL })).toBe(1);
    expect(value(s, 'hydra_model_unloads_total')).toBe(0);

    // BullMQ's own counters (the metrics option): 3 completed; failed = the 400 and the cancelled running job (a
    // retried attempt is not a BullMQ failure, a removed waiting job neither).
    expect(value(s, 'bullmq_job_completed_total')).toBe(3);
    expect(value(s, 'bullmq_job_failed_total')).toBe(2);
    expect(value(s, 'hydra_queue_jobs', { state: 'active' })).toBe(0);
    expect(value(s, 'hydra_queue_waiting_jobs')).toBe(0);

    // This API process: requests by surface, type, model and outcome (the 202s of the two cancelled jobs are ok).
    const http = { surface: 'hydra', type: 'generate', model: MODEL };
    expect(value(s, 'hydra_http_requests_total', { ...http, outcome: 'ok' })).toBe(6);
    expect(value(s, 'hydra_http_requests_total', { ...http, outcome: 'server_error' })).toBe(1);
    expect(value(s, 'hydra_http_request_duration_seconds_count', { surface: 'hydra', type: 'generate' })).toBe(7);
    expect(value(s, 'hydra_redis_command_duration_seconds_count', { connection: 'producer' })).toBeGreaterThan(0);
    expect(value(s, 'hydra_redis_commands_total', { connection: 'producer', command: 'evalsha' })).toBeGreaterThan(0);
    // The lean Node set: what the dashboard and docs name, not prom-client's costly extras (fd list, handles by type).
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_eventloop_lag_seconds', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_heap_size_used_bytes']) {
      expect(has(s, name), name).toBe(true);
    }
    expect(value(s, 'process_resident_memory_bytes')).toBeGreaterThan(10 * MB);
    expect(has(s, 'process_open_fds')).toBe(false);
    expect(has(s, 'nodejs_active_handles')).toBe(false);
  });

  it('answers in ASCII: one character beyond Latin-1 makes V8 hold the whole text in two bytes a character, slower to build and send', async () => {
    const text = await (await fetch(`${c.url}/metrics`)).text();
    expect(text.match(/[^\x00-\x7f]/g) ?? []).toEqual([]);
  });

  it('shares one Redis read of the cluster half between scrapes within CLUSTER_SHARE_MS, and reads again after', async () => {
    // Each read of the cluster half is one EVALSHA (an EVAL the first time, when ioredis resends the script after
    // NOSCRIPT) that names the cache counters' hash among its keys.
    let reads = 0;
    const monitor = await monitorRedis(c.redisUrl, (args) => {
      if (/^eval(sha)?$/i.test(String(args[0])) && args.includes(c.ctx.keys.cacheStats)) reads++;
    });
    const text = async (headers: Record<string, string> = {}) => {
      const r = await fetch(`${c.url}/metrics?scope=cluster`, { headers });
      expect(r.status).toBe(200);
      return parseExposition(await r.text());
    };
    const readsReach = (n: number) => waitFor(() => reads >= n, { what: `${n} cluster reads` });
    try {
      // Cache-Control: no-cache always reads.
      await text({ 'cache-control': 'no-cache' });
      await readsReach(1);
      // Past the window, two scrapes at once: one read, one snapshot (the same read time in both answers).
      await new Promise((r) => setTimeout(r, CLUSTER_SHARE_MS + 100));
      const [a, b] = await Promise.all([text(), text()]);
      expect(value(a, 'hydra_metrics_collect_seconds')).toBeGreaterThan(0);
      expect(value(b, 'hydra_metrics_collect_seconds')).toBe(value(a, 'hydra_metrics_collect_seconds'));
      expect(value(b, 'hydra_jobs_finished_total')).toBe(value(a, 'hydra_jobs_finished_total'));
      // Redis runs commands in order: had the pair read twice, the next read would be the fourth.
      await text({ 'cache-control': 'no-cache' });
      await readsReach(3);
      expect(reads).toBe(3);
      // Past the window again, a scrape reads anew.
      await new Promise((r) => setTimeout(r, CLUSTER_SHARE_MS + 100));
      await text();
      await text({ 'cache-control': 'no-cache' });
      await readsReach(5);
      expect(reads).toBe(5);
    } finally {
      monitor.close();
    }
  });

  it('reports the nodes as /v1/nodes does', async () => {
    const [s, nodes] = await Promise.all([scrape(), c.nodes()]);
    const n = nodes.find((x) => x.id === NODE)!;
    const node = { node: NODE };
    expect(value(s, 'hydra_node_up', node)).toBe(1);
    expect(value(s, 'hydra_node_healthy', node)).toBe(n.healthy ? 1 : 0);
    expect(value(s, 'hydra_node_info', { ...node, backend: 'ollama', type: 'gpu', simulated: 'true' })).toBe(1);
    expect(value(s, 'hydra_node_breaker_state', { ...node, state: n.breaker.state })).toBe(1);
    expect(value(s, 'hydra_node_breaker_state', node)).toBe(1);
    expect(value(s, 'hydra_node_vram_total_bytes', node)).toBe(n.vram_total_mb * MB);
    expect(value(s, 'hydra_node_vram_free_bytes', node)).toBe(n.vram_available_mb * MB);
    expect(value(s, 'hydra_node_vram_reserved_bytes', node)).toBe(n.reserved_mb * MB);
    expect(value(s, 'hydra_node_capacity_bytes', node)).toBe(n.capacity_mb * MB);
    expect(value(s, 'hydra_node_models_loaded', node)).toBe(n.models_loaded_count);
    expect(value(s, 'hydra_node_models_available', node)).toBe(n.models_available.length);
    expect(value(s, 'hydra_node_active_jobs', node)).toBe(n.active_jobs);
    expect(value(s, 'hydra_node_slots', node)).toBe(n.slots);
    expect(n.models_loaded).toEqual([MODEL]);
    const [rec] = await c.ctx.registry.list(Date.now());
    expect(value(s, 'hydra_node_model_loaded_bytes', { ...node, model: MODEL })).toBe(rec!.models_loaded[0]!.size_bytes);
  });

  it('serves each half alone, and the worker’s own process metrics on METRICS_PORT', async () => {
    const cluster = parseExposition(await (await fetch(`${c.url}/metrics?scope=cluster`)).text());
    expect(has(cluster, 'hydra_jobs_finished_total')).toBe(true);
    expect(has(cluster, 'process_cpu_seconds_total')).toBe(false);
    const proc = parseExposition(await (await fetch(`${c.url}/metrics?scope=process`)).text());
    expect(has(proc, 'process_cpu_seconds_total')).toBe(true);
    expect(has(proc, 'hydra_node_up')).toBe(false);

    const r = await fetch(workerMetrics);
    expect(r.status).toBe(200);
    const w = parseExposition(await r.text());
    expect(has(w, 'process_cpu_seconds_total')).toBe(true);
    expect(value(w, 'hydra_worker_slots', { node: NODE })).toBe(4);
    expect(value(w, 'hydra_redis_commands_total', { connection: 'worker' })).toBeGreaterThan(0);
    expect(value(w, 'hydra_redis_command_duration_seconds_count', { connection: 'worker' })).toBeGreaterThan(0);
    expect((await fetch(workerMetrics.replace('/metrics', '/other'))).status).toBe(404);
  });
});

describe('metrics with API keys', () => {
  const KEY = 'metrics-test-key-0123456789';
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({ API_KEYS: KEY });
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('asks for the key, as /v1 does', async () => {
    expect((await fetch(`${c.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${c.url}/metrics`, { headers: { authorization: 'Bearer wrong-key-wrong-key-1' } })).status).toBe(401);
    const ok = await fetch(`${c.url}/metrics`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(ok.status).toBe(200);
    expect(parseExposition(await ok.text()).length).toBeGreaterThan(0);
  });
});
