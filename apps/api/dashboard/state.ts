// The dashboard's one JSON document (GET /dashboard/state): every node worst first, queue depth per priority, the last
// routing decisions and latency per model. `buildState` is pure; `stateReader` gathers its inputs in a few pipelined
// reads and shares one result for a second, so any number of open pages costs the same.
import type { ActivityEntry, ActivityLog, LatencySummary } from '../../../libs/activity/index.js';
import type { HydraKeys, Producer, RedisClient } from '../../../libs/queue/index.js';
import type { NodeView } from '../../../libs/registry/index.js';
import { canonicalModel, fromBullPriority, type QueueInfo } from '../../../libs/scheduling/index.js';

/** Node states, worst first: the order of the grid. */
const NODE_STATUSES = ['down', 'breaker_open', 'probing', 'full', 'busy', 'idle'] as const;
export type NodeStatus = (typeof NODE_STATUSES)[number];

/** Tokens/s and time to first token of one model on one node, when the registry has measured them (NodeRecord `perf`). */
export interface ModelPerf {
  tokens_per_s: number;
  ttft_ms: number;
  load_ms?: number;
  samples: number;
}

export interface DashboardModel {
  name: string;
  /** Loaded in the backend now; false for a model a running job is still loading. */
  loaded: boolean;
  vram_mb: number;
  size_mb: number;
  /** Jobs of this model running on the node, and the backend's per-model limit (NodeRecord `parallel`). */
  in_use: number;
  slots: number;
  perf?: ModelPerf;
}

export interface DashboardNode {
  id: string;
  status: NodeStatus;
  healthy: boolean;
  error?: string;
  simulated: boolean;
  backend: string;
  type: 'gpu' | 'cpu';
  host: string;
  url: string;
  version?: string;
  /** The memory the scheduler hands out: VRAM on a GPU node, RAM on a CPU node. MB. */
  memory: { kind: 'vram' | 'ram'; total_mb: number; free_mb: number; capacity_mb: number; reserved_mb: number };
  /** Running jobs and process slots (all worker processes of the node id). */
  active_jobs: number;
  slots: number;
  processes: number;
  breaker: { state: 'closed' | 'open' | 'half_open'; recent_failures: number; open_until: number | null };
  models_loaded: DashboardModel[];
  models_available: number;
  heartbeat_age_ms: number;
}

export interface DashboardQueue {
  name: string;
  kind: QueueInfo['kind'];
  model?: string;
  node?: string;
  waiting: number;
  /** Waiting jobs per Hydra priority (10 most urgent first), only bands that hold jobs; aging moves jobs up. */
  by_priority: { priority: number; count: number }[];
  active: number;
  delayed: number;
  failed: number;
  completed: number;
  /** Workflow parents waiting for their steps. */
  waiting_children: number;
  board_url: string;
}

export interface DashboardDecision extends ActivityEntry {
  board_url: string;
}

export interface DashboardState {
  generated_at: string;
  /** How often the page asks again, ms. */
  refresh_ms: number;
  board_path: string;
  cluster: {
    nodes: number;
    healthy: number;
    simulated: number;
    gpu: number;
    cpu: number;
    active_jobs: number;
    slots: number;
    vram_total_mb: number;
    reserved_mb: number;
    waiting: number;
    delayed: number;
    failed: number;
  };
  nodes: DashboardNode[];
  queues: DashboardQueue[];
  decisions: DashboardDecision[];
  latency: LatencySummary;
  history: DashboardHistory;
}

/** One model's totals in the results history (libs/memory StatsRow; durations ms, submit to end). */
export interface DashboardHistoryModel {
  key: string;
  jobs: number;
  completed: number;
  failed: number;
  cancelled: number;
  completion_tokens: number;
  p50_total_ms: number | null;
  p95_total_ms: number | null;
}

/** The results history per model over the last `days` (read at most every HISTORY_TTL_MS); `note` when there is none. */
export interface DashboardHistory {
  days: number;
  store: 'sqlite' | 'postgres' | null;
  models: DashboardHistoryModel[];
  note?: string;
}

/** Counts of one queue as BullMQ reports them; `bands` maps BullMQ priority (1 most urgent; 0 = none) to waiting jobs. */
export interface QueueCounts {
  info: QueueInfo;
  bands: Record<number, number>;
  active: number;
  delayed: number;
  failed: number;
  completed: number;
  waiting_children: number;
}

export interface StateInputs {
  nodes: NodeView[];
  /** Node id → model → running jobs (the registry's `inflight_by_model`). */
  inUse: Map<string, Map<string, number>>;
  queues: QueueCounts[];
  decisions: ActivityEntry[];
  latency: LatencySummary;
  /** Absent: the history is off. */
  history?: DashboardHistory;
}

