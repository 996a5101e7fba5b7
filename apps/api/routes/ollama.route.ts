// The Ollama API (/, /api/*) as a drop-in: every request goes through Hydra's queue, scheduler and limits. Parses
// (apps/api/ollama/schemas.ts), calls the job and admin services, frames Ollama's answers (NDJSON or one object).
import { readFileSync } from 'node:fs';
import { Router, type Request, type Response } from 'express';
import { ErrorCode, HydraError, type InferResult, type JobRequest } from '../../../libs/core/index.js';
import { sameModel } from '../../../libs/scheduling/index.js';
import { requestIdOf } from '../access-log.js';
import { keyIdOf } from '../auth.js';
import type { ApiContext } from '../context.js';
import { clientGone } from '../client-gone.js';
import { REDIS_RETRY_AFTER_S, route, sendError } from '../errors.js';
import { hintsOf, setJobHeaders, type Hints } from '../hints.js';
import { deleteTargets, failureOf, namedNodes, pullTargets, runAdmin } from '../ollama/admin-runs.js';
import { modelNotFound, psOf, showModel, tagsOf } from '../ollama/models.js';
import { NdjsonWriter, sendInferenceNdjson, type InferenceFrame } from '../ollama/ndjson.js';
import { ChatBodySchema, DeleteBodySchema, EmbedBodySchema, EmbeddingsBodySchema, GenerateBodySchema, parseBody, PullBodySchema, ShowBodySchema } from '../ollama/schemas.js';
import { chatRequest, embedAnswer, embedRequest, finalChunk, generateRequest, isEmptyRequest, isZeroKeepAlive, loadAnswer, loadRequest, pieceChunk, type TextKind } from '../ollama/translate.js';
import { cancelJob, cancelOnDisconnect, submitJob, waitForEnd, waitLimitMs } from '../services/jobs.js';
import { readJobStream } from '../services/stream-reader.js';

/** Read once: the version /api/version reports is Hydra's own. */
const VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Ollama's model-file and registry-push endpoints have no cluster meaning in Hydra. */
const UNSUPPORTED: Array<[string, string, string]> = [
  ['post', '/api/copy', 'copying a model is not supported by Hydra: copy it on the node (ollama cp) and the cluster lists it within a heartbeat'],
  ['post', '/api/create', 'creating a model is not supported by Hydra: create it on a node (ollama create) and the cluster lists it within a heartbeat'],
  ['post', '/api/push', 'pushing a model is not supported by Hydra: push it from the node that has it (ollama push)'],
  ['all', '/api/blobs/:digest', 'blob upload is not supported by Hydra: blobs belong to one node; use ollama create on that node'],
];

/** The job's outcome as one Ollama answer (non-streaming). */
async function answerOnce(ctx: ApiContext, res: Response, request: JobRequest, render: (r: InferResult) => unknown): Promise<void> {
  const out = await submitJob(ctx, request, { watch: true, requestId: requestIdOf(res.req), keyId: keyIdOf(res.req, ctx.config.API_KEYS) });
  if (out.kind === 'cached') {
    setJobHeaders(res, out.view.id, out.view.result.node_id);
    return void res.json(render(out.view.result));
  }
  const job = { ...out.job, watch: out.job.watch! };
  setJobHeaders(res, job.id, null);
  const gone = clientGone(res, () => cancelOnDisconnect(ctx, job.id, job.payload, 'the client disconnected from its Ollama request'));
  const end = await waitForEnd(ctx, job, waitLimitMs(ctx, undefined), gone);
  switch (end.kind) {
    case 'completed':
      setJobHeaders(res, job.id, end.view.result?.node_id);
      return void res.json(render(end.view.result!));
    case 'failed':
      setJobHeaders(res, job.id, end.view.result?.node_id ?? end.view.routing_decision.selected_node);
      return sendError(res, end.error);
    case 'cancelled':
    case 'gone':
      return sendError(res, end.error);
    case 'running':
      // Ollama's protocol has no "poll later": a wait past WAIT_MAX_MS gives up the job rather than leave it orphaned.
      if (gone.aborted) return;
      cancelJob(ctx, job.id, 'the Ollama request waited longer than WAIT_MAX_MS').catch(() => undefined);
      return sendError(res, new HydraError(ErrorCode.Timeout, `the answer took longer than WAIT_MAX_MS (${ctx.config.WAIT_MAX_MS} ms); ask with "stream": true for long answers`));
    case 'unknown':
      res.setHeader('Retry-After', String(REDIS_RETRY_AFTER_S));
      return sendError(res, new HydraError(ErrorCode.Unavailable, 'the queue store (Redis) became unavailable while waiting for the answer; retry shortly', { retryable: true }));
  }
}

