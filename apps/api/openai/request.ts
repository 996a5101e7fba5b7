// OpenAI request bodies (chat completions, legacy completions, embeddings): zod schemas, the checks for what Hydra
// cannot honour, and the translation into the JobRequest every surface submits.
import { z } from 'zod';
import { ModelNameSchema, zodProblems, type ChatMessage, type FieldProblem, type JobRequest, type Think, type ToolCall } from '../../../libs/core/index.js';
import type { Hints } from '../hints.js';

// OpenAI clients send `null` for fields they leave unset (the Python client, LangChain): null means absent.
const opt = <T extends z.ZodType>(s: T) => s.nullable().optional();

const StopSchema = opt(z.union([z.string(), z.array(z.string()).max(4, 'may hold at most 4 sequences')], { error: 'must be a string or an array of strings' }));
const MaxTokensSchema = opt(z.number().int('must be an integer').min(1, 'must be at least 1'));

/** Sampling fields both completion endpoints share; the llama.cpp extras (top_k, min_p, repeat_penalty) pass through too. */
const sampling = {
  model: ModelNameSchema,
  stream: opt(z.boolean()),
  stream_options: opt(z.object({ include_usage: opt(z.boolean()) })),
  max_tokens: MaxTokensSchema,
  temperature: opt(z.number().min(0, 'must be between 0 and 2').max(2, 'must be between 0 and 2')),
  top_p: opt(z.number().min(0, 'must be between 0 and 1').max(1, 'must be between 0 and 1')),
  seed: opt(z.number().int('must be an integer')),
  stop: StopSchema,
  frequency_penalty: opt(z.number().min(-2, 'must be between -2 and 2').max(2, 'must be between -2 and 2')),
  presence_penalty: opt(z.number().min(-2, 'must be between -2 and 2').max(2, 'must be between -2 and 2')),
  top_k: opt(z.number().int().min(0)),
  min_p: opt(z.number().min(0).max(1)),
  repeat_penalty: opt(z.number()),
  user: opt(z.string()),
  // Checked by `unsupported` below, with a message that says why; typed loosely so the schema does not answer first.
  n: opt(z.number()),
  logprobs: opt(z.unknown()),
  logit_bias: opt(z.record(z.string(), z.unknown())),
};

const TextPartSchema = z.object({ type: z.literal('text'), text: z.string() });
const ImagePartSchema = z.object({ type: z.literal('image_url'), image_url: z.object({ url: z.string(), detail: opt(z.string()) }) });
const PartSchema = z.discriminatedUnion('type', [TextPartSchema, ImagePartSchema], { error: 'must be a text or an image_url part (audio and file parts are not supported)' });
const ContentSchema = z.union([z.string(), z.array(PartSchema)], { error: 'must be a string or an array of content parts' });
const TextContentSchema = z.union([z.string(), z.array(TextPartSchema)], { error: 'must be a string or an array of text parts' });

const ToolCallInSchema = z.object({
  id: z.string(),
  type: z.literal('function').optional(),
  function: z.object({ name: z.string().min(1), arguments: z.string() }),
});

const MessageSchema = z.discriminatedUnion(
  'role',
  [
    z.object({ role: z.enum(['system', 'developer']), content: TextContentSchema }),
    z.object({ role: z.literal('user'), content: ContentSchema }),
    z.object({
      role: z.literal('assistant'),
      content: opt(TextContentSchema),
      tool_calls: opt(z.array(ToolCallInSchema)),
      // The reasoning of an earlier turn, as servers that return `reasoning_content` get it back.
      reasoning_content: opt(z.string()),
    }),
    z.object({ role: z.literal('tool'), content: TextContentSchema, tool_call_id: z.string({ error: 'is required for a tool message' }) }),
  ],
  { error: 'must have role system, developer, user, assistant or tool' },
);
type Message = z.infer<typeof MessageSchema>;

const ToolSchema = z.object({
  type: z.literal('function', { error: 'must be "function"' }),
  function: z.object({ name: z.string().min(1).max(200), description: opt(z.string()), parameters: opt(z.record(z.string(), z.unknown())), strict: opt(z.boolean()) }),
});

