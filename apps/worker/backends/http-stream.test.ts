// NDJSON and SSE framing across arbitrary chunk boundaries, CRLF line ends and unterminated tails.
import { describe, expect, it } from 'vitest';
import { ndjson, sseData } from './http-stream.js';

async function* chunks(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield new TextEncoder().encode(p);
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Every way of cutting `text` in two, so each boundary is tried. */
const splits = (text: string): string[][] => Array.from({ length: text.length + 1 }, (_, i) => [text.slice(0, i), text.slice(i)]);

describe('ndjson', () => {
  it('yields one value per line whatever the chunking, with CRLF, blank lines and no final newline', async () => {
    const text = '{"a":1}\r\n\n{"b":"é"}\n{"c":[1,2]}';
    for (const parts of splits(text)) expect(await collect(ndjson(chunks(...parts)))).toEqual([{ a: 1 }, { b: 'é' }, { c: [1, 2] }]);
  });

  it('keeps a multi-byte character split across chunks intact', async () => {
    const bytes = new TextEncoder().encode('{"t":"日本"}\n');
    async function* byteByByte(): AsyncGenerator<Uint8Array> {
      for (const b of bytes) yield Uint8Array.of(b);
    }
    expect(await collect(ndjson(byteByByte()))).toEqual([{ t: '日本' }]);
  });

  it('names a line that is not JSON', async () => {
    await expect(collect(ndjson(chunks('{"a":1}\nnot json\n')))).rejects.toThrow(/not JSON: not json/);
  });
});

describe('sseData', () => {
  it('yields each event data whatever the chunking, joining multi-line data and skipping comments and fields', async () => {
    const text = ': keep-alive\n\nevent: message\ndata: {"x":1}\n\ndata:a\ndata: b\r\n\r\nid: 7\ndata: [DONE]';
    for (const parts of splits(text)) expect(await collect(sseData(chunks(...parts)))).toEqual(['{"x":1}', 'a\nb', '[DONE]']);
  });
});