/** generate or chat: NDJSON from the job's stream (default), or one object. */
async function answerText(ctx: ApiContext, res: Response, kind: TextKind, model: string, request: JobRequest, stream: boolean): Promise<void> {
  if (!stream) return answerOnce(ctx, res, request, (r) => finalChunk(kind, model, r, true));
  const frame: InferenceFrame = { piece: (event, text) => pieceChunk(kind, model, event, text), final: (r) => finalChunk(kind, model, r, false) };
  const out = await submitJob(ctx, request, { watch: false, requestId: requestIdOf(res.req), keyId: keyIdOf(res.req, ctx.config.API_KEYS) });
  if (out.kind === 'cached') {
    // A cached answer streams as Ollama would stream a fast one: the text (and thinking) as pieces, then the end.
    const r = out.view.result;
    setJobHeaders(res, out.view.id, r.node_id);
    const w = new NdjsonWriter(res);
    const thinking = kind === 'generate' ? r.thinking : r.message?.thinking;
    const text = kind === 'generate' ? r.response : r.message?.content;
    if (thinking) w.line(frame.piece('thinking', thinking));
    if (text) w.line(frame.piece('token', text));
    w.line(frame.final(r));
    return w.end();
  }
  const { job } = out;
  const reader = await readJobStream(ctx, job.id, '0', job.payload.detach === true);
  // Ollama clients never resume a stream, so a client that leaves takes its job at once (no reconnect grace).
  await sendInferenceNdjson(res, reader, job.id, frame, (why) => cancelOnDisconnect(ctx, job.id, job.payload, why));
}

/** Empty request with keep_alive 0: unload the model on every healthy node that has it loaded. */
async function unload(ctx: ApiContext, res: Response, kind: TextKind, model: string): Promise<void> {
  const nodes = await ctx.nodes();
  if (!nodes.some((n) => n.models_available.some((m) => sameModel(m.name, model)))) throw modelNotFound(model);
  const targets = nodes.filter((n) => n.healthy && n.models_loaded.some((l) => sameModel(l.name, model)));
  const gone = clientGone(res);
  const outcomes = await runAdmin(ctx, { op: 'unload', model }, targets, gone, undefined, (refs) => setJobHeaders(res, refs.map((r) => r.job_id).join(',') || null, refs.map((r) => r.node_id).join(',') || null));
  const failed = failureOf('unload', model, outcomes);
  if (failed) return sendError(res, failed);
  res.json(loadAnswer(kind, model, 'unload'));
}

/**
 * Empty request otherwise: Ollama loads the model. When a healthy node has it loaded already, that is the answer at
 * once (no job); otherwise a generate job with no prompt and num_predict 0 goes through the queue like any request,
 * so the scheduler picks the node and the node loads it (keep_alive passed on).
 */
async function load(ctx: ApiContext, res: Response, kind: TextKind, model: string, keepAlive: string | number | undefined, hints: Hints): Promise<void> {
  const warm = (await ctx.nodes()).find((n) => n.healthy && (!hints.node_id || n.id === hints.node_id) && n.models_loaded.some((l) => sameModel(l.name, model)));
  if (warm) {
    setJobHeaders(res, null, warm.id);
    return void res.json(loadAnswer(kind, model, 'load'));
  }
  await answerOnce(ctx, res, loadRequest(model, keepAlive, hints), () => loadAnswer(kind, model, 'load'));
}

