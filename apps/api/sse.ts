// Server-Sent Events: one framing of a stream reader. Each entry is an SSE event with its stream id (so a client
// resumes with Last-Event-ID); idle intervals send a comment so proxies keep the connection. A replica that drains
// ends its streams early with a `retry:` hint, and the client resumes on another replica.
import type { Response } from 'express';
import type { StreamReader } from './services/stream-reader.js';

/** The reconnect delay a handed-over client is told (SSE `retry:`), ms: time for the load balancer to see the drain. */
const HANDOFF_RETRY_MS = 1000;

interface SseOptions {
  /** How an entry's data goes on the wire (default: as stored). */
  format?: (event: string, data: string) => string;
  /**
   * Aborts when this replica starts draining: the stream stops after the last whole event, with a retry hint and no
   * terminal event, so an EventSource (or any client that resumes with Last-Event-ID) continues on another replica.
   */
  handoff?: AbortSignal;
}

export async function sendSse(res: Response, reader: StreamReader, opts: SseOptions = {}): Promise<void> {
  const { format = (_e: string, d: string) => d, handoff } = opts;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  res.flushHeaders();
  res.on('close', () => reader.close());
  const handOver = () => reader.close({ handoff: true });
  if (handoff?.aborted) handOver();
  else handoff?.addEventListener('abort', handOver, { once: true });
  try {
    for await (const item of reader) {
      if (item.event === 'idle') res.write(': keep-alive\n\n');
      else res.write(`id: ${item.id}\nevent: ${item.event}\ndata: ${format(item.event, item.data)}\n\n`);
    }
  } finally {
    handoff?.removeEventListener('abort', handOver);
    reader.close();
    if (handoff?.aborted && !reader.ended && !res.writableEnded && !res.destroyed) {
      res.write(`retry: ${HANDOFF_RETRY_MS}\n: this API replica is shutting down: reconnect with Last-Event-ID to resume the stream\n\n`);
    }
    if (!res.writableEnded) res.end();
  }
}
