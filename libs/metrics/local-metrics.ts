// Counters and histograms of one process that render straight to Prometheus text (exposition.ts): a scrape of the API
// reads them without prom-client's per-scrape objects (a value object per bucket, label maps rebuilt each time).
// `labels(...)` hands out a child to keep, as prom-client's does; label sets are frozen once and their text cached.
import type { Registry } from 'prom-client';
import { bucketIndex, renderFamilies, type Family, type Labels } from './exposition.js';

interface LocalMetric {
  readonly name: string;
  family(): Family;
}

interface MetricSpec<L extends string> {
  name: string;
  help: string;
  labelNames: readonly L[];
}

/** The label set of `values` (in labelNames order), frozen: exposition.ts renders a frozen set's text once. */
const labelSet = (names: readonly string[], values: readonly string[]): Labels => Object.freeze(Object.fromEntries(names.map((n, i) => [n, values[i] ?? ''])));

export class LocalCounter<L extends string> implements LocalMetric {
  readonly name: string;
  private readonly series = new Map<string, { labels: Labels; value: number; inc(by?: number): void }>();

  constructor(private readonly spec: MetricSpec<L>) {
    this.name = spec.name;
  }

  /** The series of these label values (in labelNames order), made at 0 on the first call. */
  labels(...values: string[]): { inc(by?: number): void } {
    const key = values.join('\u0000');
    let s = this.series.get(key);
    if (!s) {
      const entry = {
        labels: labelSet(this.spec.labelNames, values),
        value: 0,
        inc: (by = 1) => {
          entry.value += by;
        },
      };
      this.series.set(key, (s = entry));
    }
    return s;
  }

  family(): Family {
    const samples = [];
    for (const s of this.series.values()) samples.push({ labels: s.labels, value: s.value });
    return { name: this.spec.name, help: this.spec.help, type: 'counter', samples };
  }
}

export class LocalHistogram<L extends string> implements LocalMetric {
  readonly name: string;
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; observe(v: number): void }>();

  constructor(private readonly spec: MetricSpec<L> & { buckets: readonly number[] }) {
    this.name = spec.name;
  }

  /** The series of these label values (in labelNames order), made empty on the first call. */
  labels(...values: string[]): { observe(v: number): void } {
    const key = values.join('\u0000');
    let s = this.series.get(key);
    if (!s) {
      const { buckets } = this.spec;
      const entry = {
        labels: labelSet(this.spec.labelNames, values),
        counts: new Array<number>(buckets.length + 1).fill(0),
        sum: 0,
        observe: (v: number) => {
          entry.counts[bucketIndex(buckets, v)]!++;
          entry.sum += v;
        },
      };
      this.series.set(key, (s = entry));
    }
    return s;
  }

  family(): Family {
    // Copies of the counts: a snapshot, whatever is observed while the text is written.
    const series = [];
    for (const s of this.series.values()) series.push({ labels: s.labels, counts: [...s.counts], sum: s.sum });
    return { name: this.spec.name, help: this.spec.help, type: 'histogram', samples: [], histograms: { bounds: this.spec.buckets, series } };
  }
}

/** Metrics of one process, in the order they were added. */
export class MetricSet {
  private readonly metrics: LocalMetric[] = [];
  /** The prom-client registry that serves these metrics too (alsoIn), if any. */
  private bridge: Registry | null = null;

  counter<L extends string>(spec: MetricSpec<L>): LocalCounter<L> {
    return this.add(new LocalCounter(spec));
  }

  histogram<L extends string>(spec: MetricSpec<L> & { buckets: readonly number[] }): LocalHistogram<L> {
    return this.add(new LocalHistogram(spec));
  }

  families(): Family[] {
    return this.metrics.map((m) => m.family());
  }

  /** The Prometheus text of every metric. */
  text(): string {
    return renderFamilies(this.families());
  }

  /**
   * Also serve these metrics from a prom-client registry (a worker's /metrics builds on one): each is registered there
   * as a metric whose values prom-client formats itself.
   */
  alsoIn(registry: Registry): this {
    this.bridge = registry;
    for (const m of this.metrics) bridgeInto(registry, m);
    return this;
  }

  private add<M extends LocalMetric>(m: M): M {
    if (this.metrics.some((x) => x.name === m.name)) throw new Error(`metric ${m.name} is defined twice`);
    this.metrics.push(m);
    if (this.bridge) bridgeInto(this.bridge, m);
    return m;
  }
}

/** prom-client's view of one metric (what Registry.getMetricsAsString and getMetricsAsJSON read). */
function bridgeInto(registry: Registry, m: LocalMetric): void {
  const get = () => {
    const f = m.family();
    const values: { labels: Record<string, string | number>; value: number; metricName?: string }[] = f.samples.map((s) => ({ labels: { ...s.labels }, value: s.value }));
    for (const h of f.histograms?.series ?? []) {
      let acc = 0;
      const les = [...(f.histograms?.bounds ?? []), '+Inf'];
      les.forEach((le, i) => {
        acc += h.counts[i] ?? 0;
        values.push({ labels: { ...h.labels, le }, value: acc, metricName: `${f.name}_bucket` });
      });
      values.push({ labels: { ...h.labels }, value: h.sum, metricName: `${f.name}_sum` }, { labels: { ...h.labels }, value: acc, metricName: `${f.name}_count` });
    }
    return Promise.resolve({ name: f.name, help: f.help, type: f.type, aggregator: 'sum', values });
  };
  // registerMetric takes prom-client's own metric classes in its types; it reads only these members.
  registry.registerMetric({ name: m.name, get, reset: () => undefined } as unknown as Parameters<Registry['registerMetric']>[0]);
}
