// Prometheus text exposition (format 0.0.4) for metrics Hydra computes itself (cluster-wide numbers read from Redis):
// families with HELP and TYPE, escaped label values, histograms from per-bucket counts.

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

/** `a="x",b="y"` (no braces). Labels with an empty value are left out (Prometheus reads them as absent). */
function labelList(labels: Labels): string {
  let out = '';
  for (const k in labels) {
    const v = labels[k]!;
    if (v !== '') out += `${out ? ',' : ''}${k}="${escapeLabel(v)}"`;
  }
  return out;
}

/**
 * The text of `families`, each with its HELP and TYPE lines, ending in a newline (so texts concatenate). Written as
 * strings directly: a scrape renders hundreds of series, and this runs in the API process.
 */
export function renderFamilies(families: readonly Family[]): string {
  const out: string[] = [];
  for (const f of families) {
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const l = labelList(s.labels);
      out.push(`${f.name}${l ? `{${l}}` : ''} ${formatValue(s.value)}`);
    }
    if (!f.histograms) continue;
    const les = [...f.histograms.bounds.map(String), '+Inf'];
    for (const h of f.histograms.series) {
      const l = labelList(h.labels);
      const pre = `${f.name}_bucket{${l}${l ? ',' : ''}le="`;
      let acc = 0;
      for (let i = 0; i < les.length; i++) {
        acc += h.counts[i] ?? 0;
        out.push(`${pre}${les[i]}"} ${acc}`);
      }
      const braces = l ? `{${l}}` : '';
      out.push(`${f.name}_sum${braces} ${formatValue(h.sum)}`, `${f.name}_count${braces} ${acc}`);
    }
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

/** Index of the bucket `v` falls in: the first bound ≥ v, or bounds.length (+Inf). */
export function bucketIndex(bounds: readonly number[], v: number): number {
  for (let i = 0; i < bounds.length; i++) if (v <= bounds[i]!) return i;
  return bounds.length;
}
