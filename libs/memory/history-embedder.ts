// Vectors of the history: reads stored rows after its watermark (vector_progress), has the cluster embed their prompt
// and answer in batched low-priority embed jobs, and upserts the vectors with the new watermark in one transaction.
// It runs beside the drain loop, never in it: a slow or absent embed model delays vectors, never history rows. A
// failed scan is retried with backoff from the same watermark, so nothing is skipped; only a text that the model
// refuses for good (bad request) is left without a vector, and logged.
import type { Logger } from '../logger/index.js';
import { isPermanent, type Embedder } from './embedder.js';
import type { SourceRow, VectorItem, VectorStore } from './vectors.js';
import { WakeableSleep } from './wakeable-sleep.js';

/** History rows per scan. */
const SCAN_ROWS = 64;
/** Texts per embed job (the embed call's `input` array). */
export const EMBED_BATCH = 16;
/** Characters of a text sent to the embed model at most (it truncates to its context anyway). */
const MAX_EMBED_CHARS = 8192;
/** Wait between scans of a history with nothing new, ms (the drainer wakes it when it stores rows). */
const IDLE_MS = 1000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;
/** Priority of the history's embed jobs: the lowest, so they never hold up a user's request. */
export const EMBED_PRIORITY = 1;

export interface EmbedStatus {
  /** Whether the vector store is open. */
  open: boolean;
  embed_model: string;
  namespace: string;
  /** The history seq handled (this process's view). */
  watermark: number | null;
  /** Vectors upserted by this process. */
  embedded: number;
  /** Texts left without a vector (refused by the model for good). */
  skipped: number;
  last_error: string | null;
  last_error_at: number | null;
}

export interface HistoryEmbedderDeps {
  open: () => Promise<VectorStore>;
  embedder: Embedder;
  logger: Logger;
  /** Whether this process may index now (it holds the drain lock). */
  active: () => boolean;
  namespace?: string;
}

/** The rows whose texts get vectors: finished generate and chat jobs (not embed jobs, whose text is their input). */
const wanted = (r: SourceRow): boolean => r.kind === 'job' && r.outcome === 'completed' && (r.type === 'generate' || r.type === 'chat');

const cap = (s: string): string => (s.length > MAX_EMBED_CHARS ? s.slice(0, MAX_EMBED_CHARS) : s);

export class HistoryEmbedder {
  private store: VectorStore | null = null;
  private watermark: number | null = null;
  private closed = false;
  private readonly pause = new WakeableSleep();
  private loop: Promise<void> | null = null;
  private failing = false;
  private readonly namespace: string;
  private readonly st: Omit<EmbedStatus, 'watermark' | 'open'>;

  constructor(private readonly d: HistoryEmbedderDeps) {
    this.namespace = d.namespace ?? 'history';
    this.st = { embed_model: d.embedder.model, namespace: this.namespace, embedded: 0, skipped: 0, last_error: null, last_error_at: null };
  }

  start(): this {
    this.loop ??= this.run();
    return this;
  }

  /** The vector store once open (searches use it in every replica; only the lock holder indexes). */
  get current(): VectorStore | null {
    return this.store;
  }

  status(): EmbedStatus {
    return { ...this.st, open: this.store !== null, watermark: this.watermark };
  }

  /** New history rows were stored: scan now rather than at the next idle tick. */
  notify(): void {
    this.pause.wake();
  }

  private async run(): Promise<void> {
    let backoff = BACKOFF_MIN_MS;
    while (!this.closed) {
      try {
        this.store ??= await this.d.open();
        if (!this.d.active()) {
          // Another replica indexes; read the watermark again when this one takes over.
          this.watermark = null;
          await this.pause.sleep(IDLE_MS);
          continue;
        }
        const n = await this.scanOnce(this.store);
        if (this.failing) this.d.logger.info({ embedded: this.st.embedded }, 'history vectors catching up again');
        this.failing = false;
        backoff = BACKOFF_MIN_MS;
        if (n < SCAN_ROWS) await this.pause.sleep(IDLE_MS);
      } catch (e) {
        const err = e as Error;
        this.st.last_error = err.message;
        this.st.last_error_at = Date.now();
        if (!this.failing) this.d.logger.warn({ err: err.message, model: this.d.embedder.model }, 'history vectors not made yet; retrying (the rows are stored)');
        this.failing = true;
        await this.pause.sleep(backoff);
        backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
      }
    }
  }

  /** One scan: the next rows after the watermark, their texts embedded and upserted. The number of rows handled. */
  private async scanOnce(store: VectorStore): Promise<number> {
    const model = this.d.embedder.model;
    this.watermark ??= await store.progress(this.namespace, model);
    const rows = await store.historyAfter(this.watermark, SCAN_ROWS);
    if (rows.length === 0) return 0;
    const texts: Omit<VectorItem, 'vector'>[] = [];
    for (const r of rows.filter(wanted)) {
      const base = { namespace: this.namespace, embed_model: model, source: r.uid, model: r.model };
      if (r.prompt.trim()) texts.push({ ...base, id: `${this.namespace}:${r.uid}:prompt`, kind: 'prompt', text: cap(r.prompt) });
      if (r.answer?.trim()) texts.push({ ...base, id: `${this.namespace}:${r.uid}:answer`, kind: 'answer', text: cap(r.answer) });
    }
    const batches: (typeof texts)[] = [];
    for (let i = 0; i < texts.length; i += EMBED_BATCH) batches.push(texts.slice(i, i + EMBED_BATCH));
    // Every batch of the scan at once: they queue at the lowest priority, and each may land on another node.
    const vectors = (await Promise.all(batches.map((b) => this.embedBatch(b.map((t) => t.text))))).flat();
    const items: VectorItem[] = [];
    texts.forEach((t, i) => {
      const v = vectors[i];
      if (v) items.push({ ...t, vector: v });
    });
    const seq = rows.at(-1)!.seq;
    await store.upsert(items, { namespace: this.namespace, embed_model: model, seq });
    this.watermark = seq;
    this.st.embedded += items.length;
    return rows.length;
  }

  /** Vectors for `texts` (null for a text the model refuses for good); a batch refused for good is tried text by text. */
  private async embedBatch(texts: string[]): Promise<(number[] | null)[]> {
    try {
      return await this.d.embedder.embed(texts, { priority: EMBED_PRIORITY });
    } catch (e) {
      if (!isPermanent(e)) throw e;
      if (texts.length === 1) {
        this.st.skipped++;
        this.d.logger.warn({ err: (e as Error).message, chars: texts[0]!.length }, 'a history text was refused by the embed model; left without a vector');
        return [null];
      }
      const out: (number[] | null)[] = [];
      for (const t of texts) out.push(...(await this.embedBatch([t])));
      return out;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.d.embedder.close?.();
    this.pause.wake();
    await this.loop?.catch(() => undefined);
    await this.store?.close().catch(() => undefined);
  }
}
