// L4 vectors: the store's interface, and exact cosine search in JS over vectors read from SQLite or PostgreSQL, kept
// decoded in memory per namespace and refreshed by a watermark (seq) so that new rows are read incrementally.
// No vector extension (pgvector is not packaged here): every search compares the query with every candidate vector.

/** A text and its embedding, as upserted. `id` is the row's identity: upserting an id again replaces the row. */
export interface VectorItem {
  id: string;
  /** A name space of the caller's choosing ("history" for the results history). */
  namespace: string;
  /** The model that made the vector (MEMORY_EMBED_MODEL): vectors of different models are never compared. */
  embed_model: string;
  /** What the text is: prompt, answer, or the caller's word. */
  kind: string;
  /** Where it came from: a history row's uid (kind:id:attempt), or null. */
  source: string | null;
  /** The model of the job that produced the text (filter.model), or null. */
  model: string | null;
  text: string;
  vector: ArrayLike<number>;
  /** ms since epoch; default now. */
  created_at?: number;
}

export interface VectorSearch {
  vector: ArrayLike<number>;
  /** Results at most (1-100 at the API). */
  k: number;
  /** One namespace; all of them when absent. */
  namespace?: string | undefined;
  filter?: { model?: string | undefined; kind?: string | undefined; embed_model?: string | undefined } | undefined;
}

export interface VectorHit {
  id: string;
  /** Cosine similarity, -1..1. */
  score: number;
  text: string;
  namespace: string;
  kind: string;
  source: string | null;
  model: string | null;
  embed_model: string;
  created_at: number;
}

/** A history row the embedder reads (SQLite: rowid as seq; PostgreSQL: history.seq). */
export interface SourceRow {
  seq: number;
  uid: string;
  kind: string;
  type: string;
  outcome: string;
  model: string | null;
  request_id: string | null;
  prompt: string;
  answer: string | null;
}

/** Where the embedder of the history stands: the last history seq handled, per namespace and embed model. */
export interface VectorProgress {
  namespace: string;
  embed_model: string;
  seq: number;
}

export interface VectorStore {
  readonly dialect: 'sqlite' | 'postgres';
  /** Insert or replace by id, in one transaction; with `progress`, the embedder's watermark moves in the same one. */
  upsert(items: readonly VectorItem[], progress?: VectorProgress): Promise<number>;
  /** The k nearest by cosine, best first. Reads rows newer than the cache's watermark first. */
  search(q: VectorSearch): Promise<VectorHit[]>;
  /** Rows stored (in one namespace, or all). */
  count(namespace?: string): Promise<number>;
  /** The history seq the embedder of (namespace, embed model) has handled; 0 before it started. */
  progress(namespace: string, embedModel: string): Promise<number>;
  /** Move the watermark without vectors (a scan with nothing to embed). */
  setProgress(p: VectorProgress): Promise<void>;
  /** History rows after `seq`, in order, at most `limit`. */
  historyAfter(seq: number, limit: number): Promise<SourceRow[]>;
  close(): Promise<void>;
}

/** A row as a dialect reads it for the cache: no text (read for the k hits only). */
export interface RawVector {
  seq: number;
  id: string;
  namespace: string;
  embed_model: string;
  kind: string;
  model: string | null;
  dims: number;
  vector: Uint8Array;
}

/** What a dialect provides; VectorIndex adds the cache and the search. */
export interface VectorRows {
  readonly dialect: 'sqlite' | 'postgres';
  upsert(items: readonly VectorItem[], progress: VectorProgress | undefined, now: number): Promise<number>;
  /** Rows with seq > `seq`, by seq, at most `limit`. */
  since(seq: number, limit: number): Promise<RawVector[]>;
  details(ids: readonly string[]): Promise<Map<string, { text: string; source: string | null; created_at: number }>>;
  count(namespace?: string): Promise<number>;
  progress(namespace: string, embedModel: string): Promise<number>;
  setProgress(p: VectorProgress, now: number): Promise<void>;
  historyAfter(seq: number, limit: number): Promise<SourceRow[]>;
  close(): Promise<void>;
}

