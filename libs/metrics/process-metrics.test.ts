// processMetrics: the set is chosen once per process; `full` gives prom-client's whole default set. (Its own file:
// vitest gives each file fresh modules, so this process's first call is the one below.)
import { describe, expect, it } from 'vitest';
import { processMetrics } from './process-metrics.js';

const names = (text: string): Set<string> => new Set([...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!));

describe('processMetrics', () => {
  it('gives prom-client’s full default set on request, and keeps the first choice for the process', async () => {
    const full = names(await processMetrics({ full: true }).metrics());
    for (const n of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_eventloop_lag_stddev_seconds', 'nodejs_active_handles', 'nodejs_heap_space_size_used_bytes']) {
      expect(full.has(n), n).toBe(true);
    }
    expect(processMetrics()).toBe(processMetrics({ full: true }));
    expect(names(await processMetrics().metrics()).has('nodejs_heap_space_size_used_bytes')).toBe(true);
  });
});
