// Cluster-wide metrics, read from Redis at scrape time, so every API replica answers the same: queue depths by
// priority band and the oldest wait, BullMQ's own counters, the nodes as the registry lists them, the L1 cache
// counters, and the job metrics workers recorded (stored.ts). One Lua call per scrape (two when the queues changed).
import { fromBullPriority, type QueueInfo } from '../scheduling/index.js';
import { asHash, asPairs, loadScript, queueStructures, type HydraKeys, type RedisClient, type ScriptCall } from '../queue/index.js';
import { readReservations, recentModelsKey, type NodeView } from '../registry/index.js';
import type { Family, Sample } from './exposition.js';
import { storedFamilies, storedKeys } from './stored.js';

/** BullMQ priorities Hydra uses (1 = most urgent = Hydra priority 10). */
const BULL_PRIORITIES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] as const;
/** Jobs read per non-empty band for the oldest wait: jobs aging promoted sit first in a band, in id order, so a few. */
const HEADS_PER_BAND = 3;
const MB = 1024 * 1024;
const SCRIPTS = new URL('./scripts/', import.meta.url);

interface ClusterSources {
  redis: RedisClient;
  keys: HydraKeys;
  /** Live nodes as the registry lists them (what /v1/nodes shows): the API's cached list, at most a moment old. */
  nodes: () => Promise<NodeView[]>;
  /** MODEL_GRACE_MS: nodes seen this recently but not live now are reported as down (up 0). */
  graceMs: number;
}

const gauge = (name: string, help: string, samples: Sample[]): Family => ({ name, help, type: 'gauge', samples });
const counter = (name: string, help: string, samples: Sample[]): Family => ({ name, help, type: 'counter', samples });

interface QueueNumbers {
  info: QueueInfo;
  waiting: number;
  active: number;
  delayed: number;
  waitingChildren: number;
  completed: number;
  failed: number;
  /** Waiting jobs per BullMQ priority 1..10. */
  bands: number[];
  oldestAgeS: number;
}

/** The keys and arguments of the queue part of cluster-read.lua. */
function queueArgs(keys: HydraKeys, queues: readonly QueueInfo[]): { keys: string[]; prefixes: string[] } {
  const out = { keys: [] as string[], prefixes: [] as string[] };
  for (const q of queues) {
    const st = queueStructures(keys, q.name);
    const k = (part: string) => keys.queueKey(q.name, part);
    out.keys.push(st.wait, st.prioritized, k('active'), st.delayed, k('waiting-children'), k('metrics:completed'), k('metrics:failed'));
    out.prefixes.push(st.jobPrefix);
  }
  return out;
}

/** One queue's row of cluster-read.lua. */
function queueNumbers(info: QueueInfo, r: readonly number[], now: number): QueueNumbers {
  const n = (j: number) => Number(r[j] ?? 0);
  const bands = BULL_PRIORITIES.map((_, b) => n(6 + b));
  const earliest = n(6 + BULL_PRIORITIES.length);
  return {
    info,
    waiting: n(0) + bands.reduce((a, b) => a + b, 0),
    active: n(1),
    delayed: n(2),
    waitingChildren: n(3),
    completed: n(4),
    failed: n(5),
    bands,
    oldestAgeS: earliest > 0 ? Math.max(0, (now - earliest) / 1000) : 0,
  };
}

function queueFamilies(qs: QueueNumbers[]): Family[] {
  const jobs: Sample[] = [];
  const waiting: Sample[] = [];
  const oldest: Sample[] = [];
  const completed: Sample[] = [];
  const failed: Sample[] = [];
  for (const q of qs) {
    const queue = q.info.name;
    const base = { queue, kind: q.info.kind };
    jobs.push(
      { labels: { ...base, state: 'waiting' }, value: q.waiting },
      { labels: { ...base, state: 'active' }, value: q.active },
      { labels: { ...base, state: 'delayed' }, value: q.delayed },
    );
    if (q.info.kind === 'workflow') jobs.push({ labels: { ...base, state: 'waiting-children' }, value: q.waitingChildren });
    else BULL_PRIORITIES.forEach((p, i) => waiting.push({ labels: { queue, priority: String(fromBullPriority(p)) }, value: q.bands[i] ?? 0 }));
    oldest.push({ labels: { queue }, value: q.oldestAgeS });
    completed.push({ labels: { queue }, value: q.completed });
    failed.push({ labels: { queue }, value: q.failed });
  }
  return [
    gauge('hydra_queue_jobs', 'Jobs in each queue by state (waiting includes prioritized; delayed = waiting out a retry backoff).', jobs),
    gauge('hydra_queue_waiting_jobs', 'Waiting jobs by priority band (Hydra priority 1-10, 10 highest; aging moves jobs up).', waiting),
    gauge('hydra_queue_oldest_waiting_seconds', 'Age of the oldest waiting job of each queue (0 when none waits).', oldest),
    counter('bullmq_job_completed_total', 'Jobs BullMQ recorded as completed, per queue (BullMQ metrics; counted since workers pass the metrics option).', completed),
    counter('bullmq_job_failed_total', 'Jobs BullMQ recorded as failed, per queue (final failures; a retried attempt is not one).', failed),
  ];
}