/** Rows per read while filling the cache. */
const READ_BATCH = 5000;
/** How often a search also compares the store's row count with the cache's (a row the watermark missed, a delete), ms. */
const RECONCILE_MS = 10_000;

/** float32 little-endian bytes of a vector (what the vector column holds). */
export function encodeVector(v: ArrayLike<number>): Buffer {
  const f = Float32Array.from(v as ArrayLike<number>);
  return Buffer.from(f.buffer, f.byteOffset, f.byteLength);
}

/** The bytes back as a unit vector (copied: a driver's buffer need not be 4-byte aligned). Null for a zero vector. */
export function decodeUnit(bytes: Uint8Array, dims: number): Float32Array | null {
  const f = new Float32Array(dims);
  new Uint8Array(f.buffer).set(bytes.subarray(0, dims * 4));
  return normalise(f);
}

/** Σ a·b over `dims`, four lanes at a time (about 1.5× a plain loop in V8 at 768 dims). */
function dot(a: Float32Array, b: Float32Array, dims: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  for (; i + 3 < dims; i += 4) {
    s0 += a[i]! * b[i]!;
    s1 += a[i + 1]! * b[i + 1]!;
    s2 += a[i + 2]! * b[i + 2]!;
    s3 += a[i + 3]! * b[i + 3]!;
  }
  for (; i < dims; i++) s0 += a[i]! * b[i]!;
  return s0 + s1 + s2 + s3;
}

function normalise(f: Float32Array): Float32Array | null {
  let s = 0;
  for (let i = 0; i < f.length; i++) s += f[i]! * f[i]!;
  if (!(s > 0) || !Number.isFinite(s)) return null;
  const inv = 1 / Math.sqrt(s);
  for (let i = 0; i < f.length; i++) f[i]! *= inv;
  return f;
}

/** The vector of a row that never matches (zero vector, or moved to another namespace): no query has 0 dims. */
const NEVER = new Float32Array(0);

interface Entry {
  id: string;
  embed_model: string;
  kind: string;
  model: string | null;
  vec: Float32Array;
}

/** One namespace's decoded vectors: an array to scan, and each id's place in it (an upsert replaces in place). */
class Bucket {
  readonly entries: Entry[] = [];
  private readonly at = new Map<string, number>();

  put(e: Entry): void {
    const i = this.at.get(e.id);
    if (i === undefined) {
      this.at.set(e.id, this.entries.length);
      this.entries.push(e);
    } else this.entries[i] = e;
  }
}

/** The store over a dialect's rows: the in-memory cache and exact search. */
export class VectorIndex implements VectorStore {
  readonly dialect: 'sqlite' | 'postgres';
  private buckets = new Map<string, Bucket>();
  /** namespace of each cached id: an id upserted under another namespace moves. */
  private nsOf = new Map<string, string>();
  private watermark = 0;
  private refreshing: Promise<void> | null = null;
  private reconciledAt = 0;

  constructor(private readonly rows: VectorRows) {
    this.dialect = rows.dialect;
  }

  upsert(items: readonly VectorItem[], progress?: VectorProgress): Promise<number> {
    return this.rows.upsert(items, progress, Date.now());
  }

