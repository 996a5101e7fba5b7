// NDJSON (Ollama's streaming format): one framing of a stream reader. Headers go out with the first line, as
// Ollama's own first bytes are its first chunk, so X-Hydra-Node can name the node that took the job; an error before
// any line is a plain Ollama error with its status, after one it is a last `{"error": "..."}` line.
import type { Response } from 'express';
import { ErrorCode, HydraError, type InferResult } from '../../../libs/core/index.js';
import { sendError } from '../errors.js';
import { setJobHeaders } from '../hints.js';
import type { StreamReader } from '../services/stream-reader.js';

/** Writes NDJSON lines; the status and headers are sent with the first line. */
export class NdjsonWriter {
  constructor(private readonly res: Response) {}

  get started(): boolean {
    return this.res.headersSent;
  }

  line(obj: unknown): void {
    if (this.res.writableEnded || this.res.destroyed) return;
    if (!this.res.headersSent) {
      this.res.status(200).setHeader('content-type', 'application/x-ndjson');
      this.res.setHeader('cache-control', 'no-cache');
      this.res.setHeader('x-accel-buffering', 'no');
    }
    this.res.write(`${JSON.stringify(obj)}\n`);
  }

  /** An error: Ollama's error answer before the first line, a last `{"error"}` line after it. Ends the response. */
  fail(e: HydraError): void {
    if (!this.started) return sendError(this.res, e);
    this.line({ error: e.message });
    this.end();
  }

  end(): void {
    if (!this.res.writableEnded) this.res.end();
  }
}

/** How one inference answer looks on the wire: a streamed piece, and the final object from the job's result. */
export interface InferenceFrame {
  piece(event: 'token' | 'thinking', text: string): unknown;
  final(result: InferResult): unknown;
}

const failureOf = (data: string): HydraError => {
  try {
    const f = JSON.parse(data) as { code?: string; message?: string };
    return new HydraError((f.code ?? ErrorCode.Internal) as ErrorCode, f.message ?? 'the job failed');
  } catch {
    return new HydraError(ErrorCode.Internal, data || 'the job failed');
  }
};

/**
 * Stream job `jobId` to the client as NDJSON until its terminal entry. `abandon` runs when the answer cannot be
 * completed for this client: it left before the end, or an attempt failed after lines were sent (a retry would
 * repeat text the client already has, and Ollama's protocol cannot take it back), so the job is no use any more.
 */
export async function sendInferenceNdjson(res: Response, reader: StreamReader, jobId: string, frame: InferenceFrame, abandon: (why: string) => void): Promise<void> {
  const out = new NdjsonWriter(res);
  let finished = false;
  res.on('close', () => {
    reader.close();
    if (!finished && !res.writableFinished) abandon('the client closed its Ollama stream before the end');
  });
  /** The node of the attempt being read: an attempt's first entry names it. */
  let node: string | undefined;
  const write = (obj: unknown) => {
    setJobHeaders(res, jobId, node);
    out.line(obj);
  };
  try {
    for await (const item of reader) {
      if ('node' in item && item.node) node = item.node;
      switch (item.event) {
        case 'token':
        case 'thinking':
          if (item.data) write(frame.piece(item.event, item.data));
          break;
        case 'retry':
        case 'requeued':
          // Before any line the client has lost nothing: the next attempt streams from the start.
          if (out.started) {
            finished = true;
            abandon('its Ollama stream broke when an attempt failed mid-answer');
            out.fail(new HydraError(ErrorCode.BackendError, `node ${node ?? '?'} failed mid-answer and the job would restart elsewhere, which an Ollama stream cannot show; retry the request`));
            return;
          }
          break;
        case 'done':
          finished = true;
          write(frame.final(JSON.parse(item.data) as InferResult));
          out.end();
          return;
        case 'error':
          finished = true;
          setJobHeaders(res, jobId, node);
          out.fail(failureOf(item.data));
          return;
        // `idle` and `progress` have no Ollama line: Ollama itself sends nothing while it loads a model.
      }
    }
  } finally {
    reader.close();
    out.end();
  }
}
