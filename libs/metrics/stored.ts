// Cluster-wide job metrics kept in Redis: which exist (name, labels, buckets), how a recording is encoded (hash fields,
// one Lua call per finished job), and how a scrape reads them back as Prometheus families.
import { loadScript, readScript, replyCode, type HydraKeys, type RedisClient, type ScriptCall, type SentWrite } from '../queue/index.js';
import type { Family, Labels } from './exposition.js';

export interface StoredMetric {
  /** Suffix of its Redis hash: `keys.metric(key)`. */
  key: string;
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  labels: readonly string[];
  /** Histogram bucket upper bounds, in the metric's unit. */
  buckets?: readonly number[];
  /** A counter of fractional amounts (seconds): always HINCRBYFLOAT, since HINCRBY fails on a field holding "1.5". */
  float?: boolean;
}

const LATENCY_S = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600] as const;

/**
 * Every metric workers (and the API, for cancellations of jobs that never ran) record into Redis. Labels are bounded:
 * type (generate/chat/embed), model (at most METRICS_MAX_MODELS values, then "other"), node (registered node ids),
 * outcome and error code (fixed sets). Never a job id or prompt.
 */
export const STORED = {
  jobsFinished: {
    key: 'jobs',
    name: 'hydra_jobs_finished_total',
    help: 'Jobs that ended for good, by outcome (completed, failed, cancelled). A job cancelled before it started has no node.',
    type: 'counter',
    labels: ['type', 'model', 'node', 'outcome'],
  },
  jobFailures: {
    key: 'failures',
    name: 'hydra_job_failures_total',
    help: 'Jobs that ended failed or cancelled, by error code (poison_pill, timeout, cancelled, backend_error, bad_request, ...).',
    type: 'counter',
    labels: ['type', 'model', 'code'],
  },
  jobRetries: {
    key: 'retries',
    name: 'hydra_job_retries_total',
    help: 'Retried attempts (attempts beyond the first) of jobs that ended, counted when the job ends.',
    type: 'counter',
    labels: ['type', 'model'],
  },
  jobStalls: {
    key: 'stalls',
    name: 'hydra_job_stalls_total',
    help: 'Times jobs that ended were re-run because their worker stopped answering (BullMQ stalled jobs), counted when the job ends.',
    type: 'counter',
    labels: ['type', 'model'],
  },
  promptTokens: { key: 'prompt-tokens', name: 'hydra_prompt_tokens_total', help: 'Prompt tokens of completed jobs, as the backend counted them.', type: 'counter', labels: ['model', 'node'] },
  completionTokens: {
    key: 'completion-tokens',
    name: 'hydra_completion_tokens_total',
    help: 'Generated tokens of completed jobs (rate() of it is tokens/s).',
    type: 'counter',
    labels: ['model', 'node'],
  },
  decodeSeconds: {
    key: 'decode-seconds',
    name: 'hydra_decode_seconds_total',
    help: 'Time backends spent generating tokens for completed jobs (eval duration); completion tokens / this = decode speed.',
    type: 'counter',
    labels: ['model', 'node'],
    float: true,
  },
  duration: {
    key: 'duration',
    name: 'hydra_job_duration_seconds',
    help: 'End-to-end time of completed jobs, from submit to the worker finishing (queue wait + run).',
    type: 'histogram',
    labels: ['type', 'model'],
    buckets: LATENCY_S,
  },
  queueWait: {
    key: 'queue-wait',
    name: 'hydra_job_queue_wait_seconds',
    help: 'Time completed jobs waited in the queue before their last attempt started.',
    type: 'histogram',
    labels: ['type', 'model'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  },
  ttft: {
    key: 'ttft',
    name: 'hydra_job_time_to_first_token_seconds',
    help: 'Time from submit to the first generated token (reasoning or answer) of completed generate and chat jobs, as the worker saw it.',
    type: 'histogram',
    labels: ['type', 'model'],
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  },
  interToken: {
    key: 'itl',
    name: 'hydra_job_inter_token_seconds',
    help: 'Gaps between consecutive generated tokens of completed jobs, as the worker received them from the backend.',
    type: 'histogram',
    labels: ['type', 'model'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1],
  },
  loadDuration: {
    key: 'load-duration',
    name: 'hydra_model_load_duration_seconds',
    help: 'Model load time reported by the backend for jobs that found their model cold on the node.',
    type: 'histogram',
    labels: ['node', 'model'],
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
  },
  loads: {
    key: 'loads',
    name: 'hydra_model_loads_total',
    help: "Models that appeared in a node's loaded list between two heartbeats.",
    type: 'counter',
    labels: ['node', 'model'],
  },
  unloads: {
    key: 'unloads',
    name: 'hydra_model_unloads_total',
    help: "Models that left a node's loaded list between two heartbeats (evicted for memory, or unloaded when idle).",
    type: 'counter',
    labels: ['node', 'model'],
  },
} as const satisfies Record<string, StoredMetric>;

/** One increment of one series: a counter, a histogram bucket, or a histogram sum (fractional amounts allowed). */
export interface Increment {
  metric: StoredMetric;
  /** Values of the metric's labels; `model` is set by the recording (capped), not here. */
  labels: Readonly<Record<string, string>>;
  /** Histograms: the bucket index (bucketIndex) or 'sum'. */
  part?: number | 'sum';
  amount: number;
}

/** Stands for the model label value in a field; the Lua script puts the (capped) model there. Never in a label value. */
const MODEL_SLOT = '\u0000';
const FIELD_SEP = '|';
const clean = (v: string): string => v.replace(/[|\u0000]/g, '_');

/** The hash field of an increment: label values in the metric's order joined by "|", then the histogram part. */
export function fieldOf(inc: Increment): string {
  const values = inc.metric.labels.map((l) => (l === 'model' ? MODEL_SLOT : clean(inc.labels[l] ?? '')));
  return [...values, ...(inc.part === undefined ? [] : [String(inc.part)])].join(FIELD_SEP);
}

/** Label sets by metric and field (less the histogram part), kept across scrapes, frozen: rendered once each. */
const interned = new Map<string, Labels | null>();
/** Label sets are bounded (docs/metrics.md); this only stops a runaway from growing the map without end. */
const MAX_INTERNED = 50_000;

/** The labels a field's label values (`id`) stand for, or null when they do not fit the metric. */
function labelsOf(metric: StoredMetric, id: string): Labels | null {
  const k = `${metric.key}${FIELD_SEP}${id}`;
  let labels = interned.get(k);
  if (labels === undefined) {
    const values = id.split(FIELD_SEP);
    labels = values.length === metric.labels.length ? Object.freeze(Object.fromEntries(metric.labels.map((l, i) => [l, values[i]!]))) : null;
    if (interned.size >= MAX_INTERNED) interned.clear();
    interned.set(k, labels);
  }
  return labels;
}

/**
 * Series of one stored metric from its hash (an object, or HGETALL's flat field/value list): counters one sample per
 * field, histograms summed per label set.
 */
export function familyOf(metric: StoredMetric, hash: Readonly<Record<string, string>> | readonly string[]): Family {
  const flat = Array.isArray(hash) ? (hash as readonly string[]) : Object.entries(hash).flat();
  const family: Family = { name: metric.name, help: metric.help, type: metric.type, samples: [] };
  if (metric.type === 'counter') {
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const labels = labelsOf(metric, flat[i]!);
      if (labels) family.samples.push({ labels, value: Number(flat[i + 1]) });
    }
    return family;
  }
  const bounds = metric.buckets ?? [];
  const series = new Map<string, { labels: Labels; counts: number[]; sum: number }>();
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const field = flat[i]!;
    const cut = field.lastIndexOf(FIELD_SEP);
    if (cut < 0) continue;
    const id = field.slice(0, cut);
    let h = series.get(id);
    if (!h) {
      const labels = labelsOf(metric, id);
      if (!labels) continue;
      series.set(id, (h = { labels, counts: new Array<number>(bounds.length + 1).fill(0), sum: 0 }));
    }
    const part = field.slice(cut + 1);
    if (part === 'sum') h.sum = Number(flat[i + 1]);
    else {
      const b = Number(part);
      if (b >= 0 && b <= bounds.length) h.counts[b] = Number(flat[i + 1]);
    }
  }
  family.histograms = { bounds, series: [...series.values()] };
  return family;
}

