// The OpenAI-compatible API on the simulated node, in the shapes Ollama's /v1 endpoints answer: chat completions (tools, reasoning, images), completions, embeddings, models.
import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import { toolCallId, ToolsField } from './ollama-chat-routes.js';
import { type InferenceCtx, type SimCore } from './sim-core.js';
import { SimHttpError, parseRequest, readJsonBody, sendJson, startStream, writePiece, type Route } from './sim-http.js';
import { DEFAULT_KEEP_ALIVE_MS, type Lease } from './sim-memory.js';
import type { SimModelSpec } from './sim-models.js';
import { countPromptTokens, type AnswerFormat } from './sim-text.js';
import { checkCapabilities, checkImages, extraPromptTokens, planTurn, resolveThink, type PlannedTurn, type ThinkValue, type ToolDef } from './sim-turn.js';

const SYSTEM_FINGERPRINT = 'fp_ollama';

const ResponseFormatSchema = z
  .object({
    type: z.enum(['text', 'json_object', 'json_schema']),
    json_schema: z.object({ schema: z.record(z.string(), z.unknown()).optional() }).loose().optional(),
  })
  .loose();

const ImageUrlField = z.union([z.string(), z.object({ url: z.string() }).loose()]).optional();
const ContentSchema = z.union([z.string(), z.null(), z.array(z.object({ type: z.string(), text: z.string().optional(), image_url: ImageUrlField }).loose())]);
const ToolChoiceSchema = z.union([z.enum(['none', 'auto', 'required']), z.object({ function: z.object({ name: z.string() }).loose() }).loose()]);
const EffortSchema = z.enum(['none', 'minimal', 'low', 'medium', 'high', 'xhigh', 'max', 'ultra']);

const commonFields = {
  model: z.string(),
  stream: z.boolean().optional(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).loose().nullable().optional(),
  max_tokens: z.number().int().min(0).nullable().optional(),
  max_completion_tokens: z.number().int().min(0).nullable().optional(),
  response_format: ResponseFormatSchema.nullable().optional(),
};

const ChatCompletionBodySchema = z
  .object({
    ...commonFields,
    messages: z.array(z.object({ role: z.string(), content: ContentSchema.optional() }).loose()).min(1),
    tools: ToolsField.nullable(),
    tool_choice: ToolChoiceSchema.nullable().optional(),
    reasoning_effort: EffortSchema.nullable().optional(),
    reasoning: z.object({ effort: EffortSchema.optional() }).loose().nullable().optional(),
  })
  .loose();
const CompletionBodySchema = z.object({ ...commonFields, prompt: z.union([z.string(), z.array(z.string()).min(1)]) }).loose();
const EmbeddingsBodySchema = z
  .object({
    model: z.string(),
    input: z.union([z.string(), z.array(z.string()).min(1)]),
    dimensions: z.number().int().positive().optional(),
    encoding_format: z.enum(['float', 'base64']).optional(),
  })
  .loose();

type ChatCompletionBody = z.infer<typeof ChatCompletionBodySchema>;
type CommonBody = Pick<ChatCompletionBody, 'max_tokens' | 'max_completion_tokens' | 'response_format' | 'stream' | 'stream_options'>;

const unixNow = (): number => Math.floor(Date.now() / 1000);

function formatOf(b: CommonBody): AnswerFormat | undefined {
  const rf = b.response_format;
  if (!rf || rf.type === 'text') return undefined;
  if (rf.type === 'json_schema' && rf.json_schema?.schema) return rf.json_schema.schema;
  return 'json';
}

function textOf(content: z.infer<typeof ContentSchema> | undefined): string {
  if (content === undefined || content === null) return '';
  if (typeof content === 'string') return content;
  return content.map((p) => p.text ?? '').join('');
}

/** Base64 payloads of the `image_url` parts; like Ollama's /v1, only `data:` URLs are accepted. */
function imagesOf(content: z.infer<typeof ContentSchema> | undefined): string[] {
  if (!Array.isArray(content)) return [];
  return content.flatMap((p) => {
    if (p.type !== 'image_url') return [];
    const url = typeof p.image_url === 'string' ? p.image_url : (p.image_url?.url ?? '');
    const comma = url.indexOf(',');
    if (!url.startsWith('data:') || comma < 0 || !url.slice(0, comma).endsWith(';base64')) throw new SimHttpError(400, 'invalid image input (send a data:image/...;base64, URL)');
    return [url.slice(comma + 1)];
  });
}

/** Ollama's mapping of OpenAI's reasoning effort to `think` (absent: the model's default). */
function thinkOf(b: ChatCompletionBody): ThinkValue | undefined {
  const effort = b.reasoning?.effort ?? b.reasoning_effort ?? undefined;
  if (effort === undefined) return undefined;
  if (effort === 'none') return false;
  if (effort === 'minimal' || effort === 'low') return 'low';
  return effort === 'medium' ? 'medium' : 'high';
}

