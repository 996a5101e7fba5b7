// Local counters and histograms: their text, and the same samples through a prom-client registry (a worker's /metrics).
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { MetricSet } from './local-metrics.js';

/** Sample lines, sorted, each with its labels sorted (prom-client writes `le` first, exposition.ts last). */
const samples = (text: string): string[] =>
  text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.replace(/\{([^}]*)\}/, (_m, inner: string) => `{${inner.split(',').sort().join(',')}}`))
    .sort();

describe('local metrics', () => {
  const make = () => {
    const set = new MetricSet();
    const c = set.counter({ name: 'x_total', help: 'counts', labelNames: ['a', 'b'] });
    const h = set.histogram({ name: 'y_seconds', help: 'times', labelNames: ['a'], buckets: [0.1, 1] });
    return { set, c, h };
  };

  it('count and observe per label set, a series at 0 once its labels are asked for', () => {
    const { set, c, h } = make();
    c.labels('p', 'q').inc();
    c.labels('p', 'q').inc(2);
    c.labels('p', 'r');
    const child = h.labels('p');
    for (const v of [0.05, 0.1, 0.5, 3]) child.observe(v);
    expect(set.text()).toBe(
      [
        '# HELP x_total counts',
        '# TYPE x_total counter',
        'x_total{a="p",b="q"} 3',
        'x_total{a="p",b="r"} 0',
        '# HELP y_seconds times',
        '# TYPE y_seconds histogram',
        'y_seconds_bucket{a="p",le="0.1"} 2',
        'y_seconds_bucket{a="p",le="1"} 3',
        'y_seconds_bucket{a="p",le="+Inf"} 4',
        'y_seconds_sum{a="p"} 3.65',
        'y_seconds_count{a="p"} 4',
        '',
      ].join('\n'),
    );
    expect(() => set.counter({ name: 'x_total', help: 'again', labelNames: [] })).toThrow(/defined twice/);
  });

  it('serve the same samples through a prom-client registry, metrics added before and after the bridge', async () => {
    const { set, c, h } = make();
    const registry = new Registry();
    set.alsoIn(registry);
    const late = set.counter({ name: 'z_total', help: 'added later', labelNames: [] });
    c.labels('p', 'q').inc(5);
    h.labels('s').observe(0.7);
    late.labels().inc();
    const prom = await registry.metrics();
    expect(samples(prom)).toEqual(samples(set.text()));
    expect(samples(prom)).toContain('y_seconds_bucket{a="s",le="1"} 1');
    expect(prom).toContain('# TYPE y_seconds histogram');
    expect(prom).toContain('z_total 1');
  });
});