const SCRIPTS = new URL('./scripts/', import.meta.url);

/** The recording side of the cluster-wide metrics in Redis (Lua, capped model labels); cluster-metrics.ts reads them. */
export class MetricsStore {
  private readonly recordScript: ScriptCall<[string, string]>;
  private readonly loadedScript: ScriptCall<[string, number]>;

  constructor(
    redis: RedisClient,
    private readonly keys: HydraKeys,
    /** METRICS_MAX_MODELS. */
    private readonly maxModels: number,
  ) {
    this.recordScript = loadScript(redis, SCRIPTS, 'record');
    this.loadedScript = loadScript(redis, SCRIPTS, 'observe-loaded');
  }

  /** Apply increments that share one `model` in one round trip (one Lua call). */
  async record(model: string, incs: readonly Increment[]): Promise<void> {
    if (incs.length === 0) return;
    const { keys, args } = this.recordCall(model, incs);
    const [code] = await this.recordScript(keys, args);
    replyCode('record', code, ['recorded']);
  }

  /** The same recording as a write of a job's end (libs/queue/job-end.ts). */
  recordWrite(model: string, incs: readonly Increment[], failed: (e: Error) => void): SentWrite {
    return {
      kind: 'jobMetrics',
      ...this.recordCall(model, incs),
      then: (reply, err) => {
        if (err) return failed(err);
        try {
          replyCode('record', (reply as unknown[])[0], ['recorded']);
        } catch (e) {
          failed(e as Error);
        }
      },
    };
  }

