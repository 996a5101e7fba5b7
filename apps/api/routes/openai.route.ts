// The OpenAI API (/v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models) as a drop-in over Hydra's queue:
// parse the OpenAI body, submit it as a Hydra job like /v1/jobs does, frame the result (or its stream) in OpenAI's shape.
import { Router, type Request, type Response } from 'express';
import { ErrorCode, HydraError, type InferResult, type JobRequest } from '../../../libs/core/index.js';
import { canonicalModel } from '../../../libs/scheduling/index.js';
import { requestIdOf } from '../access-log.js';
import { keyIdOf } from '../auth.js';
import type { ApiContext } from '../context.js';
import { clientGone } from '../client-gone.js';
import { badRequest, route, sendError } from '../errors.js';
import { hintsOf, setJobHeaders } from '../hints.js';
import { cancelOnDisconnect, submitJob, waitForEnd, waitLimitMs, type QueuedJob } from '../services/jobs.js';
import { readJobStream, type StreamItem } from '../services/stream-reader.js';
import { chatCompletion, embeddingList, modelList, textCompletion, type AnswerMeta } from '../openai/answer.js';
import { chatJobRequest, completionJobRequest, embeddingJobRequest, parseChatCompletion, parseCompletion, parseEmbedding, toChatMessages } from '../openai/request.js';
import { chatChunks, completionChunks, sendOpenAISse, type ChunkShape } from '../openai/sse.js';