  /** Bring the cache up to the store: rows after the watermark; every RECONCILE_MS a count check (full reload if off). */
  refresh(): Promise<void> {
    this.refreshing ??= this.doRefresh().finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  private async doRefresh(): Promise<void> {
    await this.readNewer();
    const now = Date.now();
    if (now - this.reconciledAt < RECONCILE_MS) return;
    this.reconciledAt = now;
    if ((await this.rows.count()) === this.nsOf.size) return;
    // Rows committed between the read and the count are not a mismatch: read them, count again.
    await this.readNewer();
    if ((await this.rows.count()) === this.nsOf.size) return;
    // A row committed below the watermark (concurrent writers), or deleted: read everything again.
    this.buckets = new Map();
    this.nsOf = new Map();
    this.watermark = 0;
    await this.readNewer();
  }

  private async readNewer(): Promise<void> {
    for (;;) {
      const rows = await this.rows.since(this.watermark, READ_BATCH);
      for (const r of rows) this.add(r);
      if (rows.length < READ_BATCH) return;
    }
  }

  private add(r: RawVector): void {
    this.watermark = Math.max(this.watermark, r.seq);
    // A zero vector is kept as one that never matches (so the count check still agrees).
    const vec = decodeUnit(r.vector, r.dims) ?? NEVER;
    const prev = this.nsOf.get(r.id);
    // Upserted under another namespace: the old place keeps a row that never matches.
    if (prev !== undefined && prev !== r.namespace) this.buckets.get(prev)?.put({ id: r.id, embed_model: '', kind: '', model: null, vec: NEVER });
    this.nsOf.set(r.id, r.namespace);
    let b = this.buckets.get(r.namespace);
    if (!b) this.buckets.set(r.namespace, (b = new Bucket()));
    b.put({ id: r.id, embed_model: r.embed_model, kind: r.kind, model: r.model, vec });
  }

  async search(q: VectorSearch): Promise<VectorHit[]> {
    await this.refresh();
    const query = normalise(Float32Array.from(q.vector as ArrayLike<number>));
    if (!query || q.k <= 0) return [];
    const dims = query.length;
    const f = q.filter ?? {};
    const scope = q.namespace === undefined ? [...this.buckets.entries()] : this.buckets.has(q.namespace) ? [[q.namespace, this.buckets.get(q.namespace)!] as const] : [];
    // Top k kept sorted, best first; k ≤ 100, so insertion into a short array beats a heap.
    const top: { score: number; e: Entry; ns: string }[] = [];
    for (const [ns, b] of scope) {
      for (const e of b.entries) {
        const v = e.vec;
        if (v.length !== dims) continue;
        if (f.embed_model !== undefined && e.embed_model !== f.embed_model) continue;
        if (f.model !== undefined && e.model !== f.model) continue;
        if (f.kind !== undefined && e.kind !== f.kind) continue;
        const s = dot(v, query, dims);
        if (top.length === q.k && s <= top[top.length - 1]!.score) continue;
        let j = top.length;
        while (j > 0 && top[j - 1]!.score < s) j--;
        top.splice(j, 0, { score: s, e, ns });
        if (top.length > q.k) top.pop();
      }
    }
    if (top.length === 0) return [];
    const details = await this.rows.details(top.map((t) => t.e.id));
    return top.flatMap(({ score, e, ns }) => {
      const d = details.get(e.id);
      // Gone since it was cached (replaced or deleted meanwhile): left out.
      if (!d) return [];
      return [{ id: e.id, score: Math.round(score * 1e6) / 1e6, text: d.text, namespace: ns, kind: e.kind, source: d.source, model: e.model, embed_model: e.embed_model, created_at: d.created_at }];
    });
  }

  count(namespace?: string): Promise<number> {
    return this.rows.count(namespace);
  }

  progress(namespace: string, embedModel: string): Promise<number> {
    return this.rows.progress(namespace, embedModel);
  }

  setProgress(p: VectorProgress): Promise<void> {
    return this.rows.setProgress(p, Date.now());
  }

  historyAfter(seq: number, limit: number): Promise<SourceRow[]> {
    return this.rows.historyAfter(seq, limit);
  }

  /** Vectors held in memory (for tests and status). */
  cached(): { vectors: number; watermark: number; bytes: number } {
    let bytes = 0;
    for (const b of this.buckets.values()) for (const e of b.entries) bytes += e.vec.byteLength;
    return { vectors: this.nsOf.size, watermark: this.watermark, bytes };
  }

  close(): Promise<void> {
    return this.rows.close();
  }
}
