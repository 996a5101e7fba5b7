// Node's own metrics, the cheap part of prom-client's default set under the same names and meanings: CPU, memory and
// heap, event-loop lag, GC pauses, version. Read from calls that cost microseconds at scrape time; what prom-client
// reads from /proc, the handle lists and the lag histogram's stddev (a walk over its buckets) is left out.
import { constants, monitorEventLoopDelay, PerformanceObserver, type IntervalHistogram } from 'node:perf_hooks';
import type { Family } from './exposition.js';

/** prom-client's bounds for nodejs_gc_duration_seconds. */
const GC_BUCKETS = [0.001, 0.01, 0.1, 1, 2, 5] as const;
const GC_KINDS: Readonly<Record<number, string>> = {
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};
/** The delay histogram samples the loop every 10 ms (prom-client's eventLoopMonitoringPrecision). */
const LOOP_RESOLUTION_MS = 10;
const NS = 1e9;

const gauge = (name: string, help: string, value: number, labels: Record<string, string> = {}): Family => ({ name, help, type: 'gauge', samples: [{ labels, value }] });
const counter = (name: string, help: string, value: number): Family => ({ name, help, type: 'counter', samples: [{ labels: {}, value }] });

/**
 * The lean Node set of one process. Starts the loop-delay histogram and the GC observer when made (neither keeps the
 * process alive); `families()` reads the rest at scrape time and resets the histogram, as prom-client does, so the
 * lag percentiles cover the time since the previous scrape.
 */
export class NodeMetrics {
  private readonly delay: IntervalHistogram = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  /** Seconds the last scrape's setImmediate waited: nodejs_eventloop_lag_seconds (prom-client reports it so too). */
  private lag = 0;
  private readonly gc = new Map<string, { counts: number[]; sum: number }>();
  private readonly startTime = Math.round(Date.now() / 1000 - process.uptime());
  private readonly version = /^v?(\d+)\.(\d+)\.(\d+)/.exec(process.version);

  constructor() {
    this.delay.enable();
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const kind = GC_KINDS[(e as { detail?: { kind?: number } }).detail?.kind ?? -1];
        if (!kind) continue;
        let h = this.gc.get(kind);
        if (!h) this.gc.set(kind, (h = { counts: new Array<number>(GC_BUCKETS.length + 1).fill(0), sum: 0 }));
        const s = e.duration / 1000;
        let i = 0;
        while (i < GC_BUCKETS.length && s > GC_BUCKETS[i]!) i++;
        h.counts[i]!++;
        h.sum += s;
      }
    }).observe({ entryTypes: ['gc'] });
  }

  families(): Family[] {
    const started = process.hrtime.bigint();
    setImmediate(() => (this.lag = Number(process.hrtime.bigint() - started) / NS));
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    const d = this.delay;
    // No sample since the reset (scrapes less than 10 ms apart): all 0, without walking the empty histogram's buckets
    // for percentiles (which would report a huge min).
    const some = d.count > 0;
    const lag = (read: () => number) => (some ? read() / NS : 0);
    const out: Family[] = [
      counter('process_cpu_user_seconds_total', 'Total user CPU time spent in seconds.', cpu.user / 1e6),
      counter('process_cpu_system_seconds_total', 'Total system CPU time spent in seconds.', cpu.system / 1e6),
      counter('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', (cpu.user + cpu.system) / 1e6),
      gauge('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', this.startTime),
      gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', mem.rss),
      gauge('nodejs_heap_size_total_bytes', 'Process heap size from Node.js in bytes.', mem.heapTotal),
      gauge('nodejs_heap_size_used_bytes', 'Process heap size used from Node.js in bytes.', mem.heapUsed),
      gauge('nodejs_external_memory_bytes', 'Node.js external memory size in bytes.', mem.external),
      gauge('nodejs_eventloop_lag_seconds', 'Lag of event loop in seconds.', this.lag),
      gauge('nodejs_eventloop_lag_min_seconds', 'The minimum recorded event loop delay.', lag(() => d.min)),
      gauge('nodejs_eventloop_lag_max_seconds', 'The maximum recorded event loop delay.', lag(() => d.max)),
      gauge('nodejs_eventloop_lag_mean_seconds', 'The mean of the recorded event loop delays.', lag(() => d.mean)),
      gauge('nodejs_eventloop_lag_p50_seconds', 'The 50th percentile of the recorded event loop delays.', lag(() => d.percentile(50))),
      gauge('nodejs_eventloop_lag_p90_seconds', 'The 90th percentile of the recorded event loop delays.', lag(() => d.percentile(90))),
      gauge('nodejs_eventloop_lag_p99_seconds', 'The 99th percentile of the recorded event loop delays.', lag(() => d.percentile(99))),
    ];
    d.reset();
    if (this.version) {
      const [, major = '', minor = '', patch = ''] = this.version;
      out.push(gauge('nodejs_version_info', 'Node.js version info.', 1, { version: process.version, major, minor, patch }));
    }
    out.push({
      name: 'nodejs_gc_duration_seconds',
      help: 'Garbage collection duration by kind, one of major, minor, incremental or weakcb.',
      type: 'histogram',
      samples: [],
      histograms: { bounds: GC_BUCKETS, series: [...this.gc].map(([kind, h]) => ({ labels: { kind }, counts: h.counts, sum: h.sum })) },
    });
    return out;
  }
}