/** The tool to call: none with `tool_choice: "none"`, the named one when forced, else the first. */
function toolOf(b: ChatCompletionBody): ToolDef | undefined {
  const tools = b.tools ?? [];
  const choice = b.tool_choice;
  if (choice === 'none') return undefined;
  if (typeof choice === 'object' && choice !== null) {
    const named = tools.find((t) => t.function.name === choice.function.name);
    if (!named) throw new SimHttpError(400, `tool_choice names "${choice.function.name}", which is not in tools`);
    return named;
  }
  return tools[0];
}

export function openaiRoutes(core: SimCore): Array<[string, Route]> {
  const models = (): Array<Record<string, unknown>> =>
    core.catalog.list().map((i) => ({ id: i.spec.name, object: 'model', created: Math.floor(Date.parse(i.modifiedAt) / 1000), owned_by: 'library' }));
  return [
    ['GET /v1/models', async (_req, res) => sendJson(res, 200, { object: 'list', data: models() })],
    ['GET /v1/models/*', async (req, res) => {
      const id = decodeURIComponent((req.url ?? '').split('?')[0]?.slice('/v1/models/'.length) ?? '');
      const found = models().find((m) => m.id === id);
      if (!found) throw new SimHttpError(404, `model '${id}' not found`);
      sendJson(res, 200, found);
    }],
    ['POST /v1/chat/completions', async (req, res) => {
      const b = parseRequest(ChatCompletionBodySchema, await readJsonBody(req));
      const images = b.messages.flatMap((x) => imagesOf(x.content));
      checkImages(images, 'image_url');
      const last = b.messages[b.messages.length - 1];
      const lastUser = [...b.messages].reverse().find((x) => x.role === 'user') ?? last;
      const tools = b.tools ?? [];
      const tool = toolOf(b);
      await complete(core, res, 'chat', b, {
        prompt: textOf(lastUser?.content),
        promptTokens: countPromptTokens(b.messages.map((x) => textOf(x.content))) + extraPromptTokens(images.length, tools),
        images: images.length,
        tools: tools.length > 0,
        think: thinkOf(b),
        ...(tool ? { tool } : {}),
        ...(last?.role === 'tool' ? { toolResult: textOf(last.content) } : {}),
      });
    }],
    ['POST /v1/completions', async (req, res) => {
      const b = parseRequest(CompletionBodySchema, await readJsonBody(req));
      const prompt = typeof b.prompt === 'string' ? b.prompt : (b.prompt[0] ?? '');
      await complete(core, res, 'text', b, { prompt, promptTokens: countPromptTokens([prompt]), images: 0, tools: false, think: undefined });
    }],
    ['POST /v1/embeddings', async (req, res) => {
      const b = parseRequest(EmbeddingsBodySchema, await readJsonBody(req));
      const inputs = typeof b.input === 'string' ? [b.input] : b.input;
      const rc = core.open(res);
      await core.run(rc, 'openai', async () => {
        const m = core.model(b.model);
        // Ollama's /v1 takes no num_ctx: the node's default context.
        const out = await core.embed(rc, m, inputs, b.dimensions, DEFAULT_KEEP_ALIVE_MS, undefined);
        sendJson(res, 200, {
          object: 'list',
          data: out.embeddings.map((e, index) => ({ object: 'embedding', index, embedding: b.encoding_format === 'base64' ? toBase64(e) : e })),
          model: m.name,
          usage: { prompt_tokens: out.promptTokens, total_tokens: out.promptTokens },
        });
      });
    }],
  ];
}

function toBase64(v: number[]): string {
  return Buffer.from(new Float32Array(v).buffer).toString('base64');
}

/** What a completion asks beyond the common fields. */
interface CompletionAsk {
  prompt: string;
  promptTokens: number;
  images: number;
  /** The request offers tools (the model must support them, even when `tool` is not called). */
  tools: boolean;
  think: ThinkValue | undefined;
  tool?: ToolDef;
  toolResult?: string;
}