function nodeFamilies(nodes: readonly NodeView[], gone: readonly string[], inflight: Map<string, Map<string, number>>, now: number): Family[] {
  const per = (f: (n: NodeView) => number): Sample[] => nodes.map((n) => ({ labels: { node: n.id }, value: f(n) }));
  const breaker: Sample[] = [];
  const loaded: Sample[] = [];
  const inflightSamples: Sample[] = [];
  for (const n of nodes) {
    const state = n.breaker?.state ?? 'closed';
    for (const st of ['closed', 'open', 'half_open']) breaker.push({ labels: { node: n.id, state: st }, value: st === state ? 1 : 0 });
    for (const m of n.models_loaded) loaded.push({ labels: { node: n.id, model: m.name }, value: m.size_bytes ?? m.size_mb * MB });
    // Every loaded model has a series (0 when idle), plus any model in flight that the record does not list yet.
    const models = new Map<string, number>(n.models_loaded.map((m) => [m.name, 0]));
    for (const [m, k] of inflight.get(n.id) ?? []) models.set(m, k);
    for (const [m, k] of models) inflightSamples.push({ labels: { node: n.id, model: m }, value: k });
  }
  return [
    gauge('hydra_node_up', 'Whether the node is registered (1), or was seen within MODEL_GRACE_MS and is gone (0).', [
      ...per(() => 1),
      ...gone.map((id) => ({ labels: { node: id }, value: 0 })),
    ]),
    gauge(
      'hydra_node_info',
      'Node facts as labels (always 1).',
      nodes.map((n) => ({ labels: { node: n.id, backend: n.backend, type: n.type, simulated: String(n.simulated), version: n.version ?? '' }, value: 1 })),
    ),
    gauge('hydra_node_healthy', "Whether the node's backend answered its last probe.", per((n) => (n.healthy ? 1 : 0))),
    gauge('hydra_node_breaker_state', 'Circuit breaker of the node (1 for its current state): open = not pulling after repeated backend failures.', breaker),
    gauge('hydra_node_breaker_recent_failures', 'Backend failures within the breaker window.', per((n) => n.breaker?.recent_failures ?? 0)),
    gauge('hydra_node_vram_total_bytes', 'GPU memory of the node (0 for CPU nodes).', per((n) => n.vram_total_mb * MB)),
    gauge('hydra_node_vram_free_bytes', 'GPU memory free as the node last reported it.', per((n) => n.vram_available_mb * MB)),
    gauge('hydra_node_vram_reserved_bytes', "Memory reserved by running jobs (Hydra's admission, all processes of the node).", per((n) => n.reserved_mb * MB)),
    gauge('hydra_node_capacity_bytes', 'Memory the scheduler may hand to models (total minus buffer minus memory used outside the backend).', per((n) => n.capacity_mb * MB)),
    gauge('hydra_node_ram_total_bytes', 'RAM of the node.', per((n) => n.ram_total_mb * MB)),
    gauge('hydra_node_ram_free_bytes', 'RAM free as the node last reported it.', per((n) => n.ram_available_mb * MB)),
    gauge('hydra_node_models_available', 'Models the node has on disk.', per((n) => n.models_available.length)),
    gauge('hydra_node_models_loaded', "Models loaded in the node's memory.", per((n) => n.models_loaded.length)),
    gauge('hydra_node_model_loaded_bytes', 'Memory each loaded model occupies.', loaded),
    gauge('hydra_node_active_jobs', 'Inference jobs holding a reservation on the node.', per((n) => n.active_jobs)),
    gauge('hydra_node_slots', "Process slots: jobs the node's worker processes run at once (sum over its processes).", per((n) => n.slots)),
    gauge('hydra_node_processes', 'Live worker processes serving the node id.', per((n) => n.processes)),
    gauge('hydra_node_parallel_slots', "Requests the backend runs at once per model (NUM_PARALLEL or the server's slots): the per-model limit.", per((n) => n.parallel ?? 1)),
    gauge('hydra_node_model_inflight_requests', 'Requests of each model running on the node (compare with hydra_node_parallel_slots).', inflightSamples),
    gauge('hydra_node_heartbeat_age_seconds', "Time since the node's last heartbeat.", per((n) => Math.max(0, (now - n.last_heartbeat) / 1000))),
  ];
}

