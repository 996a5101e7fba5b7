// Ollama's /api/generate and /api/chat on the simulated node: text, JSON formats, reasoning (think), tool calls, images, and the empty-request load/unload.
import { randomInt } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { elapsedNs, type InferenceCtx, type SimCore } from './sim-core.js';
import { parseRequest, readJsonBody, sendJson, startStream, writePiece, type Route } from './sim-http.js';
import { parseKeepAlive, type Lease } from './sim-memory.js';
import type { SimModelSpec } from './sim-models.js';
import { countPromptTokens, type AnswerFormat } from './sim-text.js';
import { checkCapabilities, checkImages, extraPromptTokens, planTurn, resolveThink, type PlannedTurn, type ToolDef } from './sim-turn.js';

const OptionsSchema = z
  .object({
    num_predict: z.number().int().optional(),
    /** Context per slot; a model loaded with another one is reloaded (once idle), as on Ollama. */
    num_ctx: z.number().int().optional(),
    /** Sim-only: natural length of a plain-text answer, in tokens. */
    sim_answer_tokens: z.number().int().min(0).max(100_000).optional(),
  })
  .loose();
const FormatField = z.union([z.literal('json'), z.literal(''), z.record(z.string(), z.unknown())]).optional();
const KeepAliveField = z.union([z.string(), z.number()]).optional();
const ThinkField = z.union([z.boolean(), z.enum(['low', 'medium', 'high'])]).optional();
const ImagesField = z.array(z.string()).optional();
export const ToolsField = z.array(z.object({ function: z.object({ name: z.string().min(1), parameters: z.unknown().optional() }).loose() }).loose()).optional();

/** Fields generate and chat share (how to answer, not what to answer). */
const turnFields = {
  stream: z.boolean().optional(),
  format: FormatField,
  options: OptionsSchema.optional(),
  keep_alive: KeepAliveField,
  think: ThinkField,
};

const GenerateBodySchema = z
  .object({
    model: z.string(),
    prompt: z.string().optional(),
    suffix: z.string().optional(),
    system: z.string().optional(),
    images: ImagesField,
    ...turnFields,
  })
  .loose();

const ChatMessageSchema = z.object({ role: z.string(), content: z.string().optional(), images: ImagesField }).loose();
const ChatBodySchema = z
  .object({
    model: z.string(),
    messages: z.array(ChatMessageSchema).optional(),
    tools: ToolsField,
    ...turnFields,
  })
  .loose();

const toFormat = (f: 'json' | '' | Record<string, unknown> | undefined): AnswerFormat | undefined => (f === '' ? undefined : f);
const createdAt = (): string => new Date().toISOString();

/** Ollama's tool call id: `call_` and 8 random lowercase letters or digits. */
export function toolCallId(): string {
  const letters = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return `call_${Array.from({ length: 8 }, () => letters[randomInt(letters.length)]).join('')}`;
}

export function ollamaChatRoutes(core: SimCore): Array<[string, Route]> {
  return [
    ['POST /api/generate', (req, res) => generate(core, req, res)],
    ['POST /api/chat', (req, res) => chat(core, req, res)],
  ];
}

async function generate(core: SimCore, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const b = parseRequest(GenerateBodySchema, await readJsonBody(req));
  const keepAliveMs = parseKeepAlive(b.keep_alive);
  const images = b.images ?? [];
  checkImages(images, 'images');
  const rc = core.open(res);
  await core.run(rc, 'ollama', async () => {
    const m = core.model(b.model);
    const think = resolveThink(m, b.model, b.think);
    checkCapabilities(m, b.model, { kind: 'generate', tools: false, images: images.length, suffix: Boolean(b.suffix) });
    if (!b.prompt && !b.system) return loadOrUnload(core, rc, m, b.options?.num_ctx, keepAliveMs, 'response');
    const lease = await core.memory.acquire(m, b.options?.num_ctx, rc.signal);
    try {
      const turn = planTurn({ model: m.name, prompt: b.prompt ?? '', numPredict: b.options?.num_predict, answerTokens: b.options?.sim_answer_tokens, format: toFormat(b.format), images: images.length, ...(think ? { think } : {}) });
      const promptTokens = countPromptTokens([b.system ?? '', b.prompt ?? '']) + extraPromptTokens(images.length, undefined);
      await answer(core, rc, lease, 'generate', turn, promptTokens, b.stream !== false);
    } finally {
      lease.release(keepAliveMs);
    }
  });
}

