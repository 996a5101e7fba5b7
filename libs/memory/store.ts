// The results history store: what both dialects (SQLite, PostgreSQL) offer, the query shapes and the paging cursor.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { OUTCOMES, RECORD_KINDS, type HistoryRecord } from './record.js';

/** Rows per page at most (GET /v1/history `limit`). */
export const MAX_PAGE = 500;

/** Filters of GET /v1/history; `since`/`until` are ms since epoch (finished_at), `q` words that prompt or answer hold. */
export const HistoryQuerySchema = z
  .object({
    kind: z.enum(RECORD_KINDS).optional(),
    model: z.string().min(1).max(300).optional(),
    node: z.string().min(1).max(300).optional(),
    outcome: z.enum(OUTCOMES).optional(),
    request_id: z.string().min(1).max(128).optional(),
    api_key_id: z.string().min(1).max(64).optional(),
    workflow_id: z.string().min(1).max(200).optional(),
    since: z.number().int().min(0).optional(),
    until: z.number().int().min(0).optional(),
    q: z.string().min(1).max(500).optional(),
    limit: z.number().int().min(1).max(MAX_PAGE).default(50),
    cursor: z.string().optional(),
  })
  .strict();
export type HistoryQuery = z.infer<typeof HistoryQuerySchema>;

/** A stored row: the record plus when the store took it. */
export type HistoryRow = HistoryRecord & { stored_at: number };

export interface HistoryPage {
  items: HistoryRow[];
  /** Pass as `cursor` for the next (older) page; null on the last page. */
  next_cursor: string | null;
}

export const STATS_BY = ['model', 'node', 'day'] as const;
export type StatsBy = (typeof STATS_BY)[number];

export interface StatsQuery {
  by: StatsBy;
  since?: number | undefined;
  until?: number | undefined;
}

/** One group of GET /v1/history/stats (jobs only; workflows are counted by their steps). Durations ms, total = submit to end. */
export interface StatsRow {
  /** The model, the node, or the UTC day (YYYY-MM-DD). */
  key: string;
  jobs: number;
  completed: number;
  failed: number;
  cancelled: number;
  prompt_tokens: number;
  completion_tokens: number;
  avg_total_ms: number | null;
  p50_total_ms: number | null;
  p95_total_ms: number | null;
  first_at: number;
  last_at: number;
}

export interface HistoryStore {
  readonly dialect: 'sqlite' | 'postgres';
  /** Create or upgrade the schema (numbered migrations, recorded in schema_migrations). */
  migrate(): Promise<void>;
  /** Insert in one transaction; a record already stored (same kind, id, attempt) is skipped. The number newly stored. */
  insert(records: readonly HistoryRecord[]): Promise<number>;
  query(q: HistoryQuery): Promise<HistoryPage>;
  stats(q: StatsQuery): Promise<StatsRow[]>;
  /**
   * Delete rows that finished before `before` (ms), and the vectors made of them, in one transaction (`hydra memory
   * prune`, MEMORY_RETENTION_DAYS). Counts of what went.
   */
  prune(before: number): Promise<{ rows: number; vectors: number }>;
  /**
   * Completed rows of `model` and `type` with exactly this prompt, finished at `since` or later, newest first (at most
   * 5): the L2 answer of an exact repeat whose L1 entry aged out of Redis (apps/api/l2-cache.ts). By the indexed
   * prompt hash: one index probe, however many rows the model has.
   */
  findAnswers(q: { model: string; type: string; prompt: string; since: number }): Promise<HistoryRow[]>;
  /** One row by its uid (kind:id:attempt), or null (the semantic cache reads the row a vector came from). */
  get(uid: string): Promise<HistoryRow | null>;
  /** Rows stored (for tests and `hydra status`). */
  count(): Promise<number>;
  close(): Promise<void>;
}

/** A row's identity: a redelivered record maps to the same uid, so it is not stored twice. */
export const uidOf = (r: Pick<HistoryRecord, 'kind' | 'id' | 'attempt'>): string => `${r.kind}:${r.id}:${r.attempt}`;

/** Keyset paging, newest first: the cursor is the last row's (finished_at, uid). Opaque to callers. */
export function encodeCursor(row: { finished_at: number; uid: string }): string {
  return Buffer.from(JSON.stringify([row.finished_at, row.uid])).toString('base64url');
}

export function decodeCursor(cursor: string): { finished_at: number; uid: string } | null {
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'number' && typeof v[1] === 'string') return { finished_at: v[0], uid: v[1] };
  } catch {
    /* not a cursor */
  }
  return null;
}

