// `hydra status` as text: the cluster's nodes (one row per loaded model, like `ollama ps`) and queues. Pure.
import { canonicalModel } from '../../libs/scheduling/index.js';

/** The fields of a /v1/nodes entry the table shows (read defensively: the API may be another version). */
export interface StatusNode {
  id: string;
  type?: 'gpu' | 'cpu';
  backend?: string;
  simulated?: boolean;
  healthy?: boolean;
  vram_total_mb?: number;
  vram_available_mb?: number;
  ram_total_mb?: number;
  ram_available_mb?: number;
  models_loaded?: string[];
  active_jobs?: number;
  slots?: number;
  perf?: Record<string, { tokens_per_s?: number } | undefined>;
  breaker?: { state?: string };
}

/** One queue of /v1/cluster/stats (`by_priority` and `oldest_waiting_ms` are absent from older APIs). */
export interface StatusQueue {
  waiting?: number;
  active?: number;
  delayed?: number;
  failed?: number;
  by_priority?: { priority: number; count: number }[];
  oldest_waiting_ms?: number | null;
}

/** One model's totals from /v1/history/stats?by=model (durations ms, submit to end). */
export interface StatusHistoryRow {
  key: string;
  jobs?: number;
  completed?: number;
  failed?: number;
  cancelled?: number;
  completion_tokens?: number;
  p50_total_ms?: number | null;
  p95_total_ms?: number | null;
}

/** The results history over the last `days`: the groups, or null with why (`note`). */
export interface StatusHistory {
  days: number;
  groups: StatusHistoryRow[] | null;
  note?: string;
}

export interface StatusSnapshot {
  nodes: StatusNode[];
  queues: Record<string, StatusQueue>;
  history?: StatusHistory;
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const gib = (mb: number): string => (mb / 1024).toFixed(1);

/** A duration as a person reads it: 850ms, 42s, 3m05s, 2h07m. */
function age(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
}

/** Columns padded to their widest cell, three spaces apart (the last column is not padded). */
function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('   ').trimEnd());
}

function state(n: StatusNode): string {
  const s = n.healthy === false ? 'down' : n.breaker?.state === 'open' ? 'breaker open' : n.breaker?.state === 'half_open' ? 'probing' : 'healthy';
  return n.simulated ? `${s} (sim)` : s;
}

/** Used / total of the memory the scheduler hands out: VRAM on a GPU node, RAM (so labelled) on a CPU node. */
function memory(n: StatusNode): string {
  const gpu = num(n.vram_total_mb) > 0;
  const total = gpu ? num(n.vram_total_mb) : num(n.ram_total_mb);
  const free = gpu ? num(n.vram_available_mb) : num(n.ram_available_mb);
  return `${gpu ? '' : 'RAM '}${gib(Math.max(0, total - free))}/${gib(total)}`;
}

function tokensPerS(n: StatusNode, model: string): string {
  const v = (n.perf?.[model] ?? n.perf?.[canonicalModel(model)])?.tokens_per_s;
  return typeof v === 'number' && Number.isFinite(v) ? v.toFixed(1) : '-';
}

function nodeRows(nodes: readonly StatusNode[]): string[] {
  const rows = [['NODE', 'STATE', 'BACKEND', 'VRAM GiB', 'ACTIVE', 'MODEL', 'TOK/S']];
  for (const n of [...nodes].sort((a, b) => a.id.localeCompare(b.id))) {
    const models = n.models_loaded?.length ? n.models_loaded : ['-'];
    models.forEach((m, i) => {
      const head = i === 0 ? [n.id, state(n), n.backend ?? '?', memory(n), `${num(n.active_jobs)}/${num(n.slots)}`] : ['', '', '', '', ''];
      rows.push([...head, m, m === '-' ? '-' : tokensPerS(n, m)]);
    });
  }
  return table(rows);
}

function queueRows(queues: Record<string, StatusQueue>): string[] {
  const rows = [['QUEUE', 'WAITING', 'BY PRIORITY', 'OLDEST', 'ACTIVE', 'DELAYED', 'FAILED']];
  const sorted = Object.entries(queues).sort(([an, a], [bn, b]) => num(b.waiting) - num(a.waiting) || num(b.active) - num(a.active) || an.localeCompare(bn));
  for (const [name, q] of sorted) {
    const bands = q.by_priority?.length ? q.by_priority.map((p) => `p${p.priority}:${p.count}`).join(' ') : '-';
    const oldest = typeof q.oldest_waiting_ms === 'number' ? age(q.oldest_waiting_ms) : '-';
    rows.push([name, String(num(q.waiting)), bands, oldest, String(num(q.active)), String(num(q.delayed)), String(num(q.failed))]);
  }
  return table(rows);
}

function historyRows(h: StatusHistory): string[] {
  const title = `HISTORY, LAST ${h.days} DAY${h.days === 1 ? '' : 'S'}`;
  if (h.groups === null) return [`${title}: ${h.note ?? 'not available'}`];
  if (h.groups.length === 0) return [`${title}: no finished jobs`];
  const ms = (v: number | null | undefined) => (typeof v === 'number' && Number.isFinite(v) ? age(v) : '-');
  const rows = [['MODEL', 'JOBS', 'COMPLETED', 'FAILED', 'CANCELLED', 'TOKENS OUT', 'P50', 'P95']];
  const sorted = [...h.groups].sort((a, b) => num(b.jobs) - num(a.jobs) || a.key.localeCompare(b.key));
  for (const g of sorted) rows.push([g.key, String(num(g.jobs)), String(num(g.completed)), String(num(g.failed)), String(num(g.cancelled)), String(num(g.completion_tokens)), ms(g.p50_total_ms), ms(g.p95_total_ms)]);
  return [`${title} (results history)`, ...table(rows)];
}

/** The whole screen: a summary line, the nodes, the queues, and (when asked) the history's totals per model. */
export function renderStatus(s: StatusSnapshot, url: string, now: number): string {
  const healthy = s.nodes.filter((n) => n.healthy !== false).length;
  const simulated = s.nodes.filter((n) => n.simulated).length;
  const q = Object.values(s.queues);
  const waiting = q.reduce((a, x) => a + num(x.waiting), 0);
  const active = q.reduce((a, x) => a + num(x.active), 0);
  const clock = new Date(now).toTimeString().slice(0, 8);
  const summary = `hydra ${url}   ${s.nodes.length} nodes (${healthy} healthy${simulated ? `, ${simulated} simulated` : ''})   ${waiting} waiting, ${active} active   ${clock}`;
  const nodes = s.nodes.length ? nodeRows(s.nodes) : ['no nodes registered: start a worker (hydra worker) or hydra up --sim N'];
  const queues = q.length ? queueRows(s.queues) : ['no queues yet (a queue appears with its first job)'];
  return [summary, '', ...nodes, '', ...queues, ...(s.history ? ['', ...historyRows(s.history)] : [])].join('\n');
}
