// The lean Node set: prom-client's names and types (so dashboards built on prom-client keep working) and values that
// follow the process (CPU burnt, a blocked event loop, garbage collections).
import { readFileSync } from 'node:fs';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { Family } from './exposition.js';
import { NodeMetrics } from './node-metrics.js';

const valueOf = (families: Family[], name: string): number => {
  const f = families.find((x) => x.name === name);
  expect(f, name).toBeDefined();
  return f!.samples[0]!.value;
};

describe('the lean Node metrics', () => {
  const node = new NodeMetrics();

  it('are a subset of prom-client’s default set: same names, same types', async () => {
    const full = new Registry();
    collectDefaultMetrics({ register: full });
    const types = new Map((await full.getMetricsAsJSON()).map((m) => [m.name, String(m.type)]));
    const lean = node.families();
    for (const f of lean) expect(types.get(f.name), f.name).toBe(f.type);
    // What the dashboard (docs/grafana) and docs/metrics.md name.
    for (const n of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_heap_size_used_bytes', 'process_start_time_seconds']) {
      expect(lean.map((f) => f.name)).toContain(n);
    }
    // The costly ones stay in the full set only.
    for (const n of ['process_open_fds', 'nodejs_active_handles', 'nodejs_heap_space_size_used_bytes', 'nodejs_eventloop_lag_stddev_seconds']) {
      expect(types.has(n), n).toBe(true);
      expect(lean.map((f) => f.name)).not.toContain(n);
    }
  });

  it('count the CPU the process burns and its memory', () => {
    const before = valueOf(node.families(), 'process_cpu_seconds_total');
    // Burn 60 ms of CPU (however long that takes on a busy machine).
    const cpuMs = () => (process.cpuUsage().user + process.cpuUsage().system) / 1000;
    const start = cpuMs();
    while (cpuMs() - start < 60) {
      /* burn */
    }
    const after = node.families();
    expect(valueOf(after, 'process_cpu_seconds_total') - before).toBeGreaterThanOrEqual(0.06);
    // The kernel's count for the process (utime + stime, in 1/100 s) agrees.
    if (process.platform === 'linux') {
      const stat = readFileSync('/proc/self/stat', 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      expect(Math.abs((Number(f[11]) + Number(f[12])) / 100 - valueOf(after, 'process_cpu_seconds_total'))).toBeLessThan(0.1);
    }
    expect(valueOf(after, 'process_cpu_seconds_total')).toBeCloseTo(valueOf(after, 'process_cpu_user_seconds_total') + valueOf(after, 'process_cpu_system_seconds_total'), 6);
    const rss = process.memoryUsage.rss();
    expect(valueOf(after, 'process_resident_memory_bytes')).toBeGreaterThan(rss / 2);
    expect(valueOf(after, 'process_resident_memory_bytes')).toBeLessThan(rss * 2);
    expect(valueOf(after, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(valueOf(after, 'nodejs_heap_size_used_bytes')).toBeLessThanOrEqual(valueOf(after, 'nodejs_heap_size_total_bytes'));
    expect(Math.abs(valueOf(after, 'process_start_time_seconds') - (Date.now() / 1000 - process.uptime()))).toBeLessThan(2);
  });

  it('see a blocked event loop in the lag since the previous scrape, and GC pauses', async () => {
    const block = (ms: number) => {
      const until = performance.now() + ms;
      while (performance.now() < until) {
        /* block the loop */
      }
    };
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    // The setImmediate a scrape schedules waits for whatever blocks the loop next; the next scrape reports that wait.
    node.families();
    block(120);
    await sleep(30);
    expect(valueOf(node.families(), 'nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0.1);
    // The delay histogram (sampled every 10 ms, reset by each scrape) holds the blocked 120 ms until the next scrape.
    await sleep(30);
    block(120);
    await sleep(30);
    const blocked = node.families();
    expect(valueOf(blocked, 'nodejs_eventloop_lag_max_seconds')).toBeGreaterThanOrEqual(0.1);
    expect(valueOf(blocked, 'nodejs_eventloop_lag_p99_seconds')).toBeGreaterThanOrEqual(0.1);
    // Reset at each scrape: the next 200 ms, unblocked, do not show it again.
    await sleep(200);
    expect(valueOf(node.families(), 'nodejs_eventloop_lag_max_seconds')).toBeLessThan(valueOf(blocked, 'nodejs_eventloop_lag_max_seconds'));

    // Garbage: young-generation collections follow, and are counted.
    let keep: unknown[] = [];
    const gcCount = () => node.families().find((f) => f.name === 'nodejs_gc_duration_seconds')?.histograms?.series.find((s) => s.labels.kind === 'minor')?.counts.reduce((a, b) => a + b, 0) ?? 0;
    const before = gcCount();
    const deadline = Date.now() + 10_000;
    while (gcCount() === before && Date.now() < deadline) {
      keep = Array.from({ length: 200_000 }, (_, i) => ({ i }));
      await sleep(5);
    }
    expect(keep.length).toBe(200_000);
    expect(gcCount()).toBeGreaterThan(before);
  });
});