function cacheFamilies(h: Record<string, string>): Family[] {
  const n = (k: string) => Number(h[k] ?? 0);
  return [
    counter('hydra_cache_lookups_total', 'L1 cache lookups of deterministic requests (hits were answered without a job; errors count as misses).', [
      { labels: { result: 'hit' }, value: n('hits') },
      { labels: { result: 'miss' }, value: n('misses') },
    ]),
    counter('hydra_cache_stores_total', 'Answers stored in the L1 cache.', [{ labels: {}, value: n('stores') }]),
    counter('hydra_cache_too_large_total', 'Answers not stored: larger than CACHE_MAX_ENTRY_BYTES.', [{ labels: {}, value: n('too_large') }]),
    counter('hydra_cache_errors_total', 'L1 cache lookups or stores that failed because the cache Redis did not answer.', [{ labels: {}, value: n('errors') }]),
  ];
}

export interface ClusterSnapshot {
  families: Family[];
  /** Model names the registry's nodes have (for bounded HTTP labels). */
  models: string[];
}

/** The cluster-wide collector of one process: its Lua defined once on the connection. */
export class ClusterMetrics {
  private readonly read: ScriptCall<(string | number[])[]>;
  /** The queues the last scrape found in the registry: this scrape reads their numbers in the same call. */
  private queues: QueueInfo[] = [];

  constructor(private readonly s: ClusterSources) {
    this.read = loadScript(s.redis, SCRIPTS, 'cluster-read');
  }

  /**
   * Every cluster-wide family, read now: the cached node list, then one Lua call for everything in Redis, whatever the
   * number of queues and nodes (a second when the queue registry changed since the last scrape: the first call used
   * the last scrape's queues). A scrape runs in the API process, where each command and each reply element costs more
   * CPU than the numbers it carries, so the reads are batched this far. Throws when Redis does not answer.
   */
  async collect(): Promise<ClusterSnapshot> {
    const { s } = this;
    const started = performance.now();
    const nodes = await s.nodes();
    const now = Date.now();
    // Every hash: the queue registry, the recently seen nodes, the cache counters, each node's reservations and the
    // stored metrics; then the queues' numbers.
    const hashKeys = [s.keys.queues, recentModelsKey(s.keys), s.keys.cacheStats, ...nodes.map((n) => s.keys.reservations(n.id)), ...storedKeys(s.keys)];
    const readAll = async (queues: readonly QueueInfo[]) => {
      const q = queueArgs(s.keys, queues);
      const reply = await this.read([...hashKeys, ...q.keys], [hashKeys.length, BULL_PRIORITIES.length, HEADS_PER_BAND, ...q.prefixes]);
      return { pairs: hashKeys.map((k, i) => asPairs(String(reply[i] ?? ''), k)), rows: reply.slice(hashKeys.length) as number[][] };
    };
    let queues = this.queues;
    let { pairs, rows } = await readAll(queues);
    // As Producer.listQueues reads them: JSON QueueInfo per queue name (sorted: a stable order across scrapes).
    const listed = Object.values(asHash(pairs[0]!))
      .map((v) => JSON.parse(v) as QueueInfo)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    if (listed.length !== queues.length || listed.some((q, i) => q.name !== queues[i]!.name)) ({ pairs, rows } = await readAll(listed));
    this.queues = queues = listed;
    const perQueue = queues.map((info, i) => queueNumbers(info, rows[i] ?? [], now));
    const hashes = pairs.slice(0, 3 + nodes.length).map(asHash);
    // Read live, not from the cached node list: a scrape shows the requests in flight now.
    const inflight = new Map(nodes.map((n, i) => [n.id, new Map(Object.entries(readReservations(hashes[3 + i]!, now).inflight))]));
    const live = new Set(nodes.map((n) => n.id));
    const families = [
      ...queueFamilies(perQueue),
      ...nodeFamilies(nodes, recentlyGone(hashes[1]!, live, now, s.graceMs), inflight, now),
      ...cacheFamilies(hashes[2]!),
      ...storedFamilies(pairs.slice(3 + nodes.length)),
    ];
    families.push(gauge('hydra_metrics_collect_seconds', 'Time the read of the cluster-wide metrics in this answer took (scrapes within 0.5 s of one another on a replica share one read).', [{ labels: {}, value: (performance.now() - started) / 1000 }]));
    const models = [...new Set(nodes.flatMap((n) => n.models_available.map((m) => m.name)))];
    return { families, models };
  }
}

/**
 * Nodes not live now that heartbeated within `graceMs` (the registry's recent-models hash: node id → JSON with `at`,
 * the heartbeat time; libs/registry/recent-models.ts writes it and prunes it when routing reads it).
 */
function recentlyGone(recent: Readonly<Record<string, string>>, live: ReadonlySet<string>, now: number, graceMs: number): string[] {
  const out: string[] = [];
  for (const [id, raw] of Object.entries(recent)) {
    if (live.has(id)) continue;
    let at = Number.NaN;
    try {
      at = Number((JSON.parse(raw) as { at?: unknown }).at);
    } catch {
      /* not a record: skip it */
    }
    if (now - at <= graceMs) out.push(id);
  }
  return out.sort();
}