const REFRESH_MS = 1500;
/** The history panel: days shown, and how often the store is asked (a query over days, not a Redis read). */
export const HISTORY_DAYS = 7;
const HISTORY_TTL_MS = 30_000;
const HISTORY_OFF: DashboardHistory = { days: HISTORY_DAYS, store: null, models: [], note: 'the results history is off (MEMORY_URL=off)' };
/** Routing decisions shown, and the latency window. */
const DECISIONS_SHOWN = 25;
const LATENCY_WINDOW_MS = 5 * 60_000;

export function nodeStatus(n: Pick<NodeView, 'healthy' | 'breaker' | 'active_jobs' | 'slots'>): NodeStatus {
  if (!n.healthy) return 'down';
  if (n.breaker?.state === 'open') return 'breaker_open';
  if (n.breaker?.state === 'half_open') return 'probing';
  if (n.slots > 0 && n.active_jobs >= n.slots) return 'full';
  return n.active_jobs > 0 ? 'busy' : 'idle';
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** A model's measured speed on a node (keyed by canonical name); absent until a job of it was measured. */
function perfOf(n: NodeView, model: string): ModelPerf | undefined {
  const p = n.perf?.[model] ?? n.perf?.[canonicalModel(model)];
  // Read defensively: the figures come from Redis, written by workers of any version.
  if (!p || !finite(p.tokens_per_s) || !finite(p.ttft_ms)) return undefined;
  return { tokens_per_s: p.tokens_per_s, ttft_ms: p.ttft_ms, ...(finite(p.load_ms) ? { load_ms: p.load_ms } : {}), samples: finite(p.samples) ? p.samples : 0 };
}

function viewNode(n: NodeView, inUse: Map<string, number>, now: number): DashboardNode {
  const slots = Math.max(1, n.parallel ?? 1);
  const model = (name: string, loaded: boolean, vram_mb: number, size_mb: number): DashboardModel => {
    const perf = perfOf(n, name);
    return { name, loaded, vram_mb, size_mb, in_use: inUse.get(name) ?? 0, slots, ...(perf ? { perf } : {}) };
  };
  const loaded = n.models_loaded.map((m) => model(m.name, true, m.vram_mb, m.size_mb));
  // A running job whose model the backend has not reported loaded yet (it is loading).
  const loading = [...inUse.keys()].filter((name) => !n.models_loaded.some((m) => m.name === name)).map((name) => model(name, false, 0, 0));
  const gpu = n.vram_total_mb > 0;
  return {
    id: n.id,
    status: nodeStatus(n),
    healthy: n.healthy,
    ...(n.error ? { error: n.error } : {}),
    simulated: n.simulated,
    backend: n.backend,
    type: n.type,
    host: n.host,
    url: n.url,
    ...(n.version ? { version: n.version } : {}),
    memory: {
      kind: gpu ? 'vram' : 'ram',
      total_mb: gpu ? n.vram_total_mb : n.ram_total_mb,
      free_mb: gpu ? n.vram_available_mb : n.ram_available_mb,
      capacity_mb: n.capacity_mb,
      reserved_mb: n.reserved_mb,
    },
    active_jobs: n.active_jobs,
    slots: n.slots,
    processes: n.processes,
    breaker: n.breaker ?? { state: 'closed', recent_failures: 0, open_until: null },
    models_loaded: [...loaded, ...loading].sort((a, b) => b.in_use - a.in_use || a.name.localeCompare(b.name)),
    models_available: n.models_available.length,
    heartbeat_age_ms: Math.max(0, now - n.last_heartbeat),
  };
}

/** Bull Board's page of a queue, and of one job in it (its client routes: `queue/:name`, `queue/:name/:jobId`). */
const boardQueueUrl = (boardPath: string, queue: string): string => `${boardPath}/queue/${encodeURIComponent(queue)}`;
const boardJobUrl = (boardPath: string, queue: string, jobId: string): string => `${boardQueueUrl(boardPath, queue)}/${encodeURIComponent(jobId)}`;

export function viewQueue(q: QueueCounts, boardPath: string): DashboardQueue {
  const by_priority = Object.entries(q.bands)
    .filter(([bp, count]) => count > 0 && Number(bp) > 0)
    .map(([bp, count]) => ({ priority: fromBullPriority(Number(bp)), count }))
    .sort((a, b) => b.priority - a.priority);
  const waiting = Object.values(q.bands).reduce((a, b) => a + b, 0);
  const info = q.info;
  return {
    name: info.name,
    kind: info.kind,
    ...(info.kind === 'class' ? { model: info.model } : {}),
    ...(info.kind === 'node' ? { node: info.node } : {}),
    waiting,
    by_priority,
    active: q.active,
    delayed: q.delayed,
    failed: q.failed,
    completed: q.completed,
    waiting_children: q.waiting_children,
    board_url: boardQueueUrl(boardPath, info.name),
  };
}

const load = (q: DashboardQueue): number => q.waiting + q.active + q.delayed + q.waiting_children;

export function buildState(i: StateInputs, now: number, boardPath: string): DashboardState {
  const rank = (s: NodeStatus): number => NODE_STATUSES.indexOf(s);
  const nodes = i.nodes.map((n) => viewNode(n, i.inUse.get(n.id) ?? new Map(), now)).sort((a, b) => rank(a.status) - rank(b.status) || a.id.localeCompare(b.id));
  const queues = i.queues.map((q) => viewQueue(q, boardPath)).sort((a, b) => load(b) - load(a) || b.failed - a.failed || a.name.localeCompare(b.name));
  const sum = <T>(xs: T[], f: (x: T) => number): number => xs.reduce((a, x) => a + f(x), 0);
  return {
    generated_at: new Date(now).toISOString(),
    refresh_ms: REFRESH_MS,
    board_path: boardPath,
    cluster: {
      nodes: nodes.length,
      healthy: nodes.filter((n) => n.healthy).length,
      simulated: nodes.filter((n) => n.simulated).length,
      gpu: nodes.filter((n) => n.type === 'gpu').length,
      cpu: nodes.filter((n) => n.type === 'cpu').length,
      active_jobs: sum(nodes, (n) => n.active_jobs),
      slots: sum(nodes, (n) => n.slots),
      vram_total_mb: sum(nodes, (n) => (n.memory.kind === 'vram' ? n.memory.total_mb : 0)),
      reserved_mb: sum(nodes, (n) => n.memory.reserved_mb),
      waiting: sum(queues, (q) => q.waiting),
      delayed: sum(queues, (q) => q.delayed),
      failed: sum(queues, (q) => q.failed),
    },
    nodes,
    queues,
    decisions: i.decisions.map((d) => ({ ...d, board_url: boardJobUrl(boardPath, d.queue, d.job_id) })),
    latency: i.latency,
    history: i.history ?? HISTORY_OFF,
  };
}

/** BullMQ priorities 0 (no priority: the `wait` list) to 10. */
const BANDS = Array.from({ length: 11 }, (_, i) => i);

export async function queueCounts(producer: Producer, info: QueueInfo): Promise<QueueCounts> {
  const q = producer.queue(info.name);
  const [c, bands] = await Promise.all([q.getJobCounts('active', 'delayed', 'failed', 'completed', 'waiting-children'), q.getCountsPerPriority(BANDS)]);
  return {
    info,
    bands: Object.fromEntries(Object.entries(bands).map(([k, v]) => [Number(k), v])),
    active: c.active ?? 0,
    delayed: c.delayed ?? 0,
    failed: c.failed ?? 0,
    completed: c.completed ?? 0,
    waiting_children: c['waiting-children'] ?? 0,
  };
}

export interface StateSources {
  redis: RedisClient;
  keys: HydraKeys;
  producer: Producer;
  nodes: () => Promise<NodeView[]>;
  activity: ActivityLog;
  boardPath: string;
  /** The results history's per-model totals since `since` (ms); null when the history is off (MEMORY_URL=off). */
  history: ((since: number) => Promise<{ store: 'sqlite' | 'postgres'; models: DashboardHistoryModel[] }>) | null;
}

/** The history panel's content, from the store at most every `ttlMs`; a failure is shown as the panel's note. */
function historyReader(s: StateSources, ttlMs: number): (now: number) => Promise<DashboardHistory> {
  let cached: { at: number; value: Promise<DashboardHistory> } | null = null;
  return (now) => {
    if (!s.history) return Promise.resolve(HISTORY_OFF);
    if (!cached || now - cached.at > ttlMs) {
      const value = s.history(now - HISTORY_DAYS * 86_400_000).then(
        (h): DashboardHistory => ({ days: HISTORY_DAYS, ...h }),
        (e: Error): DashboardHistory => ((cached = null), { days: HISTORY_DAYS, store: null, models: [], note: `the results history could not be read: ${e.message}` }),
      );
      cached = { at: now, value };
    }
    return cached.value;
  };
}

/** The state, read at most once per `ttlMs` however many pages ask; a failed read is not kept. */
export function stateReader(s: StateSources, ttlMs = 1000): () => Promise<DashboardState> {
  let cached: { at: number; state: Promise<DashboardState> } | null = null;
  const history = historyReader(s, HISTORY_TTL_MS);
  const read = async (): Promise<DashboardState> => {
    const now = Date.now();
    const [nodes, queues] = await Promise.all([s.nodes(), s.producer.listQueues()]);
    const inUse = new Map(nodes.map((n) => [n.id, new Map(Object.entries(n.inflight_by_model))]));
    const [counts, decisions, latency, hist] = await Promise.all([
      Promise.all(queues.map((q) => queueCounts(s.producer, q))),
      s.activity.recentDecisions(DECISIONS_SHOWN),
      s.activity.latencyByModel(LATENCY_WINDOW_MS, now),
      history(now),
    ]);
    return buildState({ nodes, inUse, queues: counts, decisions, latency, history: hist }, now, s.boardPath);
  };
  return () => {
    const now = Date.now();
    if (!cached || now - cached.at > ttlMs) {
      const state = read();
      cached = { at: now, state };
      state.catch(() => (cached = null));
    }
    return cached.state;
  };
}
