// Server-Sent Events: one framing of a stream reader. Each entry is an SSE event with its stream id (so a client
// resumes with Last-Event-ID); idle intervals send a comment so proxies keep the connection.
import type { Response } from 'express';
import type { StreamReader } from './services/stream-reader.js';

export async function sendSse(res: Response, reader: StreamReader, format: (event: string, data: string) => string = (_e, d) => d): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  res.flushHeaders();
  res.on('close', () => reader.close());
  try {
    for await (const item of reader) {
      if (item.event === 'idle') res.write(': keep-alive\n\n');
      else res.write(`id: ${item.id}\nevent: ${item.event}\ndata: ${format(item.event, item.data)}\n\n`);
    }
  } finally {
    reader.close();
    if (!res.writableEnded) res.end();
  }
}
