// The OpenAI-compatible API on the simulated node, in the shapes Ollama's /v1 endpoints answer: chat completions, completions, embeddings, models.
import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import { type InferenceCtx, type SimCore } from './sim-core.js';
import { SimHttpError, parseRequest, readJsonBody, sendJson, startStream, writePiece, type Route } from './sim-http.js';
import { DEFAULT_KEEP_ALIVE_MS } from './sim-memory.js';
import type { SimModelSpec } from './sim-models.js';
import { countPromptTokens, planAnswer, type AnswerFormat, type PlannedAnswer } from './sim-text.js';

const SYSTEM_FINGERPRINT = 'fp_ollama';

const ResponseFormatSchema = z
  .object({
    type: z.enum(['text', 'json_object', 'json_schema']),
    json_schema: z.object({ schema: z.record(z.string(), z.unknown()).optional() }).loose().optional(),
  })
  .loose();

const ContentSchema = z.union([z.string(), z.null(), z.array(z.object({ type: z.string(), text: z.string().optional() }).loose())]);

const commonFields = {
  model: z.string(),
  stream: z.boolean().optional(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).loose().nullable().optional(),
  max_tokens: z.number().int().min(0).nullable().optional(),
  max_completion_tokens: z.number().int().min(0).nullable().optional(),
  response_format: ResponseFormatSchema.nullable().optional(),
};

const ChatCompletionBodySchema = z
  .object({ ...commonFields, messages: z.array(z.object({ role: z.string(), content: ContentSchema.optional() }).loose()).min(1) })
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

export function openaiRoutes(core: SimCore): Array<[string, Route]> {
  const models = (): Array<Record<string, unknown>> =>
    core.opts.models.map((m) => ({ id: m.name, object: 'model', created: Math.floor(Date.parse(core.modifiedAt) / 1000), owned_by: 'library' }));
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
      const lastUser = [...b.messages].reverse().find((x) => x.role === 'user') ?? b.messages[b.messages.length - 1];
      await complete(core, res, 'chat', b, textOf(lastUser?.content), countPromptTokens(b.messages.map((x) => textOf(x.content))));
    }],
    ['POST /v1/completions', async (req, res) => {
      const b = parseRequest(CompletionBodySchema, await readJsonBody(req));
      const prompt = typeof b.prompt === 'string' ? b.prompt : (b.prompt[0] ?? '');
      await complete(core, res, 'text', b, prompt, countPromptTokens([prompt]));
    }],
    ['POST /v1/embeddings', async (req, res) => {
      const b = parseRequest(EmbeddingsBodySchema, await readJsonBody(req));
      const inputs = typeof b.input === 'string' ? [b.input] : b.input;
      const rc = core.open(res);
      await core.run(rc, 'openai', async () => {
        const m = core.model(b.model);
        const out = await core.embed(rc, m, inputs, b.dimensions, DEFAULT_KEEP_ALIVE_MS);
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

/** Chat or text completion: SSE chunks then `data: [DONE]` when streaming, else one object. */
async function complete(core: SimCore, res: ServerResponse, kind: 'chat' | 'text', b: CommonBody & { model: string }, prompt: string, promptTokens: number): Promise<void> {
  const rc = core.open(res);
  await core.run(rc, 'openai', async () => {
    const m = core.model(b.model);
    if (m.embeddingLength !== undefined) throw new SimHttpError(400, `"${m.name}" does not support ${kind === 'chat' ? 'chat' : 'generate'}`);
    const maxTokens = b.max_completion_tokens ?? b.max_tokens ?? undefined;
    const plan = planAnswer({ model: m.name, prompt, numPredict: maxTokens, format: formatOf(b) });
    const lease = await core.memory.acquire(m, rc.signal);
    try {
      await (b.stream === true ? streamAnswer(core, rc, m, kind, plan, promptTokens, b.stream_options?.include_usage === true) : wholeAnswer(core, rc, m, kind, plan, promptTokens));
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

const usageOf = (promptTokens: number, plan: PlannedAnswer): Record<string, number> => ({
  prompt_tokens: promptTokens,
  completion_tokens: plan.pieces.length,
  total_tokens: promptTokens + plan.pieces.length,
});

async function streamAnswer(core: SimCore, rc: InferenceCtx, m: SimModelSpec, kind: 'chat' | 'text', plan: PlannedAnswer, promptTokens: number, includeUsage: boolean): Promise<void> {
  const head = envelope(core, m, kind, true);
  const choice = (text: string, finish: string | null): Record<string, unknown> =>
    kind === 'chat' ? { index: 0, delta: { role: 'assistant', content: text }, finish_reason: finish } : { index: 0, text, finish_reason: finish };
  const event = (body: unknown): string => `data: ${JSON.stringify(body)}\n\n`;
  startStream(rc.res, 'text/event-stream');
  await core.decode(rc, m, plan, promptTokens, (p) => writePiece(rc.res, event({ ...head, choices: [choice(p, null)] }), rc.signal));
  let tail = event({ ...head, choices: [choice('', plan.doneReason)] });
  if (includeUsage) tail += event({ ...head, choices: [], usage: usageOf(promptTokens, plan) });
  rc.res.end(`${tail}data: [DONE]\n\n`);
}

async function wholeAnswer(core: SimCore, rc: InferenceCtx, m: SimModelSpec, kind: 'chat' | 'text', plan: PlannedAnswer, promptTokens: number): Promise<void> {
  let text = '';
  await core.decode(rc, m, plan, promptTokens, (p) => {
    text += p;
  });
  const choice = kind === 'chat' ? { index: 0, message: { role: 'assistant', content: text }, finish_reason: plan.doneReason } : { index: 0, text, finish_reason: plan.doneReason };
  sendJson(rc.res, 200, { ...envelope(core, m, kind, false), choices: [choice], usage: usageOf(promptTokens, plan) });
}
