// Ollama's native API on the simulated node: version, tags, ps, show, generate, chat, embed (field names from Ollama's docs/api.md).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { elapsedNs, type InferenceCtx, type SimCore } from './sim-core.js';
import { SimHttpError, isRecord, parseRequest, readJsonBody, sendJson, startStream, writePiece, type Route } from './sim-http.js';
import { parseKeepAlive } from './sim-memory.js';
import { modelDetails, modelDigest, showBody, tagsEntry, type SimModelSpec } from './sim-models.js';
import { countPromptTokens, planAnswer, type AnswerFormat, type PlannedAnswer } from './sim-text.js';

const SIM_VERSION = '0.12.0-simulated';
/** What /api/ps shows as `expires_at` for a model kept loaded for good (Ollama shows a far-future time too). */
const NEVER = '2318-01-01T00:00:00.000Z';
/** Context length /api/ps reports for loaded models (Ollama's default num_ctx). */
const LOADED_CONTEXT_LENGTH = 4096;

const OptionsSchema = z
  .object({
    num_predict: z.number().int().optional(),
    /** Sim-only: natural length of a plain-text answer, in tokens. */
    sim_answer_tokens: z.number().int().min(0).max(100_000).optional(),
  })
  .loose();
const FormatField = z.union([z.literal('json'), z.literal(''), z.record(z.string(), z.unknown())]).optional();
const KeepAliveField = z.union([z.string(), z.number()]).optional();

const GenerateBodySchema = z
  .object({
    model: z.string(),
    prompt: z.string().optional(),
    system: z.string().optional(),
    stream: z.boolean().optional(),
    format: FormatField,
    options: OptionsSchema.optional(),
    keep_alive: KeepAliveField,
  })
  .loose();

const ChatBodySchema = z
  .object({
    model: z.string(),
    messages: z.array(z.object({ role: z.string(), content: z.string().optional() }).loose()).optional(),
    stream: z.boolean().optional(),
    format: FormatField,
    options: OptionsSchema.optional(),
    keep_alive: KeepAliveField,
  })
  .loose();

const EmbedBodySchema = z
  .object({
    model: z.string(),
    input: z.union([z.string(), z.array(z.string())]),
    dimensions: z.number().int().positive().optional(),
    options: OptionsSchema.optional(),
    keep_alive: KeepAliveField,
  })
  .loose();

const LegacyEmbeddingsBodySchema = z.object({ model: z.string(), prompt: z.string(), keep_alive: KeepAliveField }).loose();

const toFormat = (f: 'json' | '' | Record<string, unknown> | undefined): AnswerFormat | undefined => (f === '' ? undefined : f);
const createdAt = (): string => new Date().toISOString();

export function ollamaRoutes(core: SimCore): Array<[string, Route]> {
  return [
    ['GET /', async (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('Ollama is running (simulated)');
    }],
    ['GET /api/version', async (_req, res) => sendJson(res, 200, { version: SIM_VERSION })],
    ['GET /api/tags', async (_req, res) => sendJson(res, 200, { models: core.opts.models.map((m) => tagsEntry(m, core.modifiedAt)) })],
    ['GET /api/ps', async (_req, res) => sendJson(res, 200, { models: psEntries(core) })],
    ['POST /api/show', async (req, res) => {
      const body = await readJsonBody(req);
      const name = isRecord(body) ? (typeof body.model === 'string' && body.model ? body.model : body.name) : undefined;
      if (typeof name !== 'string' || name === '') throw new SimHttpError(400, 'model is required');
      sendJson(res, 200, showBody(core.model(name), core.modifiedAt));
    }],
    ['POST /api/generate', (req, res) => generate(core, req, res)],
    ['POST /api/chat', (req, res) => chat(core, req, res)],
    ['POST /api/embed', (req, res) => embed(core, req, res)],
    ['POST /api/embeddings', (req, res) => legacyEmbeddings(core, req, res)],
  ];
}

function psEntries(core: SimCore): Array<Record<string, unknown>> {
  return core.memory.loaded().map((l) => {
    const m = core.model(l.name);
    return {
      name: m.name,
      model: m.name,
      size: l.size_bytes,
      digest: modelDigest(m),
      details: modelDetails(m),
      expires_at: l.expires_at ?? NEVER,
      size_vram: l.size_bytes,
      context_length: LOADED_CONTEXT_LENGTH,
    };
  });
}

function requireCompletion(m: SimModelSpec, what: string): void {
  if (m.embeddingLength !== undefined) throw new SimHttpError(400, `"${m.name}" does not support ${what}`);
}

