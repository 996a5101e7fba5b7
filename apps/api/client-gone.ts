// Noticing a client that leaves before its answer: the signal every waiting route passes to its service.
import type { Response } from 'express';

/** An AbortSignal that fires when the client goes away before its answer was written; `onGone` runs then. */
export function clientGone(res: Response, onGone?: () => void): AbortSignal {
  const gone = new AbortController();
  res.on('close', () => {
    if (res.writableFinished) return;
    gone.abort();
    onGone?.();
  });
  return gone.signal;
}
