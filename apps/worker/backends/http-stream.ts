// Framing of streamed HTTP bodies: NDJSON lines (Ollama) and Server-Sent Events data (OpenAI-compatible servers).

type Chunks = AsyncIterable<Uint8Array | string>;

/** Lines of a body, without their line breaks; blank lines are skipped. A last line without a newline is still yielded. */
async function* textLines(body: Chunks): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8');
  let rest = '';
  for await (const chunk of body) {
    rest += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    let nl = rest.search(/\r?\n|\r/);
    while (nl >= 0) {
      const line = rest.slice(0, nl);
      const brk = rest[nl] === '\r' && rest[nl + 1] === '\n' ? 2 : 1;
      // A lone "\r" at the end of a chunk may be the first half of "\r\n": wait for the next chunk.
      if (rest[nl] === '\r' && nl + 1 === rest.length) break;
      rest = rest.slice(nl + brk);
      if (line.trim() !== '') yield line;
      nl = rest.search(/\r?\n|\r/);
    }
  }
  rest += decoder.decode();
  for (const line of rest.split(/\r?\n|\r/)) if (line.trim() !== '') yield line;
}

/** NDJSON: one JSON value per line. A line that is not JSON throws with the line's start in the message. */
export async function* ndjson(body: Chunks): AsyncGenerator<unknown> {
  for await (const line of textLines(body)) {
    try {
      yield JSON.parse(line) as unknown;
    } catch {
      throw new SyntaxError(`a streamed line is not JSON: ${line.slice(0, 200)}`);
    }
  }
}

/**
 * The `data` of each Server-Sent Event (several `data:` lines of one event are joined with "\n"). Comments, `event:`,
 * `id:` and `retry:` lines are ignored. An event left unterminated at the end of the body is still yielded.
 */
export async function* sseData(body: Chunks): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8');
  let rest = '';
  let data: string[] = [];
  const takeLine = (line: string): string | undefined => {
    if (line === '') {
      const event = data.length > 0 ? data.join('\n') : undefined;
      data = [];
      return event;
    }
    if (line.startsWith('data:')) data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
    return undefined;
  };
  for await (const chunk of body) {
    rest += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    let nl = rest.search(/\r?\n|\r/);
    while (nl >= 0) {
      if (rest[nl] === '\r' && nl + 1 === rest.length) break;
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + (rest[nl] === '\r' && rest[nl + 1] === '\n' ? 2 : 1));
      const event = takeLine(line);
      if (event !== undefined) yield event;
      nl = rest.search(/\r?\n|\r/);
    }
  }
  rest += decoder.decode();
  for (const line of [...rest.split(/\r?\n|\r/), '']) {
    const event = takeLine(line);
    if (event !== undefined) yield event;
  }
}

/**
 * Calls the caller's token hooks while a streamed body is read, remembering a hook that threw: that error is
 * rethrown as it is (`rethrowHookError`), not blamed on the server as a transport error.
 */
export function hookCaller() {
  let hookError: { e: unknown } | undefined;
  return {
    call(hook: ((t: string) => void) | undefined, piece: string): void {
      try {
        hook?.(piece);
      } catch (e) {
        hookError = { e };
        throw e;
      }
    },
    rethrowHookError(): void {
      if (hookError) throw hookError.e;
    },
  };
}