/** How one endpoint frames its answer: a whole object, or (when the client asked to stream) SSE chunks. */
interface Framing {
  model: string;
  plain(meta: AnswerMeta, r: InferResult): unknown;
  /** Set when the client asked for a stream. */
  chunks?: (meta: AnswerMeta) => ChunkShape;
  includeUsage?: boolean;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

export function openaiRouter(ctx: ApiContext): Router {
  const r = Router();

  r.post(
    '/v1/chat/completions',
    route(async (req: Request, res: Response) => {
      const parsed = parseChatCompletion(req.body);
      if (!parsed.ok) return sendError(res, badRequest(parsed.problems));
      const b = parsed.value;
      const messages = toChatMessages(b.messages);
      if (!messages.ok) return sendError(res, badRequest(messages.problems));
      const includeUsage = b.stream_options?.include_usage === true;
      await answer(ctx, res, chatJobRequest(b, messages.value, hintsOf(req, ctx.config.API_KEY_PRIORITIES)), {
        model: b.model,
        plain: chatCompletion,
        ...(b.stream ? { chunks: (meta: AnswerMeta) => chatChunks(meta, includeUsage), includeUsage } : {}),
      });
    }),
  );

  r.post(
    '/v1/completions',
    route(async (req: Request, res: Response) => {
      const parsed = parseCompletion(req.body);
      if (!parsed.ok) return sendError(res, badRequest(parsed.problems));
      const b = parsed.value;
      const includeUsage = b.stream_options?.include_usage === true;
      await answer(ctx, res, completionJobRequest(b, hintsOf(req, ctx.config.API_KEY_PRIORITIES)), {
        model: b.model,
        plain: textCompletion,
        ...(b.stream ? { chunks: (meta: AnswerMeta) => completionChunks(meta, includeUsage), includeUsage } : {}),
      });
    }),
  );

  r.post(
    '/v1/embeddings',
    route(async (req: Request, res: Response) => {
      const parsed = parseEmbedding(req.body);
      if (!parsed.ok) return sendError(res, badRequest(parsed.problems));
      const b = parsed.value;
      // OpenAI's own default is float; the openai clients ask for base64 unless told otherwise.
      const encoding = b.encoding_format ?? 'float';
      await answer(ctx, res, embeddingJobRequest(b, hintsOf(req, ctx.config.API_KEY_PRIORITIES)), { model: b.model, plain: (_meta, result) => embeddingList(b.model, result, encoding) });
    }),
  );

  r.get(
    '/v1/models',
    route(async (_req: Request, res: Response) => {
      res.json({ object: 'list', data: modelList(await ctx.nodes()) });
    }),
  );

  // Model ids hold ':' and may hold '/' (`hf.co/org/model:tag`): take the rest of the path.
  r.get(
    '/v1/models/*id',
    route(async (req: Request, res: Response) => {
      const raw = (req.params as { id?: string | string[] }).id;
      const id = Array.isArray(raw) ? raw.join('/') : String(raw ?? '');
      const model = modelList(await ctx.nodes()).find((m) => canonicalModel(m.id) === canonicalModel(id));
      if (model) return void res.json(model);
      sendError(res, new HydraError(ErrorCode.ModelNotFound, `The model \`${id}\` does not exist or you do not have access to it (no healthy node has it).`, { details: { param: 'model' } }));
    }),
  );

  return r;
}

/** Submit the request and answer it: from the L1 cache, by waiting for the job's end, or by streaming its entries. */
async function answer(ctx: ApiContext, res: Response, request: JobRequest, f: Framing): Promise<void> {
  const created = nowSeconds();
  const out = await submitJob(ctx, request, { watch: f.chunks === undefined, requestId: requestIdOf(res.req), keyId: keyIdOf(res.req, ctx.config.API_KEYS) });
  if (out.kind === 'cached') {
    const result = out.view.result as InferResult;
    const jobId = out.view.id ?? 'cached';
    setJobHeaders(res, out.view.id, result.node_id);
    const meta = { jobId, model: f.model, created };
    if (!f.chunks) return void res.json(f.plain(meta, result));
    return sendOpenAISse(res, { id: '', event: 'done', data: JSON.stringify(result) }, emptyRest(), f.chunks(meta), f.includeUsage === true);
  }
  const { job } = out;
  const meta = { jobId: job.id, model: f.model, created };
  if (f.chunks) return streamJob(ctx, res, job, f.chunks(meta), f.includeUsage === true);
  const gone = clientGone(res, () => cancelOnDisconnect(ctx, job.id, job.payload, 'the client disconnected from its OpenAI request'));
  const end = await waitForEnd(ctx, { ...job, watch: job.watch! }, waitLimitMs(ctx, undefined), gone);
  switch (end.kind) {
    case 'completed':
      setJobHeaders(res, job.id, end.view.result?.node_id);
      return void res.json(f.plain(meta, end.view.result!));
    case 'failed':
      setJobHeaders(res, job.id, end.view.routing_decision.selected_node);
      return sendError(res, end.error);
    case 'cancelled':
    case 'gone':
      setJobHeaders(res, job.id, null);
      return sendError(res, end.error);
    case 'running':
      // An OpenAI client cannot poll: it gets an error, and the job, which goes on, stays readable under /v1/jobs.
      setJobHeaders(res, job.id, null);
      return sendError(res, new HydraError(ErrorCode.Timeout, `job ${job.id} is still ${end.state} after the wait limit (WAIT_MAX_MS); it goes on: read its result at /v1/jobs/${job.id}`));
    case 'unknown':
      setJobHeaders(res, job.id, null);
      return sendError(res, new HydraError(ErrorCode.Unavailable, `the queue store (Redis) became unavailable while job ${job.id} ran; the job was accepted: read its result at /v1/jobs/${job.id} once Redis is back`));
  }
}

async function* emptyGenerator(): AsyncGenerator<StreamItem> {}
const emptyRest = (): AsyncIterator<StreamItem> => emptyGenerator();

/**
 * Stream a queued job. The status line waits for the job's first entry, so X-Hydra-Node names the node that took it
 * (and a job that fails before its first token answers a plain HTTP error). OpenAI clients never resume a stream, so a
 * client that leaves before the end cancels the job at once, without the reconnect grace of /v1/jobs/:id/stream.
 */
async function streamJob(ctx: ApiContext, res: Response, job: QueuedJob, shape: ChunkShape, includeUsage: boolean): Promise<void> {
  const reader = await readJobStream(ctx, job.id, '0', job.payload.detach === true);
  res.on('close', () => {
    const ended = reader.ended;
    reader.close();
    if (!ended) cancelOnDisconnect(ctx, job.id, job.payload, 'the client closed its OpenAI stream');
  });
  const items = reader[Symbol.asyncIterator]();
  let first: StreamItem | undefined;
  while (!first) {
    const next = await items.next();
    if (next.done) break;
    if (next.value.event !== 'idle') first = next.value;
  }
  if (!first) {
    if (!res.destroyed) sendError(res, new HydraError(ErrorCode.Internal, `the stream of job ${job.id} ended without an answer`));
    return;
  }
  const node = ('node' in first ? first.node : undefined) ?? (first.event === 'done' ? (JSON.parse(first.data) as InferResult).node_id : null);
  setJobHeaders(res, job.id, node);
  if (first.event === 'error') {
    const e = JSON.parse(first.data) as { code?: ErrorCode; message?: string };
    return sendError(res, new HydraError(e.code ?? ErrorCode.Internal, e.message ?? `job ${job.id} failed`));
  }
  await sendOpenAISse(res, first, items, shape, includeUsage);
}