async function generate(core: SimCore, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const b = parseRequest(GenerateBodySchema, await readJsonBody(req));
  const keepAliveMs = parseKeepAlive(b.keep_alive);
  const rc = core.open(res);
  await core.run(rc, 'ollama', async () => {
    const m = core.model(b.model);
    requireCompletion(m, 'generate');
    if (!b.prompt && !b.system) return loadOrUnload(core, rc, m, keepAliveMs, 'response');
    const lease = await core.memory.acquire(m, rc.signal);
    try {
      const plan = planAnswer({ model: m.name, prompt: b.prompt ?? '', numPredict: b.options?.num_predict, answerTokens: b.options?.sim_answer_tokens, format: toFormat(b.format) });
      await answer(core, rc, m, 'generate', plan, countPromptTokens([b.system ?? '', b.prompt ?? '']), b.stream !== false, lease.loadNs);
    } finally {
      lease.release(keepAliveMs);
    }
  });
}

async function chat(core: SimCore, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const b = parseRequest(ChatBodySchema, await readJsonBody(req));
  const keepAliveMs = parseKeepAlive(b.keep_alive);
  const rc = core.open(res);
  await core.run(rc, 'ollama', async () => {
    const m = core.model(b.model);
    requireCompletion(m, 'chat');
    const messages = b.messages ?? [];
    if (messages.length === 0) return loadOrUnload(core, rc, m, keepAliveMs, 'message');
    const lastUser = [...messages].reverse().find((x) => x.role === 'user') ?? messages[messages.length - 1];
    const lease = await core.memory.acquire(m, rc.signal);
    try {
      const plan = planAnswer({ model: m.name, prompt: lastUser?.content ?? '', numPredict: b.options?.num_predict, answerTokens: b.options?.sim_answer_tokens, format: toFormat(b.format) });
      await answer(core, rc, m, 'chat', plan, countPromptTokens(messages.map((x) => x.content ?? '')), b.stream !== false, lease.loadNs);
    } finally {
      lease.release(keepAliveMs);
    }
  });
}

/** Ollama's empty request: loads the model (or unloads it with keep_alive 0) and answers one done object. */
async function loadOrUnload(core: SimCore, rc: InferenceCtx, m: SimModelSpec, keepAliveMs: number | null, field: 'response' | 'message'): Promise<void> {
  let reason: 'load' | 'unload';
  if (keepAliveMs === 0) {
    core.memory.unload(m.name);
    reason = 'unload';
  } else {
    await core.memory.preload(m, keepAliveMs, rc.signal);
    reason = 'load';
  }
  const empty = field === 'response' ? { response: '' } : { message: { role: 'assistant', content: '' } };
  sendJson(rc.res, 200, { model: m.name, created_at: createdAt(), ...empty, done: true, done_reason: reason });
}

/** Streams the answer as NDJSON (one object per token, then the final `done: true` one) or sends it as one object. */
async function answer(core: SimCore, rc: InferenceCtx, m: SimModelSpec, kind: 'generate' | 'chat', plan: PlannedAnswer, promptTokens: number, stream: boolean, loadNs: number): Promise<void> {
  const piece = (text: string): Record<string, unknown> => (kind === 'generate' ? { response: text } : { message: { role: 'assistant', content: text } });
  if (stream) startStream(rc.res, 'application/x-ndjson');
  let text = '';
  const times = await core.decode(rc, m, plan, promptTokens, async (p) => {
    text += p;
    if (stream) await writePiece(rc.res, `${JSON.stringify({ model: m.name, created_at: createdAt(), ...piece(p), done: false })}\n`, rc.signal);
  });
  const final = {
    model: m.name,
    created_at: createdAt(),
    ...piece(stream ? '' : text),
    done: true,
    done_reason: plan.doneReason,
    total_duration: elapsedNs(rc),
    load_duration: loadNs,
    prompt_eval_count: promptTokens,
    prompt_eval_duration: times.promptEvalNs,
    eval_count: plan.pieces.length,
    eval_duration: times.evalNs,
  };
  if (stream) rc.res.end(`${JSON.stringify(final)}\n`);
  else sendJson(rc.res, 200, final);
}

async function embed(core: SimCore, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const b = parseRequest(EmbedBodySchema, await readJsonBody(req));
  const keepAliveMs = parseKeepAlive(b.keep_alive);
  const inputs = typeof b.input === 'string' ? [b.input] : b.input;
  const rc = core.open(res);
  await core.run(rc, 'ollama', async () => {
    const m = core.model(b.model);
    const out = await core.embed(rc, m, inputs, b.dimensions, keepAliveMs);
    sendJson(res, 200, { model: m.name, embeddings: out.embeddings, total_duration: elapsedNs(rc), load_duration: out.loadNs, prompt_eval_count: out.promptTokens });
  });
}

async function legacyEmbeddings(core: SimCore, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const b = parseRequest(LegacyEmbeddingsBodySchema, await readJsonBody(req));
  const keepAliveMs = parseKeepAlive(b.keep_alive);
  const rc = core.open(res);
  await core.run(rc, 'ollama', async () => {
    const out = await core.embed(rc, core.model(b.model), [b.prompt], undefined, keepAliveMs);
    sendJson(res, 200, { embedding: out.embeddings[0] ?? [] });
  });
}