const ResponseFormatSchema = z.discriminatedUnion(
  'type',
  [
    z.object({ type: z.literal('text') }),
    z.object({ type: z.literal('json_object') }),
    z.object({ type: z.literal('json_schema'), json_schema: z.object({ name: z.string(), schema: opt(z.record(z.string(), z.unknown())), strict: opt(z.boolean()), description: opt(z.string()) }) }),
  ],
  { error: 'must have type text, json_object or json_schema' },
);

export const ChatCompletionBodySchema = z.object({
  ...sampling,
  messages: z.array(MessageSchema, { error: 'is required (an array of {role, content})' }).min(1, 'must hold at least one message'),
  max_completion_tokens: MaxTokensSchema,
  response_format: opt(ResponseFormatSchema),
  tools: opt(z.array(ToolSchema)),
  tool_choice: opt(z.union([z.enum(['none', 'auto', 'required']), z.object({ type: z.literal('function'), function: z.object({ name: z.string() }) })])),
  parallel_tool_calls: opt(z.boolean()),
  reasoning_effort: opt(z.enum(['none', 'minimal', 'low', 'medium', 'high', 'xhigh'])),
  top_logprobs: opt(z.unknown()),
  modalities: opt(z.array(z.string())),
  audio: opt(z.unknown()),
  functions: opt(z.unknown()),
  function_call: opt(z.unknown()),
  web_search_options: opt(z.unknown()),
  /** OpenAI's cache-routing key: Hydra's session affinity (X-Hydra-Session wins when both are sent). */
  prompt_cache_key: opt(z.string().min(1, 'must not be empty').max(256, 'must be at most 256 characters')),
});
export type ChatCompletionBody = z.infer<typeof ChatCompletionBodySchema>;

export const CompletionBodySchema = z.object({
  ...sampling,
  prompt: z.union([z.string(), z.array(z.unknown())], { error: 'is required (a string)' }),
  suffix: opt(z.string()),
  echo: opt(z.boolean()),
  best_of: opt(z.number()),
});
export type CompletionBody = z.infer<typeof CompletionBodySchema>;

export const EmbeddingBodySchema = z.object({
  model: ModelNameSchema,
  input: z.union([z.string(), z.array(z.unknown()).min(1, 'must hold at least one input')], { error: 'is required (a string or an array of strings)' }),
  encoding_format: opt(z.enum(['float', 'base64'], { error: 'must be "float" or "base64"' })),
  dimensions: opt(z.number().int().min(1, 'must be at least 1')),
  user: opt(z.string()),
});
export type EmbeddingBody = z.infer<typeof EmbeddingBodySchema>;

export type Parsed<T> = { ok: true; value: T } | { ok: false; problems: FieldProblem[] };

function parse<T>(schema: z.ZodType<T>, body: unknown, checks: (b: T) => FieldProblem[]): Parsed<T> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { ok: false, problems: [{ field: '(body)', problem: 'must be a JSON object' }] };
  const r = schema.safeParse(body);
  if (!r.success) return { ok: false, problems: zodProblems(r.error) };
  const problems = checks(r.data);
  return problems.length > 0 ? { ok: false, problems } : { ok: true, value: r.data };
}

const present = (v: unknown): boolean => v !== undefined && v !== null;

/** Fields that would change the answer and that Hydra cannot honour: refused by name rather than silently ignored. */
function unsupported(b: Record<string, unknown>): FieldProblem[] {
  const out: FieldProblem[] = [];
  if (present(b.n) && b.n !== 1) out.push({ field: 'n', problem: 'must be 1: Hydra returns one choice per request (send several requests instead)' });
  if (present(b.logprobs) && b.logprobs !== false) out.push({ field: 'logprobs', problem: 'is not supported: the backends do not report token log probabilities' });
  if (present(b.top_logprobs)) out.push({ field: 'top_logprobs', problem: 'is not supported: the backends do not report token log probabilities' });
  if (present(b.logit_bias) && Object.keys(b.logit_bias as object).length > 0) out.push({ field: 'logit_bias', problem: 'is not supported: token ids differ between the backends' });
  if (present(b.best_of) && b.best_of !== 1) out.push({ field: 'best_of', problem: 'must be 1: Hydra generates one completion per request' });
  if (b.echo === true) out.push({ field: 'echo', problem: 'is not supported: prepend the prompt to the answer yourself' });
  if (Array.isArray(b.modalities) && b.modalities.some((m) => m !== 'text')) out.push({ field: 'modalities', problem: 'may only hold "text": Hydra does not generate audio' });
  if (present(b.audio)) out.push({ field: 'audio', problem: 'is not supported: Hydra does not generate audio' });
  if (present(b.functions) || present(b.function_call)) out.push({ field: present(b.functions) ? 'functions' : 'function_call', problem: 'is deprecated and not supported: use tools and tool_choice' });
  if (present(b.web_search_options)) out.push({ field: 'web_search_options', problem: 'is not supported: Hydra does not search the web' });
  return out;
}