/** Chat or text completion: SSE chunks then `data: [DONE]` when streaming, else one object. */
async function complete(core: SimCore, res: ServerResponse, kind: 'chat' | 'text', b: CommonBody & { model: string }, ask: CompletionAsk): Promise<void> {
  const rc = core.open(res);
  await core.run(rc, 'openai', async () => {
    const m = core.model(b.model);
    const think = resolveThink(m, b.model, ask.think);
    checkCapabilities(m, b.model, { kind: kind === 'chat' ? 'chat' : 'generate', tools: ask.tools, images: ask.images, suffix: false });
    const maxTokens = b.max_completion_tokens ?? b.max_tokens ?? undefined;
    const { promptTokens, tools: _offered, think: _asked, ...turnAsk } = ask;
    const plan = planTurn({ model: m.name, numPredict: maxTokens, format: formatOf(b), ...turnAsk, ...(think ? { think } : {}) });
    const lease = await core.memory.acquire(m, undefined, rc.signal);
    try {
      await (b.stream === true ? streamAnswer(core, rc, lease, kind, plan, promptTokens, b.stream_options?.include_usage === true) : wholeAnswer(core, rc, lease, kind, plan, promptTokens));
    } finally {
      lease.release(DEFAULT_KEEP_ALIVE_MS);
    }
  });
}

function envelope(core: SimCore, m: SimModelSpec, kind: 'chat' | 'text', chunk: boolean): Record<string, unknown> {
  const id = kind === 'chat' ? `chatcmpl-${core.newId()}` : `cmpl-${core.newId()}`;
  const object = kind === 'chat' ? (chunk ? 'chat.completion.chunk' : 'chat.completion') : 'text_completion';
  return { id, object, created: unixNow(), model: m.name, system_fingerprint: SYSTEM_FINGERPRINT };
}

const usageOf = (promptTokens: number, plan: PlannedTurn): Record<string, number> => ({
  prompt_tokens: promptTokens,
  completion_tokens: plan.pieces.length,
  total_tokens: promptTokens + plan.pieces.length,
});

/** Ollama's /v1 calls the reasoning `reasoning`; llama.cpp's server, vLLM and DeepSeek `reasoning_content`. Both are sent. */
const reasoningOf = (text: string): Record<string, string> => (text ? { reasoning: text, reasoning_content: text } : {});

/** `finish_reason`: `tool_calls` when the turn ended in a call, as Ollama's /v1 maps it. */
const finishOf = (plan: PlannedTurn): string => (plan.toolCalls.length > 0 ? 'tool_calls' : plan.doneReason);

const openaiToolCalls = (plan: PlannedTurn): Array<Record<string, unknown>> =>
  plan.toolCalls.map((c, index) => ({ index, id: toolCallId(), type: 'function', function: { name: c.name, arguments: JSON.stringify(c.arguments) } }));

async function streamAnswer(core: SimCore, rc: InferenceCtx, lease: Lease, kind: 'chat' | 'text', plan: PlannedTurn, promptTokens: number, includeUsage: boolean): Promise<void> {
  const head = envelope(core, lease.spec, kind, true);
  const chatChoice = (delta: Record<string, unknown>, finish: string | null): Record<string, unknown> => ({ index: 0, delta: { role: 'assistant', content: '', ...delta }, finish_reason: finish });
  const event = (choice: Record<string, unknown>): string => `data: ${JSON.stringify({ ...head, choices: [choice] })}\n\n`;
  startStream(rc.res, 'text/event-stream');
  await core.decode(rc, lease, plan.pieces, promptTokens, async (p) => {
    if (p.kind === 'tool') return;
    if (kind === 'text') await writePiece(rc.res, event({ index: 0, text: p.text, finish_reason: null }), rc.signal);
    else await writePiece(rc.res, event(chatChoice(p.kind === 'thinking' ? reasoningOf(p.text) : { content: p.text }, null)), rc.signal);
  });
  let tail = '';
  if (plan.toolCalls.length > 0) tail += event(chatChoice({ tool_calls: openaiToolCalls(plan) }, null));
  tail += event(kind === 'chat' ? chatChoice({}, finishOf(plan)) : { index: 0, text: '', finish_reason: plan.doneReason });
  if (includeUsage) tail += `data: ${JSON.stringify({ ...head, choices: [], usage: usageOf(promptTokens, plan) })}\n\n`;
  rc.res.end(`${tail}data: [DONE]\n\n`);
}

async function wholeAnswer(core: SimCore, rc: InferenceCtx, lease: Lease, kind: 'chat' | 'text', plan: PlannedTurn, promptTokens: number): Promise<void> {
  let text = '';
  let reasoning = '';
  await core.decode(rc, lease, plan.pieces, promptTokens, (p) => {
    if (p.kind === 'content') text += p.text;
    else if (p.kind === 'thinking') reasoning += p.text;
  });
  const toolCalls = openaiToolCalls(plan);
  const message = { role: 'assistant', content: text, ...reasoningOf(reasoning), ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}) };
  const choice = kind === 'chat' ? { index: 0, message, finish_reason: finishOf(plan) } : { index: 0, text, finish_reason: plan.doneReason };
  sendJson(rc.res, 200, { ...envelope(core, lease.spec, kind, false), choices: [choice], usage: usageOf(promptTokens, plan) });
}
