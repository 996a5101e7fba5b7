// Draining an API replica on SIGTERM: refuse new requests (503, Connection: close) while those in flight finish, hand
// resumable streams over to another replica, and end once nothing is in flight or SHUTDOWN_GRACE_MS is up.
import type { Server } from 'node:http';
import type { RequestHandler, Response } from 'express';
import { ErrorCode, HydraError } from '../../libs/core/index.js';
import { sendError } from './errors.js';

/** Paths a draining replica still answers: the probes (liveness 200, readiness 503) and the metrics scrape. */
const STILL_ANSWERED = new Set(['/livez', '/readyz', '/healthz', '/metrics']);

/** Seconds a refused client waits before retrying (another replica answers at once; this one never will again). */
export const DRAIN_RETRY_AFTER_S = 1;

/** The longest the answers due at the end of the grace (waits cut short) get to reach their clients, ms. */
const MAX_FLUSH_MS = 1000;

export const drainingError = (): HydraError =>
  new HydraError(ErrorCode.Unavailable, 'this API replica is shutting down and takes no new requests; the request was not acted on: retry it, another replica will answer', {
    retryable: true,
    details: { draining: true, retry_after_s: DRAIN_RETRY_AFTER_S },
  });

interface DrainOutcome {
  /** From the start of the drain to its end, ms. */
  ms: number;
  /** Requests still open when the grace ran out (their connections go with the process); 0 when all finished. */
  left: number;
}

/**
 * One replica's drain. `middleware` counts every request in flight and, once `drain` began, refuses new ones (a
 * client on a kept-alive connection) with a retryable 503 and closes each connection after its answer, so no job
 * is accepted that this replica would not answer. The two signals tell long answers what to do: `handoff` aborts
 * when the drain begins (SSE streams, which resume anywhere with Last-Event-ID, end with a retry hint at once);
 * `deadline` aborts shortly before the grace ends (waits still open answer what they know, e.g. 202 with the job's
 * links, instead of having their connection cut).
 */
export class Drain {
  private readonly open = new Set<Response>();
  private readonly handoffCtl = new AbortController();
  private readonly deadlineCtl = new AbortController();
  private server: Server | null = null;
  private ended: (() => void) | null = null;
  private outcome: Promise<DrainOutcome> | null = null;

  /** `graceMs`: SHUTDOWN_GRACE_MS, the longest a drain lasts. */
  constructor(private readonly graceMs: number) {}

  get draining(): boolean {
    return this.handoffCtl.signal.aborted;
  }

  get handoff(): AbortSignal {
    return this.handoffCtl.signal;
  }

  get deadline(): AbortSignal {
    return this.deadlineCtl.signal;
  }

  /** Requests in flight now. */
  get inFlight(): number {
    return this.open.size;
  }

  readonly middleware: RequestHandler = (req, res, next) => {
    if (this.draining) {
      res.setHeader('connection', 'close');
      if (!STILL_ANSWERED.has(req.path)) return sendError(res, drainingError());
    }
    this.open.add(res);
    res.once('close', () => this.settled(res));
    next();
  };

  /**
   * Stop taking work on `server` and resolve when every request in flight has ended, or after the grace (whatever is
   * still open then is left to the process exit). Calling it again returns the same drain.
   */
  drain(server: Server): Promise<DrainOutcome> {
    if (this.outcome) return this.outcome;
    const started = Date.now();
    this.server = server;
    this.handoffCtl.abort();
    // No new connections; answers not yet begun close theirs; kept-alive connections between requests go now.
    server.close();
    for (const res of this.open) if (!res.headersSent) res.setHeader('connection', 'close');
    server.closeIdleConnections();
    this.outcome = new Promise<DrainOutcome>((resolve) => {
      const flushMs = Math.min(MAX_FLUSH_MS, Math.floor(this.graceMs / 2));
      const answerNow = setTimeout(() => this.deadlineCtl.abort(), this.graceMs - flushMs);
      const giveUp = setTimeout(() => this.ended?.(), this.graceMs);
      this.ended = () => {
        this.ended = null;
        clearTimeout(answerNow);
        clearTimeout(giveUp);
        resolve({ ms: Date.now() - started, left: this.open.size });
      };
      if (this.open.size === 0) this.ended();
    });
    return this.outcome;
  }

  private settled(res: Response): void {
    this.open.delete(res);
    if (!this.server) return;
    // A stream answered before the drain kept its connection alive: now that its answer is over, close it.
    this.server.closeIdleConnections();
    if (this.open.size === 0) this.ended?.();
  }
}
