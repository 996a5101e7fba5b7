// Embeddings computed by the cluster itself: an embed job for MEMORY_EMBED_MODEL, routed like any other job (whichever
// node has the model), added through the producer, and its result read back from the job when it ends (polled).
import { randomUUID } from 'node:crypto';
import { ErrorCode, HydraError, type InferResult, type NodeRecord } from '../core/index.js';
import { buildInferJob, decodeFailure, type Producer } from '../queue/index.js';
import { wakeNodesFor } from '../scheduling/index.js';

/** The request id the history's embed jobs carry: `GET /v1/history?request_id=memory-embed` lists them. */
const EMBED_REQUEST_ID = 'memory-embed';
/** Failures that the same texts would meet again: such a batch is split, and a single text that meets one is skipped. */
const PERMANENT: ReadonlySet<string> = new Set([ErrorCode.BadRequest, ErrorCode.PayloadTooLarge, ErrorCode.PoisonPill]);

export interface Embedder {
  readonly model: string;
  /** One vector per text, in order. Rejects with a HydraError (`retryable` says whether the same call may succeed later). */
  embed(texts: readonly string[], opts: { priority: number }): Promise<number[][]>;
  /** Calls in progress give up soon (their jobs are cancelled). */
  close?(): void;
}

/** Whether an embedding failure would recur for the same texts (split or skip them rather than retry). */
export const isPermanent = (e: unknown): boolean => e instanceof HydraError && PERMANENT.has(e.code);

export interface ClusterEmbedderDeps {
  producer: Producer;
  /** Registered nodes (the registry snapshot). */
  nodes: () => Promise<NodeRecord[]>;
  localHosts: readonly string[];
  model: string;
  /** A job not ended by then is cancelled and the call rejects (retryable), ms. */
  timeoutMs?: number;
  /** How often the job is read while it runs, ms. */
  pollMs?: number;
}

export class ClusterEmbedder implements Embedder {
  readonly model: string;
  private turn = 0;
  private closed = false;

  constructor(private readonly d: ClusterEmbedderDeps) {
    this.model = d.model;
  }

  async embed(texts: readonly string[], opts: { priority: number }): Promise<number[][]> {
    const { producer } = this.d;
    const nodes = await this.d.nodes();
    const now = Date.now();
    // truncate: an input longer than the model's context is cut, not failed (Ollama's default, said explicitly).
    const { plan, payload } = buildInferJob({ type: 'embed', model: this.model, input: [...texts], truncate: true }, { priority: opts.priority }, nodes, this.d.localHosts, now);
    payload.request_id = EMBED_REQUEST_ID;
    const id = randomUUID();
    await producer.addInference(id, payload, plan.queueInfo, wakeNodesFor(plan, nodes, this.turn++));
    const deadline = now + (this.d.timeoutMs ?? 120_000);
    const pollMs = this.d.pollMs ?? 100;
    for (;;) {
      await new Promise((r) => setTimeout(r, pollMs));
      const job = await producer.queue(plan.queue).getJob(id);
      if (!job) throw new HydraError(ErrorCode.Cancelled, `embed job ${id} is gone (cancelled or removed)`, { retryable: true });
      if (job.finishedOn && job.returnvalue) {
        const e = (job.returnvalue as InferResult).embeddings ?? [];
        if (e.length !== texts.length) throw new HydraError(ErrorCode.BackendError, `embed job ${id} returned ${e.length} vectors for ${texts.length} texts`, { retryable: true });
        return e;
      }
      if (job.finishedOn && (await job.getState()) === 'failed') {
        const f = decodeFailure(job.failedReason);
        throw new HydraError(f.code as ErrorCode, `embed job ${id} (${this.model}) failed: ${f.message}`, { retryable: !PERMANENT.has(f.code) });
      }
      if (this.closed || Date.now() > deadline) {
        await producer.lifecycle.cancel(id, this.closed ? 'the embedder closed' : 'not done in time').catch(() => undefined);
        throw new HydraError(ErrorCode.Timeout, `embed job ${id} (${this.model}) did not end within ${this.d.timeoutMs ?? 120_000} ms`, { retryable: true });
      }
    }
  }

  /** Calls in progress give up at their next poll (their jobs are cancelled). */
  close(): void {
    this.closed = true;
  }
}