export function parseChatCompletion(body: unknown): Parsed<ChatCompletionBody> {
  return parse(ChatCompletionBodySchema, body, (b) => {
    const out = unsupported(b);
    const choice = b.tool_choice;
    // Ollama-style backends cannot force a call: a request that depends on one is refused rather than answered in prose.
    if (choice === 'required' || (typeof choice === 'object' && choice !== null)) {
      out.push({ field: 'tool_choice', problem: 'may only be "auto" or "none": the backends cannot force a tool call' });
    }
    b.messages.forEach((m, i) => out.push(...imageProblems(m, i)));
    return out;
  });
}

export function parseCompletion(body: unknown): Parsed<CompletionBody> {
  return parse(CompletionBodySchema, body, (b) => {
    const out = unsupported(b);
    if (Array.isArray(b.prompt) && (b.prompt.length !== 1 || typeof b.prompt[0] !== 'string')) {
      out.push({ field: 'prompt', problem: 'must be a string or an array of one string (token arrays and batches are not supported)' });
    }
    return out;
  });
}

export function parseEmbedding(body: unknown): Parsed<EmbeddingBody> {
  return parse(EmbeddingBodySchema, body, (b) =>
    Array.isArray(b.input) && !b.input.every((x) => typeof x === 'string') ? [{ field: 'input', problem: 'must be a string or an array of strings (token id arrays are not supported)' }] : [],
  );
}

const DATA_URL = /^data:image\/[\w.+-]+;base64,(.+)$/s;

function imageProblems(m: Message, i: number): FieldProblem[] {
  if (m.role !== 'user' || typeof m.content === 'string') return [];
  return m.content.flatMap((p, j) =>
    p.type === 'image_url' && !DATA_URL.test(p.image_url.url)
      ? [{ field: `messages[${i}].content[${j}].image_url.url`, problem: 'must be a data: URL with a base64 image (Hydra does not fetch image URLs)' }]
      : [],
  );
}

const textOf = (c: string | { text: string }[] | null | undefined): string => (typeof c === 'string' ? c : (c ?? []).map((p) => p.text).join('\n'));

/** OpenAI sends tool arguments as a JSON string; Hydra's messages carry them as an object (Ollama's form). */
function argumentsObject(raw: string, field: string): Record<string, unknown> | FieldProblem {
  if (raw.trim() === '') return {};
  try {
    const v: unknown = JSON.parse(raw);
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    /* reported below */
  }
  return { field, problem: 'must be a JSON object encoded as a string' };
}

/** The messages in Hydra's form; a tool result also names its tool, found from the call it answers. */
export function toChatMessages(messages: Message[]): { ok: true; value: ChatMessage[] } | { ok: false; problems: FieldProblem[] } {
  const toolNames = new Map<string, string>();
  const problems: FieldProblem[] = [];
  const out = messages.map((m, i): ChatMessage => {
    switch (m.role) {
      case 'system':
      case 'developer':
        return { role: 'system', content: textOf(m.content) };
      case 'user': {
        if (typeof m.content === 'string') return { role: 'user', content: m.content };
        const images = m.content.flatMap((p) => (p.type === 'image_url' ? [DATA_URL.exec(p.image_url.url)?.[1] ?? ''] : []));
        const text = m.content.flatMap((p) => (p.type === 'text' ? [p.text] : [])).join('\n');
        return { role: 'user', content: text, ...(images.length > 0 ? { images } : {}) };
      }
      case 'assistant': {
        const calls: ToolCall[] = [];
        (m.tool_calls ?? []).forEach((c, j) => {
          toolNames.set(c.id, c.function.name);
          const args = argumentsObject(c.function.arguments, `messages[${i}].tool_calls[${j}].function.arguments`);
          if ('problem' in args) problems.push(args as FieldProblem);
          else calls.push({ id: c.id, type: 'function', function: { name: c.function.name, arguments: args } });
        });
        return { role: 'assistant', content: textOf(m.content), ...(calls.length > 0 ? { tool_calls: calls } : {}), ...(m.reasoning_content ? { thinking: m.reasoning_content } : {}) };
      }
      case 'tool': {
        const name = toolNames.get(m.tool_call_id);
        return { role: 'tool', content: textOf(m.content), tool_call_id: m.tool_call_id, ...(name ? { tool_name: name } : {}) };
      }
    }
  });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, value: out };
}