/** Words of a text search, for FTS5 / tsquery: letters and digits only, so no query syntax reaches either engine. */
export function searchWords(q: string): string[] {
  return [...new Set(q.toLowerCase().match(/[\p{L}\p{N}_]+/gu) ?? [])].slice(0, 16);
}

/** The columns both dialects store, in one order (insert statements and row mapping use it). */
export const COLUMNS = [
  'uid',
  'kind',
  'id',
  'attempt',
  'request_id',
  'api_key_id',
  'model',
  'type',
  'node',
  'queue',
  'priority',
  'outcome',
  'error_code',
  'error_message',
  'prompt',
  'answer',
  'request',
  'routing',
  'prompt_tokens',
  'completion_tokens',
  'submitted_at',
  'started_at',
  'finished_at',
  'queued_ms',
  'total_ms',
  'load_ms',
  'prompt_eval_ms',
  'eval_ms',
  'workflow_id',
  'workflow_step',
  'stored_at',
  'prompt_hash',
] as const;

/** The hash an exact repeat is looked up by (findAnswers): model, type and prompt text. */
export const promptHashOf = (model: string | null, type: string, prompt: string): string => createHash('sha256').update(`${model ?? ''}\n${type}\n${prompt}`).digest('hex').slice(0, 32);

/** A record as column values (JSON fields as text), in COLUMNS order. */
export function rowValues(r: HistoryRecord, storedAt: number): unknown[] {
  const v: Record<(typeof COLUMNS)[number], unknown> = {
    ...r,
    uid: uidOf(r),
    request: JSON.stringify(r.request),
    routing: r.routing === null ? null : JSON.stringify(r.routing),
    stored_at: storedAt,
    prompt_hash: promptHashOf(r.model, r.type, r.prompt),
  };
  return COLUMNS.map((c) => v[c] ?? null);
}

/** A stored row back to the API's shape (numbers from BIGINT/REAL columns, JSON parsed). */
export function rowToRecord(row: Record<string, unknown>): HistoryRow {
  const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
  const json = (v: unknown): Record<string, unknown> | null => {
    if (v === null || v === undefined) return null;
    if (typeof v === 'object') return v as Record<string, unknown>;
    try {
      return JSON.parse(String(v)) as Record<string, unknown>;
    } catch {
      return null;
    }
  };
  return {
    kind: row.kind as HistoryRecord['kind'],
    id: String(row.id),
    attempt: Number(row.attempt),
    request_id: (row.request_id as string | null) ?? null,
    api_key_id: (row.api_key_id as string | null) ?? null,
    model: (row.model as string | null) ?? null,
    type: String(row.type),
    node: (row.node as string | null) ?? null,
    queue: (row.queue as string | null) ?? null,
    priority: Number(row.priority),
    outcome: row.outcome as HistoryRecord['outcome'],
    error_code: (row.error_code as string | null) ?? null,
    error_message: (row.error_message as string | null) ?? null,
    prompt: String(row.prompt ?? ''),
    answer: (row.answer as string | null) ?? null,
    request: json(row.request) ?? {},
    routing: json(row.routing),
    prompt_tokens: num(row.prompt_tokens),
    completion_tokens: num(row.completion_tokens),
    submitted_at: Number(row.submitted_at),
    started_at: num(row.started_at),
    finished_at: Number(row.finished_at),
    queued_ms: num(row.queued_ms),
    total_ms: Number(row.total_ms),
    load_ms: num(row.load_ms),
    prompt_eval_ms: num(row.prompt_eval_ms),
    eval_ms: num(row.eval_ms),
    workflow_id: (row.workflow_id as string | null) ?? null,
    workflow_step: (row.workflow_step as string | null) ?? null,
    stored_at: Number(row.stored_at),
  };
}

/** A stats row from either driver (BIGINT sums arrive as strings from pg). */
export function statsRow(r: Record<string, unknown>): StatsRow {
  const n = (v: unknown): number => Number(v ?? 0);
  const opt = (v: unknown): number | null => (v === null || v === undefined ? null : Math.round(Number(v) * 10) / 10);
  return {
    key: String(r.key ?? ''),
    jobs: n(r.jobs),
    completed: n(r.completed),
    failed: n(r.failed),
    cancelled: n(r.cancelled),
    prompt_tokens: n(r.prompt_tokens),
    completion_tokens: n(r.completion_tokens),
    avg_total_ms: opt(r.avg_total_ms),
    p50_total_ms: opt(r.p50_total_ms),
    p95_total_ms: opt(r.p95_total_ms),
    first_at: n(r.first_at),
    last_at: n(r.last_at),
  };
}
