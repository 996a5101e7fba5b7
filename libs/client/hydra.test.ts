// The client against a small fake API (node:http on a free port): stream resumption with Last-Event-ID after dropped
// connections and 5xx answers, batches per the contract, NDJSON, typed errors, wait, abort.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { BadRequestError, HydraConnectionError, NotFoundError, UnavailableError } from './errors.js';
import { Hydra } from './hydra.js';

type Handler = (req: IncomingMessage & { body: string }, res: ServerResponse) => void;
let server: Server | undefined;
const seen: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[] = [];

async function fake(handler: Handler): Promise<string> {
  seen.length = 0;
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      handler(Object.assign(req, { body }), res);
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const addr = server.address();
  return `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
}

afterEach(async () => {
  const s = server;
  server = undefined;
  if (!s) return;
  s.closeAllConnections();
  await new Promise((r) => s.close(r));
});

const sse = (id: string, event: string, data: unknown) => `id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
const fast = { reconnect: { delayMs: 10, maxDelayMs: 20 } };

describe('Hydra.stream', () => {
  it('resumes after dropped connections from the last event id: every token once, in order', async () => {
    const tokens = ['a', 'b', 'c', 'd', 'e', 'f'];
    const url = await fake((req, res) => {
      const after = Number(req.headers['last-event-id'] ?? '-1');
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      // Two tokens per connection, then the connection is cut mid-event.
      const next = tokens.map((t, i) => ({ t, i })).filter(({ i }) => i > after);
      for (const { t, i } of next.slice(0, 2)) res.write(sse(String(i), 'token', { text: t }));
      if (next.length <= 2) {
        res.end(sse('99', 'done', { response: tokens.join('') }));
      } else {
        res.write('id: 77\nevent: tok');
        setTimeout(() => res.destroy(), 20);
      }
    });
    const c = new Hydra({ url, ...fast });
    const got = [];
    for await (const e of c.stream('j1')) got.push(e);
    expect(got.filter((e) => e.event === 'token').map((e) => (e as { text: string }).text)).toEqual(tokens);
    expect(got.at(-1)).toEqual({ event: 'done', id: '99', result: { response: 'abcdef' } });
    expect(seen.map((s) => s.headers['last-event-id'])).toEqual([undefined, '1', '3', '5'].slice(0, seen.length));
    expect(seen).toHaveLength(3);
  });

  it('resumes after a stream that ends without its last event (a draining replica) and after 503s', async () => {
    let n = 0;
    const url = await fake((req, res) => {
      n++;
      if (n === 1) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        return res.end(`${sse('1-0', 'token', { text: 'x' })}retry: 10\n: this API replica is shutting down\n\n`);
      }
      if (n <= 3) {
        res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '0' });
        return res.end(JSON.stringify({ error: { code: 'unavailable', message: 'draining', retryable: true } }));
      }
      expect(req.headers['last-event-id']).toBe('1-0');
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(sse('2-0', 'token', { text: 'y' }) + sse('3-0', 'error', { code: 'backend_error', message: 'boom', retryable: false }));
    });
    const got = [];
    for await (const e of new Hydra({ url, ...fast }).stream('j1')) got.push(e);
    expect(got).toEqual([
      { event: 'token', id: '1-0', text: 'x' },
      { event: 'token', id: '2-0', text: 'y' },
      { event: 'error', id: '3-0', error: { code: 'backend_error', message: 'boom', retryable: false } },
    ]);
    expect(n).toBe(4);
  });

  it('gives up after the reconnect attempts, with the last error; a 404 is thrown at once', async () => {
    let n = 0;
    const url = await fake((req, res) => {
      n++;
      if (req.url!.includes('gone')) {
        res.writeHead(404, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ error: { code: 'not_found', message: 'no job with id gone', retryable: false } }));
      }
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'unavailable', message: 'Redis away', retryable: true } }));
    });
    const c = new Hydra({ url, reconnect: { attempts: 3, delayMs: 5, maxDelayMs: 5 } });
    const drain = async (id: string) => {
      for await (const _ of c.stream(id)) void _;
    };
    await expect(drain('j1')).rejects.toBeInstanceOf(UnavailableError);
    expect(n).toBe(4); // the first try and 3 reconnects
    n = 0;
    await expect(drain('gone')).rejects.toBeInstanceOf(NotFoundError);
    expect(n).toBe(1);
  });

  it('reconnects when the API cannot be reached, and ends with HydraConnectionError', async () => {
    // A port that was just free: nothing listens there.
    const url = await fake(() => undefined);
    const s = server!;
    server = undefined;
    await new Promise((r) => s.close(r));
    const c = new Hydra({ url, reconnect: { attempts: 2, delayMs: 5, maxDelayMs: 5 } });
    const it = c.stream('j1')[Symbol.asyncIterator]();
    await expect(it.next()).rejects.toMatchObject({ name: 'HydraConnectionError', problem: 'unreachable', errno: 'ECONNREFUSED' });
  });

  it('ends with the signal’s reason when aborted mid-stream', async () => {
    const url = await fake((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(sse('1', 'token', { text: 'x' }));
    });
    const ac = new AbortController();
    const got: string[] = [];
    const run = (async () => {
      for await (const e of new Hydra({ url }).stream('j1', { signal: ac.signal })) {
        got.push(e.event);
        ac.abort();
      }
    })();
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    expect(got).toEqual(['token']);
  });
});

