// The SSE parser: framing as the spec has it, whatever way the bytes are split into chunks.
import { describe, expect, it } from 'vitest';
import { SseParser, type SseMessage } from './sse.js';

/** Feed `text` in pieces of `size` characters; all the events completed. */
function parseIn(text: string, size: number, p = new SseParser()): SseMessage[] {
  const out: SseMessage[] = [];
  for (let i = 0; i < text.length; i += size) out.push(...p.push(text.slice(i, i + size)));
  return out;
}

const HYDRA = 'id: 1-0\nevent: token\ndata: {"text":"Hel"}\n\n: keep-alive\n\nid: 1-1\nevent: token\ndata: {"text":"lo"}\n\nid: 2-0\nevent: done\ndata: {"response":"Hello"}\n\n';

describe('SseParser', () => {
  it('reads Hydra job streams: ids, events, data; comments skipped', () => {
    expect(parseIn(HYDRA, HYDRA.length)).toEqual([
      { id: '1-0', event: 'token', data: '{"text":"Hel"}' },
      { id: '1-1', event: 'token', data: '{"text":"lo"}' },
      { id: '2-0', event: 'done', data: '{"response":"Hello"}' },
    ]);
  });

  it('gives the same events however the text is split (one character at a time, odd sizes)', () => {
    const whole = parseIn(HYDRA, HYDRA.length);
    for (const size of [1, 2, 3, 7, 13]) expect(parseIn(HYDRA, size)).toEqual(whole);
  });

  it('handles CRLF and CR line ends, a CRLF split across chunks included', () => {
    const crlf = HYDRA.replace(/\n/g, '\r\n');
    const cr = HYDRA.replace(/\n/g, '\r');
    const whole = parseIn(HYDRA, HYDRA.length);
    for (const size of [1, 5, crlf.length]) expect(parseIn(crlf, size)).toEqual(whole);
    expect(parseIn(cr, 4)).toEqual(whole);
  });

  it('joins data lines with newlines, defaults the event to "message", keeps the last id', () => {
    const p = new SseParser();
    expect(p.push('id: 7\ndata: a\ndata:b\ndata\n\ndata: next\n\n')).toEqual([
      { id: '7', event: 'message', data: 'a\nb\n' },
      { id: '7', event: 'message', data: 'next' },
    ]);
    expect(p.lastEventId).toBe('7');
  });

  it('keeps the retry hint, ignores unknown fields and events without data', () => {
    const p = new SseParser();
    expect(p.push('retry: 1000\n: this API replica is shutting down\n\nevent: x\nfoo: bar\n\n')).toEqual([]);
    expect(p.retryMs).toBe(1000);
    expect(p.push('retry: soon\n\n')).toEqual([]);
    expect(p.retryMs).toBe(1000);
  });

  it('drops an event cut off before its blank line at the end', () => {
    const p = new SseParser();
    expect(p.push('id: 1\nevent: token\ndata: {"text":"x"}\n')).toEqual([]);
    p.end();
    expect(p.push('\n')).toEqual([]);
  });
});
