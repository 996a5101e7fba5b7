// HTTP plumbing for the simulated node: JSON bodies with a size limit, request validation, JSON/stream writes with backpressure, error shapes.
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';

const MAX_BODY_BYTES = 10 * 1024 * 1024;

/** An error answered with `status`; the route's flavour decides the body shape. */
export class SimHttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'SimHttpError';
    this.status = status;
  }
}

/** One HTTP route; errors it throws are answered by the server in the route's flavour. */
export type Route = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/** Ollama answers `{"error": "..."}`; the OpenAI-compatible routes `{"error": {"message", "type"}}`. */
export type Flavor = 'ollama' | 'openai';

export async function readJsonBody(req: IncomingMessage, limitBytes = MAX_BODY_BYTES): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  // Past the limit the rest is read and discarded, so the client gets the 413 instead of a reset mid-upload.
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size <= limitBytes) chunks.push(c);
  }
  if (size > limitBytes) throw new SimHttpError(413, `request body is ${size} bytes; the limit is ${limitBytes} bytes`);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new SimHttpError(400, 'request body is empty: send a JSON object');
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new SimHttpError(400, `invalid JSON body: ${(e as Error).message}`);
  }
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validates an inference request body: a JSON object with a non-empty `model`, then `schema`. */
export function parseRequest<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  if (!isRecord(body)) throw new SimHttpError(400, 'request body must be a JSON object');
  if (typeof body.model !== 'string' || body.model === '') throw new SimHttpError(400, 'model is required');
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
    throw new SimHttpError(400, `invalid request: ${why}`);
  }
  return parsed.data;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function openaiErrorType(status: number): string {
  if (status === 400 || status === 413) return 'invalid_request_error';
  if (status === 404) return 'not_found_error';
  return 'api_error';
}

/** Answers an error; when a stream has already started, the error is its last line/event (as Ollama does). */
export function sendError(res: ServerResponse, flavor: Flavor, status: number, message: string): void {
  if (res.writableEnded || res.destroyed) return;
  if (res.headersSent) {
    if (flavor === 'ollama') res.end(`${JSON.stringify({ error: message })}\n`);
    else res.end(`data: ${JSON.stringify({ error: { message, type: openaiErrorType(status) } })}\n\n`);
    return;
  }
  if (status === 413) res.setHeader('Connection', 'close');
  sendJson(res, status, flavor === 'ollama' ? { error: message } : { error: { message, type: openaiErrorType(status) } });
}

/** Writes one piece of a stream, waiting for the socket to drain when its buffer is full. */
export async function writePiece(res: ServerResponse, text: string, signal: AbortSignal): Promise<void> {
  if (!res.write(text)) await once(res, 'drain', { signal });
}

export function startStream(res: ServerResponse, contentType: string): void {
  res.writeHead(200, { 'Content-Type': contentType, 'Cache-Control': 'no-cache' });
  res.flushHeaders();
}