describe('Hydra requests', () => {
  it('sends the key, the body and the Idempotency-Key; answers with the status; maps errors with the request id', async () => {
    const url = await fake((req, res) => {
      if (req.method === 'POST' && req.url === '/v1/jobs') {
        const body = JSON.parse(req.body) as { model?: string };
        if (!body.model) {
          res.writeHead(400, { 'content-type': 'application/json', 'x-request-id': 'r-42' });
          return res.end(JSON.stringify({ error: { code: 'bad_request', message: 'invalid request body: model is required', retryable: false, details: { fields: [{ field: 'model', problem: 'is required' }] } } }));
        }
        res.writeHead(202, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ id: 'j1', status_url: '/v1/jobs/j1', stream_url: '/v1/jobs/j1/stream', state: 'waiting' }));
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jobs: [{ id: 'j1' }] }));
    });
    const c = new Hydra({ url, apiKey: 'k-123' });
    const a = await c.submit({ type: 'generate', model: 'm', prompt: 'hi' }, { idempotencyKey: 'idem-1' });
    expect(a).toMatchObject({ status: 202, id: 'j1', state: 'waiting' });
    expect(seen[0]!.headers).toMatchObject({ authorization: 'Bearer k-123', 'idempotency-key': 'idem-1', 'content-type': 'application/json' });
    expect(JSON.parse(seen[0]!.body)).toEqual({ type: 'generate', model: 'm', prompt: 'hi' });
    const e = await c.submit({ type: 'generate', prompt: 'hi' } as never).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BadRequestError);
    expect(e).toMatchObject({ code: 'bad_request', status: 400, requestId: 'r-42', fields: [{ field: 'model', problem: 'is required' }] });
    expect(await c.jobs({ limit: 5, state: 'failed', model: 'qwen3:4b' })).toEqual([{ id: 'j1' }]);
    expect(seen.at(-1)!.url).toBe('/v1/jobs?limit=5&state=failed&model=qwen3%3A4b');
  });

  it('wait polls the job until it ends, riding out a 503', async () => {
    let n = 0;
    const url = await fake((_req, res) => {
      n++;
      if (n === 2) {
        res.writeHead(503, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ error: { code: 'unavailable', message: 'Redis away', retryable: true } }));
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'j1', state: n < 4 ? 'active' : 'completed', result: { response: 'ok' } }));
    });
    const v = await new Hydra({ url }).wait('j1', { timeoutMs: 10_000 });
    expect(v).toMatchObject({ state: 'completed', result: { response: 'ok' } });
    expect(n).toBe(4);
  });

  it('reports a non-JSON answer as a protocol error, not retryable', async () => {
    const url = await fake((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>not hydra</html>');
    });
    const e = await new Hydra({ url }).nodes().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(HydraConnectionError);
    expect(e).toMatchObject({ problem: 'protocol', retryable: false });
  });

  it('times out a request with no answer', async () => {
    const url = await fake(() => undefined);
    const e = await new Hydra({ url, timeoutMs: 100 }).nodes().catch((x: unknown) => x);
    expect(e).toMatchObject({ name: 'HydraConnectionError', problem: 'timeout', retryable: true });
  });
});

describe('Hydra.batches (the contract of docs/api.md)', () => {
  const view = (state: string) => ({
    id: 'b1',
    object: 'batch',
    state,
    counts: { total: 3, waiting: 0, active: 0, completed: 2, failed: 1, cancelled: 0 },
    created_at: '2025-01-01T00:00:00.000Z',
    ended_at: null,
    callback_url: null,
    results_url: '/v1/batches/b1/results',
  });
  const results = [0, 1, 2].map((index) => (index === 1 ? { index, job_id: `j${index}`, state: 'failed', error: { code: 'backend_error', message: 'x', retryable: false } } : { index, job_id: `j${index}`, state: 'completed', result: { response: `r${index}` } }));

  it('create, get (offset, limit), results (NDJSON, lines split across chunks), cancel', async () => {
    const url = await fake((req, res) => {
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.method === 'POST' && req.url === '/v1/batches') return json(202, view('running'));
      if (req.method === 'GET' && req.url === '/v1/batches/b1?offset=1&limit=1') return json(200, { ...view('completed'), results: [results[1]], next_offset: 2 });
      if (req.method === 'GET' && req.url === '/v1/batches/b1/results') {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' });
        const text = results.map((r) => JSON.stringify(r)).join('\n') + '\n';
        let i = 0;
        const t = setInterval(() => {
          res.write(text.slice(i, i + 17));
          i += 17;
          if (i >= text.length) {
            clearInterval(t);
            res.end();
          }
        }, 1);
        return;
      }
      if (req.method === 'POST' && req.url === '/v1/batches/b1/cancel') return json(200, view('cancelled'));
      json(404, { error: { code: 'not_found', message: `no batch ${req.url}`, retryable: false } });
    });
    const c = new Hydra({ url });
    const requests = [{ type: 'generate' as const, model: 'm', prompt: 'a' }];
    expect(await c.batches.create({ requests, callback_url: 'https://example.com/hook' }, { idempotencyKey: 'b-key' })).toEqual(view('running'));
    expect(JSON.parse(seen[0]!.body)).toEqual({ requests, callback_url: 'https://example.com/hook' });
    expect(seen[0]!.headers['idempotency-key']).toBe('b-key');
    expect(await c.batches.get('b1', { offset: 1, limit: 1 })).toMatchObject({ state: 'completed', results: [results[1]], next_offset: 2 });
    const got = [];
    for await (const r of c.batches.results('b1')) got.push(r);
    expect(got).toEqual(results);
    expect(await c.batches.cancel('b1')).toMatchObject({ state: 'cancelled' });
    await expect(c.batches.get('nope')).rejects.toBeInstanceOf(NotFoundError);
  });
});