  /** record.lua's keys and arguments for `incs`. */
  private recordCall(model: string, incs: readonly Increment[]): { keys: string[]; args: (string | number)[] } {
    const hashes = [...new Set(incs.map((i) => i.metric.key))];
    const args: (string | number)[] = [this.maxModels, clean(model)];
    for (const inc of incs) {
      // Sums and seconds counters are always float; the rest are whole counts.
      const float = inc.part === 'sum' || inc.metric.float === true;
      args.push(hashes.indexOf(inc.metric.key) + 2, fieldOf(inc), float ? 'f' : 'i', float ? inc.amount.toFixed(9) : Math.round(inc.amount));
    }
    return { keys: [this.keys.metricModels, ...hashes.map((h) => this.keys.metric(h))], args };
  }

  /**
   * A node's loaded models at a heartbeat: models new since the last one count as loads, missing ones as unloads, in
   * one Lua call shared by every process of the node (so a change counts once). The first sighting only remembers.
   */
  async observeLoaded(nodeId: string, loaded: readonly string[], ttlMs: number): Promise<void> {
    const [code] = await this.loadedScript(
      [this.keys.metricModels, this.keys.metricLoaded(nodeId), this.keys.metric(STORED.loads.key), this.keys.metric(STORED.unloads.key)],
      [this.maxModels, clean(nodeId), Math.ceil(ttlMs), ...new Set(loaded.map(clean))],
    );
    replyCode('observe-loaded', code, ['observed', 'first']);
  }
}

/** record.lua's text, for the job-end call that includes it (libs/queue/job-end.ts `EndScripts`). */
export const metricsRecordLua = (): string => readScript(SCRIPTS, 'record').lua;

const STORED_LIST = Object.values(STORED) as StoredMetric[];

/** The hashes of every stored metric, in the order storedFamilies takes their contents. */
export const storedKeys = (keys: HydraKeys): string[] => STORED_LIST.map((m) => keys.metric(m.key));

/** Every stored metric as a family, from the contents of `storedKeys` (same order; objects or flat lists). */
export const storedFamilies = (hashes: readonly (Readonly<Record<string, string>> | readonly string[])[]): Family[] => STORED_LIST.map((m, i) => familyOf(m, hashes[i] ?? []));