async function chat(core: SimCore, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const b = parseRequest(ChatBodySchema, await readJsonBody(req));
  const keepAliveMs = parseKeepAlive(b.keep_alive);
  const messages = b.messages ?? [];
  for (const [i, msg] of messages.entries()) checkImages(msg.images ?? [], `messages[${i}].images`);
  const images = messages.reduce((n, msg) => n + (msg.images?.length ?? 0), 0);
  const tools: ToolDef[] = b.tools ?? [];
  const rc = core.open(res);
  await core.run(rc, 'ollama', async () => {
    const m = core.model(b.model);
    const think = resolveThink(m, b.model, b.think);
    checkCapabilities(m, b.model, { kind: 'chat', tools: tools.length > 0, images, suffix: false });
    if (messages.length === 0) return loadOrUnload(core, rc, m, b.options?.num_ctx, keepAliveMs, 'message');
    const last = messages[messages.length - 1];
    const lastUser = [...messages].reverse().find((x) => x.role === 'user') ?? last;
    const lease = await core.memory.acquire(m, b.options?.num_ctx, rc.signal);
    try {
      const turn = planTurn({
        model: m.name,
        prompt: lastUser?.content ?? '',
        numPredict: b.options?.num_predict,
        answerTokens: b.options?.sim_answer_tokens,
        format: toFormat(b.format),
        images,
        ...(think ? { think } : {}),
        ...(tools[0] ? { tool: tools[0] } : {}),
        ...(last?.role === 'tool' ? { toolResult: last.content ?? '' } : {}),
      });
      const promptTokens = countPromptTokens(messages.map((x) => x.content ?? '')) + extraPromptTokens(images, tools);
      await answer(core, rc, lease, 'chat', turn, promptTokens, b.stream !== false);
    } finally {
      lease.release(keepAliveMs);
    }
  });
}

/** Ollama's empty request: loads the model (or unloads it with keep_alive 0) and answers one done object. */
async function loadOrUnload(core: SimCore, rc: InferenceCtx, m: SimModelSpec, numCtx: number | undefined, keepAliveMs: number | null, field: 'response' | 'message'): Promise<void> {
  let reason: 'load' | 'unload';
  if (keepAliveMs === 0) {
    core.memory.unload(m.name);
    reason = 'unload';
  } else {
    await core.memory.preload(m, numCtx, keepAliveMs, rc.signal);
    reason = 'load';
  }
  const empty = field === 'response' ? { response: '' } : { message: { role: 'assistant', content: '' } };
  sendJson(rc.res, 200, { model: m.name, created_at: createdAt(), ...empty, done: true, done_reason: reason });
}

interface Said {
  content?: string;
  thinking?: string;
  tool_calls?: unknown[];
}

/**
 * Streams the turn as NDJSON — reasoning pieces (`thinking`), then answer pieces, then the tool calls in one object,
 * then the final `done: true` one — or sends it as one object.
 */
async function answer(core: SimCore, rc: InferenceCtx, lease: Lease, kind: 'generate' | 'chat', turn: PlannedTurn, promptTokens: number, stream: boolean): Promise<void> {
  const m = lease.spec;
  const said = (s: Said): Record<string, unknown> => {
    const extra = { ...(s.thinking ? { thinking: s.thinking } : {}), ...(s.tool_calls?.length ? { tool_calls: s.tool_calls } : {}) };
    return kind === 'generate' ? { response: s.content ?? '', ...extra } : { message: { role: 'assistant', content: s.content ?? '', ...extra } };
  };
  const line = (body: Record<string, unknown>): string => `${JSON.stringify({ model: m.name, created_at: createdAt(), ...body })}\n`;
  if (stream) startStream(rc.res, 'application/x-ndjson');
  let text = '';
  let thinking = '';
  const times = await core.decode(rc, lease, turn.pieces, promptTokens, async (p) => {
    if (p.kind === 'tool') return;
    if (p.kind === 'thinking') thinking += p.text;
    else text += p.text;
    if (stream) await writePiece(rc.res, line({ ...said(p.kind === 'thinking' ? { thinking: p.text } : { content: p.text }), done: false }), rc.signal);
  });
  const toolCalls = turn.toolCalls.map((c, index) => ({ id: toolCallId(), function: { index, name: c.name, arguments: c.arguments } }));
  if (stream && toolCalls.length > 0) await writePiece(rc.res, line({ ...said({ tool_calls: toolCalls }), done: false }), rc.signal);
  const final = {
    ...said(stream ? {} : { content: text, thinking, tool_calls: toolCalls }),
    done: true,
    done_reason: turn.doneReason,
    total_duration: elapsedNs(rc),
    load_duration: core.reportNs(lease.loadNs),
    prompt_eval_count: promptTokens,
    prompt_eval_duration: times.promptEvalNs,
    eval_count: turn.pieces.length,
    eval_duration: times.evalNs,
  };
  if (stream) rc.res.end(line(final));
  else sendJson(rc.res, 200, { model: m.name, created_at: createdAt(), ...final });
}
