// Serves a Redis Stream (a job's tokens, a workflow's step events) as Server-Sent Events, resumable with Last-Event-ID.
import type { Request, Response } from 'express';
import type { ApiContext } from './context.js';

export interface SseOptions {
  key: string;
  /** How long one XREAD blocks before `onIdle` is asked (ms). */
  blockMs: number;
  /** Event name for entries without one. */
  defaultEvent: string;
  /** The data line for an entry (e.g. wrap raw token text as JSON). */
  format?: (event: string, data: string) => string;
  /**
   * Nothing new for `blockMs`: return a terminal event when the subject has ended without one in its stream (the
   * stream expired, or whoever should have written it died), or null to keep waiting.
   */
  onIdle: () => Promise<{ event: string; data: unknown } | null>;
  /** The client went away; `ended` says whether it had received the terminal event. */
  onClose?: (ended: boolean) => void;
}

const TERMINAL = new Set(['done', 'error']);

export async function serveStreamAsSse(ctx: ApiContext, req: Request, res: Response, o: SseOptions): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  res.flushHeaders();
  const conn = ctx.blockingConnection();
  conn.on('error', () => {});
  let open = true;
  let ended = false;
  res.on('close', () => {
    open = false;
    conn.disconnect();
    o.onClose?.(ended);
  });
  let last = String(req.header('last-event-id') ?? req.query.last_event_id ?? '0');
  if (!/^\d+-\d+$|^0$/.test(last)) last = '0';
  const send = (eid: string, event: string, data: string) => res.write(`id: ${eid}\nevent: ${event}\ndata: ${data}\n\n`);
  try {
    while (open && !ended) {
      const got = (await conn.xread('COUNT', '500', 'BLOCK', String(o.blockMs), 'STREAMS', o.key, last)) as [string, [string, string[]][]][] | null;
      if (!open) break;
      if (!got) {
        const final = await o.onIdle();
        if (final) {
          ended = true;
          send('0-1', final.event, JSON.stringify(final.data));
        } else res.write(': keep-alive\n\n');
        continue;
      }
      for (const [eid, fields] of got[0]?.[1] ?? []) {
        last = eid;
        const event = fields[1] ?? o.defaultEvent;
        const data = fields[3] ?? '';
        send(eid, event, o.format ? o.format(event, data) : data);
        if (TERMINAL.has(event)) ended = true;
      }
    }
  } finally {
    conn.disconnect();
    if (open) res.end();
  }
}