export function ollamaRouter(ctx: ApiContext): Router {
  const r = Router();
  const hints = (req: Request) => hintsOf(req, ctx.config.API_KEY_PRIORITIES);

  // Clients probe `/` to see whether a server is Ollama; HEAD is answered by express from the GET route.
  r.get('/', (_req, res) => void res.type('text/plain').send('Ollama is running'));
  r.get('/api/version', (_req, res) => void res.json({ version: VERSION }));

  r.post(
    '/api/generate',
    route(async (req: Request, res: Response) => {
      const body = parseBody(GenerateBodySchema, req.body);
      const h = hints(req);
      if (isEmptyRequest(body)) return isZeroKeepAlive(body.keep_alive) ? unload(ctx, res, 'generate', body.model) : load(ctx, res, 'generate', body.model, body.keep_alive, h);
      await answerText(ctx, res, 'generate', body.model, generateRequest(body, h), body.stream !== false);
    }),
  );

  r.post(
    '/api/chat',
    route(async (req: Request, res: Response) => {
      const body = parseBody(ChatBodySchema, req.body);
      const h = hints(req);
      if (isEmptyRequest(body)) return isZeroKeepAlive(body.keep_alive) ? unload(ctx, res, 'chat', body.model) : load(ctx, res, 'chat', body.model, body.keep_alive, h);
      await answerText(ctx, res, 'chat', body.model, chatRequest(body, h), body.stream !== false);
    }),
  );

  r.post(
    '/api/embed',
    route(async (req: Request, res: Response) => {
      const body = parseBody(EmbedBodySchema, req.body);
      await answerOnce(ctx, res, embedRequest(body, hints(req)), (result) => embedAnswer(body.model, result));
    }),
  );

  r.post(
    '/api/embeddings',
    route(async (req: Request, res: Response) => {
      const body = parseBody(EmbeddingsBodySchema, req.body);
      await answerOnce(ctx, res, embedRequest({ ...body, input: body.prompt }, hints(req)), (result) => ({ embedding: result.embeddings?.[0] ?? [] }));
    }),
  );

  r.get(
    '/api/tags',
    route(async (_req: Request, res: Response) => void res.json(tagsOf(await ctx.nodes()))),
  );

  r.get(
    '/api/ps',
    route(async (_req: Request, res: Response) => void res.json(psOf(await ctx.nodes()))),
  );

  r.post(
    '/api/show',
    route(async (req: Request, res: Response) => {
      const body = parseBody(ShowBodySchema, req.body);
      const shown = await showModel(await ctx.nodes(), body.model, body.verbose);
      setJobHeaders(res, null, shown.node);
      res.json(shown.body);
    }),
  );

  r.post(
    '/api/pull',
    route(async (req: Request, res: Response) => {
      const body = parseBody(PullBodySchema, req.body);
      const h = hints(req);
      const nodes = await ctx.nodes();
      const targets = namedNodes(nodes, [...(body.nodes ?? []), ...(h.node_id ? [h.node_id] : [])]) ?? pullTargets(nodes, body.model);
      const gone = clientGone(res);
      const call = { op: 'pull' as const, model: body.model, ...(body.insecure === undefined ? {} : { insecure: body.insecure }) };
      const tagJobs = (refs: { job_id: string; node_id: string }[]) => setJobHeaders(res, refs.map((x) => x.job_id).join(','), refs.map((x) => x.node_id).join(','));
      if (body.stream === false) {
        const failed = failureOf('pull', body.model, await runAdmin(ctx, call, targets, gone, undefined, tagJobs));
        if (failed) return sendError(res, failed);
        return void res.json({ status: 'success' });
      }
      const w = new NdjsonWriter(res);
      const outcomes = await runAdmin(
        ctx,
        call,
        targets,
        gone,
        // ollama-js ends a pull at the first `status: "success"` line: one node's success must not read as all of them.
        (node, p) => w.line({ ...p, ...(p.status === 'success' ? { status: `success on node ${node}` } : {}), node }),
        (refs) => {
          tagJobs(refs);
          w.line({ status: `pulling ${body.model} on ${refs.map((x) => x.node_id).join(', ')}` });
        },
      );
      for (const o of outcomes) if (o.ok) w.line({ status: `success on node ${o.node_id}`, node: o.node_id });
      const failed = failureOf('pull', body.model, outcomes);
      if (failed) return w.fail(failed);
      w.line({ status: 'success' });
      w.end();
    }),
  );

  r.delete(
    '/api/delete',
    route(async (req: Request, res: Response) => {
      const body = parseBody(DeleteBodySchema, req.body);
      const h = hints(req);
      const nodes = await ctx.nodes();
      const targets = namedNodes(nodes, [...(body.nodes ?? []), ...(h.node_id ? [h.node_id] : [])]) ?? deleteTargets(nodes, body.model);
      const refsHeader = (refs: { job_id: string; node_id: string }[]) => setJobHeaders(res, refs.map((x) => x.job_id).join(','), refs.map((x) => x.node_id).join(','));
      const failed = failureOf('delete', body.model, await runAdmin(ctx, { op: 'delete', model: body.model }, targets, clientGone(res), undefined, refsHeader));
      if (failed) return sendError(res, failed);
      res.status(200).end();
    }),
  );

  for (const [method, path, message] of UNSUPPORTED) {
    r[method as 'post' | 'all'](path, (_req: Request, res: Response) => void res.status(501).json({ error: message }));
  }

  return r;
}