/** reasoning_effort in Hydra's `think`: off, or a level (minimal counts as low, xhigh as high). */
const THINK: Record<NonNullable<ChatCompletionBody['reasoning_effort']>, Think> = { none: false, minimal: 'low', low: 'low', medium: 'medium', high: 'high', xhigh: 'high' };

type Sampling = Pick<ChatCompletionBody, 'temperature' | 'top_p' | 'seed' | 'stop' | 'frequency_penalty' | 'presence_penalty' | 'top_k' | 'min_p' | 'repeat_penalty'>;

/** OpenAI's sampling fields as Ollama-style options (max tokens become num_predict); absent ones stay absent. */
function optionsOf(b: Sampling, maxTokens: number | null | undefined): Record<string, unknown> | undefined {
  const o: Record<string, unknown> = {
    temperature: b.temperature,
    top_p: b.top_p,
    seed: b.seed,
    stop: typeof b.stop === 'string' ? [b.stop] : b.stop,
    num_predict: maxTokens,
    frequency_penalty: b.frequency_penalty,
    presence_penalty: b.presence_penalty,
    top_k: b.top_k,
    min_p: b.min_p,
    repeat_penalty: b.repeat_penalty,
  };
  for (const [k, v] of Object.entries(o)) if (v === undefined || v === null) delete o[k];
  return Object.keys(o).length > 0 ? o : undefined;
}

/** Routing comes only from the X-Hydra-* headers (and the key's priority): OpenAI bodies have no place for it. */
const routing = (h: Hints) => ({ priority: h.priority, node_id: h.node_id, min_vram_gb: h.min_vram_gb, prefer_local: h.prefer_local, session_id: h.session_id });

export function chatJobRequest(b: ChatCompletionBody, messages: ChatMessage[], hints: Hints): JobRequest {
  const rf = b.response_format;
  const format = rf?.type === 'json_object' ? 'json' : rf?.type === 'json_schema' ? (rf.json_schema.schema ?? 'json') : undefined;
  const tools = b.tool_choice === 'none' ? [] : (b.tools ?? []);
  const options = optionsOf(b, b.max_completion_tokens ?? b.max_tokens);
  return {
    type: 'chat',
    model: b.model,
    messages,
    ...(tools.length > 0 ? { tools: tools.map((t) => ({ type: 'function' as const, function: { name: t.function.name, ...(t.function.description ? { description: t.function.description } : {}), ...(t.function.parameters ? { parameters: t.function.parameters } : {}) } })) } : {}),
    ...(b.reasoning_effort ? { think: THINK[b.reasoning_effort] } : {}),
    ...(format ? { format } : {}),
    ...(options ? { options } : {}),
    ...routing(hints),
    ...(hints.session_id === undefined && b.prompt_cache_key ? { session_id: b.prompt_cache_key } : {}),
  };
}

export function completionJobRequest(b: CompletionBody, hints: Hints): JobRequest {
  const options = optionsOf(b, b.max_tokens);
  return {
    type: 'generate',
    model: b.model,
    prompt: typeof b.prompt === 'string' ? b.prompt : String(b.prompt[0]),
    ...(b.suffix ? { suffix: b.suffix } : {}),
    ...(options ? { options } : {}),
    ...routing(hints),
  };
}

export function embeddingJobRequest(b: EmbeddingBody, hints: Hints): JobRequest {
  return {
    type: 'embed',
    model: b.model,
    input: typeof b.input === 'string' ? b.input : (b.input as string[]),
    ...(b.dimensions ? { dimensions: b.dimensions } : {}),
    ...routing(hints),
  };
}
