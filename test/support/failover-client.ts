// A client of several API replicas, as a load balancer with retries is: round-robin, and on to the next replica when a
// connection is refused, closed before any answer, or answered with a draining replica's 503; an SSE stream that ends
// without its terminal event resumes on the next replica with Last-Event-ID, after the server's `retry:` delay.
// Counts each of those, for test/rolling-restart.int.test.ts.

interface FailoverCounts {
  /** Connections refused, or closed before any answer (the replica was not listening, or closed an idle connection). */
  no_answer: number;
  /** 503 answers of a draining replica (`error.details.draining`). */
  draining_503: number;
  /** Streams that ended with a `retry:` hint and no terminal event (a replica handing its stream over). */
  handoffs: number;
  /** Streams cut without a hint (the connection dropped mid-stream). */
  cut_streams: number;
  /** Stream connections that resumed with Last-Event-ID. */
  resumes: number;
}

interface Answered {
  status: number;
  body: any;
  /** The replica that answered. */
  url: string;
}

export interface Followed {
  /** The token text, concatenated in the order received. */
  text: string;
  /** The `done` event's data (the job's result), or undefined when the stream ended otherwise. */
  result?: any;
  error?: unknown;
  /** Replicas that served a part of the stream, in order. */
  servedBy: string[];
  handoffs: number;
  /** What went wrong: an entry received twice or out of order, an attempt restarted, no replica serving it. */
  problems: string[];
}

interface SseEvent {
  id?: string;
  event?: string;
  data?: string;
  retry?: number;
}

/** Redis Stream ids "ms-seq": whether `a` comes after `b`. */
const after = (a: string, b: string): boolean => {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am > bm || (am === bm && as > bs);
};

async function* sseEvents(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of body) {
    buf += decoder.decode(chunk, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const ev: SseEvent = {};
      for (const line of block.split('\n')) {
        if (line === '' || line.startsWith(':')) continue;
        const at = line.indexOf(':');
        const field = at < 0 ? line : line.slice(0, at);
        const value = at < 0 ? '' : line.slice(at + 1).replace(/^ /, '');
        if (field === 'id') ev.id = value;
        else if (field === 'event') ev.event = value;
        else if (field === 'data') ev.data = ev.data === undefined ? value : `${ev.data}\n${value}`;
        else if (field === 'retry' && /^\d+$/.test(value)) ev.retry = Number(value);
      }
      if (Object.keys(ev).length > 0) yield ev;
    }
  }
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class FailoverClient {
  readonly counts: FailoverCounts = { no_answer: 0, draining_503: 0, handoffs: 0, cut_streams: 0, resumes: 0 };
  private n = 0;

  /** `urls`: the replicas, read at each try (a restarted replica keeps its address). */
  constructor(
    private readonly urls: readonly string[],
    private readonly o: { deadlineMs?: number } = {},
  ) {}

  /** The next replica in round-robin order. */
  pick(): number {
    return this.n++ % this.urls.length;
  }

  /**
   * POST `body` as JSON: the first answer that is not a draining replica's 503, or status 0 when no replica answered
   * within the deadline. A failure after the status line arrived is an answer lost, not retried (status -1).
   */
  async post(path: string, body: unknown, first = this.pick()): Promise<Answered> {
    const deadline = Date.now() + (this.o.deadlineMs ?? 30_000);
    for (let at = first, tries = 1; Date.now() < deadline; at = (at + 1) % this.urls.length, tries++) {
      const url = this.urls[at]!;
      let r: Response;
      try {
        r = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(60_000) });
      } catch {
        // Nothing was answered, so the replica did not act on it: the next one gets it.
        this.counts.no_answer++;
        if (tries % this.urls.length === 0) await pause(100); // every replica refused: back off a little, as a client does
        continue;
      }
      let text: string;
      try {
        text = await r.text();
      } catch (e) {
        return { status: -1, body: { error: (e as Error).message }, url };
      }
      const parsed = JSON.parse(text) as any;
      if (r.status === 503 && parsed?.error?.details?.draining === true) {
        this.counts.draining_503++;
        continue;
      }
      return { status: r.status, body: parsed, url };
    }
    return { status: 0, body: { error: 'no replica answered' }, url: '' };
  }

  /** Read job `id`'s SSE stream to its end, resuming on the next replica whenever a connection ends before it. */
  /** `reconnectAfterMs`: a slow client, reconnecting this long after a handover whatever `retry:` said. */
  async follow(id: string, o: { first?: number; onToken?: (url: string) => void; reconnectAfterMs?: number } = {}): Promise<Followed> {
    const out: Followed = { text: '', servedBy: [], handoffs: 0, problems: [] };
    const deadline = Date.now() + (this.o.deadlineMs ?? 30_000) * 2;
    let lastId: string | undefined;
    for (let at = o.first ?? this.pick(), tries = 1; Date.now() < deadline; at = (at + 1) % this.urls.length, tries++) {
      const url = this.urls[at]!;
      let r: Response;
      try {
        r = await fetch(`${url}/v1/jobs/${id}/stream`, { headers: { accept: 'text/event-stream', ...(lastId ? { 'last-event-id': lastId } : {}) }, signal: AbortSignal.timeout(60_000) });
      } catch {
        this.counts.no_answer++;
        if (tries % this.urls.length === 0) await pause(100);
        continue;
      }
      if (r.status === 503) {
        await r.text().catch(() => '');
        this.counts.draining_503++;
        continue;
      }
      if (!r.ok || !r.body) {
        out.problems.push(`stream of ${id} on ${url} answered ${r.status}: ${await r.text().catch(() => '')}`);
        return out;
      }
      if (lastId) this.counts.resumes++;
      out.servedBy.push(url);
      let retryMs: number | undefined;
      try {
        for await (const ev of sseEvents(r.body as unknown as AsyncIterable<Uint8Array>)) {
          if (ev.retry !== undefined) retryMs = ev.retry;
          if (ev.id) {
            if (lastId && !after(ev.id, lastId)) out.problems.push(`entry ${ev.id} of ${id} came after ${lastId} (a duplicate or out of order)`);
            lastId = ev.id;
          }
          if (ev.event === 'token') {
            out.text += (JSON.parse(ev.data ?? '{}') as { text: string }).text;
            o.onToken?.(url);
          } else if (ev.event === 'done') {
            out.result = JSON.parse(ev.data ?? 'null');
            return out;
          } else if (ev.event === 'error') {
            out.error = JSON.parse(ev.data ?? 'null');
            return out;
          } else if (ev.event === 'retry' || ev.event === 'requeued') {
            out.problems.push(`job ${id}: an attempt ended (${ev.event}: ${ev.data}); its tokens restart`);
          }
        }
      } catch {
        // The connection dropped mid-stream: resume like any cut.
      }
      if (retryMs === undefined) this.counts.cut_streams++;
      else {
        this.counts.handoffs++;
        out.handoffs++;
        // What EventSource does: wait the server's reconnect delay, then reconnect with the last id it saw.
        await pause(o.reconnectAfterMs ?? retryMs);
      }
    }
    out.problems.push(`stream of ${id}: no replica served its end within the deadline`);
    return out;
  }
}
