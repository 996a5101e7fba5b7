// Server-Sent Events parsing as the WHATWG spec has it: fields per line (CRLF, LF or CR), `data` lines joined with
// "\n", a blank line dispatches, comments (":") ignored, `id` kept for Last-Event-ID, `retry` as the reconnect delay.
// Incremental: chunks may split lines (and multi-byte characters, handled by the caller's TextDecoder) anywhere.

export interface SseMessage {
  /** The event's `id:` (the last one seen on this connection when the event carried none; '' if none ever). */
  id: string;
  /** `event:`, or "message" when the event named none. */
  event: string;
  data: string;
}

export class SseParser {
  private buf = '';
  private data: string[] = [];
  private event = '';
  private sawData = false;
  /** The last `id:` seen: what a reconnect sends as Last-Event-ID. */
  lastEventId = '';
  /** The server's last `retry:` hint in ms, if any. */
  retryMs: number | undefined;

  /** The last chunk ended in CR: a LF opening the next one is the second half of that CRLF. */
  private skipLf = false;

  /** Feed decoded text; returns the events it completed. */
  push(text: string): SseMessage[] {
    if (this.skipLf && text.startsWith('\n')) text = text.slice(1);
    this.skipLf = false;
    this.buf += text;
    const out: SseMessage[] = [];
    let start = 0;
    for (let i = 0; i < this.buf.length; i++) {
      const c = this.buf[i];
      if (c !== '\n' && c !== '\r') continue;
      const line = this.buf.slice(start, i);
      if (c === '\r') {
        if (i === this.buf.length - 1) this.skipLf = true;
        else if (this.buf[i + 1] === '\n') i++;
      }
      start = i + 1;
      const m = this.line(line);
      if (m) out.push(m);
    }
    this.buf = this.buf.slice(start);
    return out;
  }

  /** The stream ended: an event without its closing blank line is dropped, as the spec says. */
  end(): void {
    this.buf = '';
    this.reset();
  }

  private reset(): void {
    this.data = [];
    this.event = '';
    this.sawData = false;
  }

  private line(line: string): SseMessage | null {
    if (line === '') {
      const m = this.sawData ? { id: this.lastEventId, event: this.event || 'message', data: this.data.join('\n') } : null;
      this.reset();
      return m;
    }
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        this.sawData = true;
        break;
      case 'event':
        this.event = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
      default:
        break;
    }
    return null;
  }
}
