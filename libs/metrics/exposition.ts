// Prometheus text exposition (format 0.0.4) for metrics Hydra computes itself (cluster-wide numbers read from Redis):
// families with HELP and TYPE, escaped label values, histograms from per-bucket counts.

/** The Content-Type of the text format (what prom-client's Registry.contentType says too). */
export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type MetricType = 'counter' | 'gauge' | 'histogram';
export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  labels: Labels;
  value: number;
}

/** One histogram series: counts per bucket (not cumulative; the last one is +Inf), their sum. */
interface HistogramData {
  labels: Labels;
  /** counts[i] = observations in (bounds[i-1], bounds[i]]; counts[bounds.length] = above the last bound. */
  counts: readonly number[];
  sum: number;
}

export interface Family {
  name: string;
  help: string;
  type: MetricType;
  /** Counters and gauges. */
  samples: Sample[];
  /** Histograms: the bucket bounds and each series; rendered as `_bucket` (cumulative, `le`), `_sum` and `_count`. */
  histograms?: { bounds: readonly number[]; series: HistogramData[] };
}

const NEEDS_ESCAPE = /[\\\n"]/;
const escapeLabel = (v: string): string => (NEEDS_ESCAPE.test(v) ? v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"') : v);
const escapeHelp = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/**
 * `a="x",b="y"` (no braces). Labels with an empty value are left out (Prometheus reads them as absent). Built each
 * time: a frozen set's text is kept in its SeriesText.
 */
function labelList(labels: Labels): string {
  let out = '';
  for (const k in labels) {
    const v = labels[k]!;
    if (v !== '') out += `${out ? ',' : ''}${k}="${escapeLabel(v)}"`;
  }
  return out;
}

/**
 * The line starts of one series (`name{labels} `, each bucket's `name_bucket{labels,le="x"} `, the sum's and count's),
 * kept for frozen label sets, which collectors keep across scrapes (stored.ts, local-metrics.ts): a scrape then writes
 * only the numbers of most of its lines.
 */
interface SeriesText {
  name: string;
  sample?: string;
  bounds?: readonly number[];
  buckets?: string[];
  sum?: string;
  count?: string;
}
const seriesTexts = new WeakMap<Labels, SeriesText>();
function seriesText(name: string, labels: Labels): SeriesText {
  if (!Object.isFrozen(labels)) return { name };
  let t = seriesTexts.get(labels);
  if (t?.name !== name) seriesTexts.set(labels, (t = { name }));
  return t;
}

/** HELP and TYPE lines by family name (HELP texts are escaped with two regular expressions each). */
const headers = new Map<string, { help: string; type: MetricType; text: string }>();
function header(f: Family): string {
  let h = headers.get(f.name);
  if (h?.help !== f.help || h.type !== f.type) {
    h = { help: f.help, type: f.type, text: `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}` };
    headers.set(f.name, h);
  }
  return h.text;
}

/**
 * The text of `families`, each with its HELP and TYPE lines, ending in a newline (so texts concatenate). Written as
 * strings directly: a scrape renders hundreds of series, and this runs in the API process.
 */
export function renderFamilies(families: readonly Family[]): string {
  const out: string[] = [];
  for (const f of families) {
    out.push(header(f));
    for (const s of f.samples) {
      const t = seriesText(f.name, s.labels);
      if (t.sample === undefined) {
        const l = labelList(s.labels);
        t.sample = `${f.name}${l ? `{${l}}` : ''} `;
      }
      out.push(t.sample + formatValue(s.value));
    }
    if (!f.histograms) continue;
    const { bounds } = f.histograms;
    for (const h of f.histograms.series) {
      const t = seriesText(f.name, h.labels);
      if (t.bounds !== bounds || !t.buckets) {
        const l = labelList(h.labels);
        const braces = l ? `{${l}}` : '';
        t.bounds = bounds;
        t.buckets = [...bounds.map(String), '+Inf'].map((le) => `${f.name}_bucket{${l}${l ? ',' : ''}le="${le}"} `);
        t.sum = `${f.name}_sum${braces} `;
        t.count = `${f.name}_count${braces} `;
      }
      let acc = 0;
      for (let i = 0; i < t.buckets.length; i++) {
        acc += h.counts[i] ?? 0;
        out.push(t.buckets[i]! + acc);
      }
      out.push(t.sum! + formatValue(h.sum), t.count! + acc);
    }
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

/** Index of the bucket `v` falls in: the first bound ≥ v, or bounds.length (+Inf). */
export function bucketIndex(bounds: readonly number[], v: number): number {
  for (let i = 0; i < bounds.length; i++) if (v <= bounds[i]!) return i;
  return bounds.length;
}
