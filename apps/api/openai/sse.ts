// OpenAI's streaming framing of a job's stream: `data: {chunk}` events (chat.completion.chunk or text_completion),
// a finish chunk, an optional usage chunk, then `data: [DONE]`; an error mid-stream is one `data: {"error": ...}`.
import type { Response } from 'express';
import { ErrorCode, HydraError, toHydraError, type InferResult } from '../../../libs/core/index.js';
import { STATUS } from '../errors.js';
import type { StreamItem } from '../services/stream-reader.js';
import { finishReason, toolCallsOf, usageOf, type AnswerMeta } from './answer.js';
import { openaiError } from './errors.js';

/** The chunks of one endpoint: chat carries a role, reasoning and tool calls; legacy completions only text. */
export interface ChunkShape {
  opening(): unknown[];
  text(t: string): unknown;
  /** Reasoning text, or null where the endpoint has no place for it. */
  thinking(t: string): unknown;
  closing(r: InferResult): unknown[];
  usage(r: InferResult): unknown;
  /** The full answer text and reasoning of a result, to send what the token stream did not carry. */
  full(r: InferResult): { text: string; thinking: string };
}

function chunker(meta: AnswerMeta, object: string, includeUsage: boolean) {
  const id = `${object === 'text_completion' ? 'cmpl' : 'chatcmpl'}-${meta.jobId}`;
  // With include_usage OpenAI sends `usage: null` on every chunk and the numbers on an extra last one.
  return (choices: unknown[], usage?: unknown) => ({ id, object, created: meta.created, model: meta.model, choices, ...(includeUsage ? { usage: usage ?? null } : {}) });
}

export function chatChunks(meta: AnswerMeta, includeUsage: boolean): ChunkShape {
  const chunk = chunker(meta, 'chat.completion.chunk', includeUsage);
  const delta = (d: Record<string, unknown>, finish: string | null = null) => chunk([{ index: 0, delta: d, logprobs: null, finish_reason: finish }]);
  return {
    opening: () => [delta({ role: 'assistant', content: '' })],
    text: (t) => delta({ content: t }),
    thinking: (t) => delta({ reasoning_content: t }),
    closing: (r) => {
      const calls = toolCallsOf(r.message?.tool_calls, meta.jobId).map((c, index) => ({ index, ...c }));
      return [...(calls.length > 0 ? [delta({ tool_calls: calls })] : []), delta({}, finishReason(r))];
    },
    usage: (r) => chunk([], usageOf(r)),
    full: (r) => ({ text: r.message?.content ?? '', thinking: r.message?.thinking ?? '' }),
  };
}

export function completionChunks(meta: AnswerMeta, includeUsage: boolean): ChunkShape {
  const chunk = chunker(meta, 'text_completion', includeUsage);
  const choice = (text: string, finish: string | null = null) => chunk([{ text, index: 0, logprobs: null, finish_reason: finish }]);
  return {
    opening: () => [],
    text: (t) => choice(t),
    thinking: () => null,
    closing: (r) => [choice('', finishReason(r))],
    usage: (r) => chunk([], usageOf(r)),
    full: (r) => ({ text: r.response ?? '', thinking: r.thinking ?? '' }),
  };
}

/** The `error` object of a terminal error entry, as OpenAI's clients read it from a stream. */
export function streamError(data: string): { error: unknown } {
  let f: { code?: string; message?: string } = {};
  try {
    f = JSON.parse(data) as typeof f;
  } catch {
    /* a malformed entry still ends the stream with an error */
  }
  const code = (f.code ?? ErrorCode.Internal) as ErrorCode;
  return openaiError(new HydraError(code, f.message ?? 'the job failed'), STATUS[code] ?? 500).body;
}

/**
 * Text sent so far per channel, across attempts. A retried attempt starts its answer again: what repeats what was
 * already sent is skipped; a retry whose answer differs (sampling without a seed) cannot be retracted, so it is an error.
 */
class Sent {
  private sent = { text: '', thinking: '' };
  private attempt = { text: '', thinking: '' };
  restart(): void {
    this.attempt = { text: '', thinking: '' };
  }
  /** The new part of `piece`, '' when it only repeats, or null when the attempt diverged from what was sent. */
  add(channel: 'text' | 'thinking', piece: string): string | null {
    const now = (this.attempt[channel] += piece);
    const sent = this.sent[channel];
    if (now.length <= sent.length) return sent.startsWith(now) ? '' : null;
    if (!now.startsWith(sent)) return null;
    this.sent[channel] = now;
    return now.slice(sent.length);
  }
  /** What of a complete answer was not sent yet ('' if all of it was, null if it differs). */
  rest(channel: 'text' | 'thinking', full: string): string | null {
    const sent = this.sent[channel];
    if (!full.startsWith(sent)) return null;
    this.sent[channel] = full;
    return full.slice(sent.length);
  }
}

const DIVERGED = JSON.stringify({ code: ErrorCode.BackendError, message: 'the job was retried after a failure and its new answer differs from the part already streamed; send the request again (a seed makes retries repeatable)' });

/**
 * Write the SSE answer: `first` is the job's first entry (its node already in the headers), `rest` the others. The
 * caller has set the Hydra headers; this writes the status line at once.
 */
export async function sendOpenAISse(res: Response, first: StreamItem, rest: AsyncIterator<StreamItem>, shape: ChunkShape, includeUsage: boolean): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  const send = (obj: unknown) => res.write(`data: ${JSON.stringify(obj)}\n\n`);
  for (const c of shape.opening()) send(c);
  const sent = new Sent();
  const emit = (channel: 'text' | 'thinking', piece: string | null): boolean => {
    if (piece === null) {
      send(streamError(DIVERGED));
      return false;
    }
    if (piece === '') return true;
    const c = channel === 'text' ? shape.text(piece) : shape.thinking(piece);
    if (c !== null) send(c);
    return true;
  };
  let item: StreamItem | undefined = first;
  try {
    while (item && !res.destroyed) {
      switch (item.event) {
        case 'idle':
          res.write(': keep-alive\n\n');
          break;
        case 'token':
          if (!emit('text', sent.add('text', item.data))) return;
          break;
        case 'thinking':
          if (!emit('thinking', sent.add('thinking', item.data))) return;
          break;
        case 'retry':
        case 'requeued':
          sent.restart();
          break;
        case 'done': {
          const r = JSON.parse(item.data) as InferResult;
          const full = shape.full(r);
          if (!emit('thinking', sent.rest('thinking', full.thinking)) || !emit('text', sent.rest('text', full.text))) return;
          for (const c of shape.closing(r)) send(c);
          if (includeUsage) send(shape.usage(r));
          return void res.write('data: [DONE]\n\n');
        }
        case 'error':
          return void send(streamError(item.data));
      }
      const next: IteratorResult<StreamItem> = await rest.next();
      item = next.done ? undefined : next.value;
    }
  } catch (e) {
    // The status line is out: a failure while reading (Redis gone) can only end the stream with an error event.
    const err = toHydraError(e);
    if (!res.destroyed) send(openaiError(err, STATUS[err.code] ?? 500).body);
  } finally {
    if (!res.writableEnded) res.end();
  }
}
