// What the simulated node "generates": deterministic answer text, JSON instances of a format schema, and embedding vectors.
import { createHash } from 'node:crypto';

/** Tokens in an answer when neither `num_predict` nor `sim_answer_tokens` says otherwise. */
const DEFAULT_ANSWER_TOKENS = 16;
/** Prompt words echoed into a plain-text answer. */
const ECHOED_PROMPT_WORDS = 8;
/** Characters per streamed piece of a JSON answer. */
const JSON_PIECE_CHARS = 8;
/** Embedding width of a model declared without one. */
export const DEFAULT_EMBEDDING_LENGTH = 384;

const FILLER = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua'.split(' ');

export type AnswerFormat = 'json' | Record<string, unknown>;

export interface AnswerRequest {
  model: string;
  /** The text the answer echoes: the prompt (generate) or the last user message (chat). */
  prompt: string;
  /** Ollama `num_predict`: a cap on generated tokens; negative means no cap. */
  numPredict?: number;
  /** Natural length of a plain-text answer in tokens (sim-only option `sim_answer_tokens`), default 16. */
  answerTokens?: number;
  format?: AnswerFormat;
  /** Images the (vision) model was shown: the answer says how many it saw. */
  images?: number;
  /** The tool result the answer is about (chat whose last message has role `tool`): quoted instead of the prompt. */
  toolResult?: string;
}

export interface PlannedAnswer {
  /** The pieces streamed in order, one per token; their concatenation is the answer. */
  pieces: string[];
  /** `length` when `numPredict` cut the answer short, else `stop`. */
  doneReason: 'stop' | 'length';
}

/**
 * The exact answer for a request.
 * Plain text: the words `simulated answer from <model> to:`, then `(saw N image(s))` when images were shown, then the
 * first 8 whitespace-separated words of the prompt — or, answering a tool result, `simulated answer from <model> using
 * tool result:` and its first 8 words — then filler words (`lorem ipsum dolor ...`, repeating), cut to `answerTokens` (default 16) words. Each word is one
 * token; every token after the first carries one leading space, so the text is the words joined by single spaces.
 * `format: "json"`: `{"simulated":true,"model":<model>,"answer":<the plain-text answer>}`.
 * `format: <JSON schema>`: a minimal valid instance of the schema (see `schemaInstance`).
 * JSON answers stream in pieces of 8 characters. `numPredict` >= 0 keeps only that many pieces (`done_reason: "length"`).
 */
export function planAnswer(req: AnswerRequest): PlannedAnswer {
  let pieces: string[];
  if (req.format === undefined) {
    pieces = plainPieces(req);
  } else {
    const value =
      req.format === 'json'
        ? { simulated: true, model: req.model, answer: plainPieces(req).join('') }
        : schemaInstance(req.format);
    pieces = chunk(JSON.stringify(value), JSON_PIECE_CHARS);
  }
  if (req.numPredict !== undefined && req.numPredict >= 0 && req.numPredict < pieces.length) {
    return { pieces: pieces.slice(0, req.numPredict), doneReason: 'length' };
  }
  return { pieces, doneReason: 'stop' };
}

/** The plain-text answer as one string (what a non-streaming request returns). */
export function simulatedAnswer(req: AnswerRequest): string {
  return planAnswer(req).pieces.join('');
}

function plainPieces(req: AnswerRequest): string[] {
  const count = req.answerTokens ?? DEFAULT_ANSWER_TOKENS;
  const images = req.images ?? 0;
  const lead =
    req.toolResult !== undefined
      ? ['using', 'tool', 'result:', ...splitWords(req.toolResult).slice(0, ECHOED_PROMPT_WORDS)]
      : ['to:', ...(images > 0 ? ['(saw', String(images), images === 1 ? 'image)' : 'images)'] : []), ...splitWords(req.prompt).slice(0, ECHOED_PROMPT_WORDS)];
  return withFiller(['simulated', 'answer', 'from', req.model, ...lead], count);
}

/** Pads `words` with filler to `count` words (or cuts them), as tokens: every token after the first has one leading space. */
export function withFiller(words: string[], count: number, filler: readonly string[] = FILLER): string[] {
  const out = [...words];
  for (let i = 0; out.length < count; i++) out.push(filler[i % filler.length] ?? 'lorem');
  return out.slice(0, count).map((w, i) => (i === 0 ? w : ` ${w}`));
}

export function splitWords(text: string): string[] {
  return text.split(/\s+/).filter((w) => w.length > 0);
}

/** Prompt tokens the simulation reports: whitespace-separated words across all input texts, at least 1. */
export function countPromptTokens(texts: readonly string[]): number {
  return Math.max(1, texts.reduce((n, t) => n + splitWords(t).length, 0));
}

export function chunk(text: string, size: number): string[] {
  const chars = Array.from(text);
  const out: string[] = [];
  for (let i = 0; i < chars.length; i += size) out.push(chars.slice(i, i + size).join(''));
  return out;
}

const MAX_SCHEMA_DEPTH = 32;

/**
 * A minimal JSON instance valid against `schema`: `const`, else the first `enum` value; objects carry every declared
 * property plus any extra `required` ones; strings are "simulated" (respecting min/maxLength and common formats);
 * numbers the smallest allowed value (0 when unbounded); booleans true; arrays max(1, minItems) items (tuples per
 * `prefixItems`); `anyOf`/`oneOf` take the first non-null branch, `allOf` merges; local `$ref`s resolve.
 */
export function schemaInstance(schema: unknown, root: unknown = schema, depth = 0): unknown {
  if (depth > MAX_SCHEMA_DEPTH || schema === false) return null;
  if (!isRecord(schema)) return 'simulated';
  if (typeof schema.$ref === 'string') return schemaInstance(resolveRef(root, schema.$ref), root, depth + 1);
  if ('const' in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  if (Array.isArray(schema.allOf) && schema.allOf.length > 0) {
    const parts = schema.allOf.map((s) => schemaInstance(s, root, depth + 1));
    return parts.every(isRecord) ? Object.assign({}, ...parts) : parts[0];
  }
  const branches = Array.isArray(schema.anyOf) ? schema.anyOf : Array.isArray(schema.oneOf) ? schema.oneOf : undefined;
  if (branches && branches.length > 0) {
    const pick = branches.find((b) => !(isRecord(b) && b.type === 'null')) ?? branches[0];
    return schemaInstance(pick, root, depth + 1);
  }
  switch (schemaType(schema)) {
    case 'object':
      return objectInstance(schema, root, depth);
    case 'array':
      return arrayInstance(schema, root, depth);
    case 'string':
      return stringInstance(schema);
    case 'integer':
      return numberInstance(schema, true);
    case 'number':
      return numberInstance(schema, false);
    case 'boolean':
      return true;
    case 'null':
      return null;
    default:
      return 'simulated';
  }
}

function schemaType(schema: Record<string, unknown>): string | undefined {
  const t = schema.type;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) return (t.find((x) => x !== 'null') ?? t[0]) as string | undefined;
  if (isRecord(schema.properties)) return 'object';
  if (schema.items !== undefined || schema.prefixItems !== undefined) return 'array';
  return undefined;
}

function objectInstance(schema: Record<string, unknown>, root: unknown, depth: number): Record<string, unknown> {
  const props = isRecord(schema.properties) ? schema.properties : {};
  const required = Array.isArray(schema.required) ? schema.required.filter((k): k is string => typeof k === 'string') : [];
  const out: Record<string, unknown> = {};
  for (const key of new Set([...Object.keys(props), ...required])) out[key] = schemaInstance(props[key] ?? {}, root, depth + 1);
  return out;
}

function arrayInstance(schema: Record<string, unknown>, root: unknown, depth: number): unknown[] {
  const prefix = Array.isArray(schema.prefixItems) ? schema.prefixItems : Array.isArray(schema.items) ? schema.items : [];
  const out = prefix.map((s) => schemaInstance(s, root, depth + 1));
  const maxItems = typeof schema.maxItems === 'number' ? schema.maxItems : Infinity;
  const want = Math.min(maxItems, Math.max(1, typeof schema.minItems === 'number' ? schema.minItems : 1));
  const item = isRecord(schema.items) ? schema.items : {};
  while (out.length < want) out.push(schemaInstance(item, root, depth + 1));
  return out.slice(0, Math.max(prefix.length, want));
}

const STRING_FORMATS: Record<string, string> = {
  'date-time': '1970-01-01T00:00:00Z',
  date: '1970-01-01',
  time: '00:00:00Z',
  email: 'simulated@example.com',
  uri: 'https://example.com/simulated',
  url: 'https://example.com/simulated',
  uuid: '00000000-0000-4000-8000-000000000000',
  ipv4: '127.0.0.1',
  hostname: 'simulated.example.com',
};

function stringInstance(schema: Record<string, unknown>): string {
  let s = (typeof schema.format === 'string' ? STRING_FORMATS[schema.format] : undefined) ?? 'simulated';
  if (typeof schema.minLength === 'number') while (s.length < schema.minLength) s += 'x';
  if (typeof schema.maxLength === 'number') s = s.slice(0, schema.maxLength);
  return s;
}

function numberInstance(schema: Record<string, unknown>, integer: boolean): number {
  const num = (k: string): number | undefined => (typeof schema[k] === 'number' ? (schema[k] as number) : undefined);
  const step = integer ? 1 : 0.5;
  let lo = num('minimum') ?? (num('exclusiveMinimum') !== undefined ? (num('exclusiveMinimum') as number) + step : undefined);
  const hi = num('maximum') ?? (num('exclusiveMaximum') !== undefined ? (num('exclusiveMaximum') as number) - step : undefined);
  if (lo === undefined) lo = hi !== undefined && hi < 0 ? hi : 0;
  return integer ? Math.ceil(lo) : lo;
}

function resolveRef(root: unknown, ref: string): unknown {
  if (!ref.startsWith('#')) return {};
  let node: unknown = root;
  for (const raw of ref.slice(1).split('/').filter((p) => p.length > 0)) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    node = isRecord(node) ? node[key] : undefined;
  }
  return node ?? {};
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Words that carry no topic: left out of the simulated embedding so that "how do I ..." alone makes no match. */
const STOPWORDS = new Set(
  (
    'a an the and or but if then else of to in on at by for with from into onto about as is are was were be been being ' +
    'do does did doing have has had having i me my we our you your it its this that these those there here what which who ' +
    'whom whose how why when where can could should would will shall may might must not no so than too very just also ' +
    'please some any all each more most such own same other only up down out over under again once s t'
  ).split(' '),
);
/** Signed dimensions each word is hashed to (feature hashing): a few, so two words rarely cancel each other out. */
const DIMS_PER_WORD = 3;
/** Weight of the whole-text noise relative to the unit word vector: same words, different text → cosine ~0.99. */
const NOISE_WEIGHT = 0.1;

/** Light stemming: a trailing "ing", "ed" or "s" is dropped when at least 3 characters remain ("tokens" → "token"). */
function stem(word: string): string {
  for (const suffix of ['ing', 'ed', 's']) {
    if (word.endsWith(suffix) && word.length - suffix.length >= 3) return suffix === 's' && word.endsWith('ss') ? word : word.slice(0, -suffix.length);
  }
  return word;
}

/** The content words of a text: lowercase letters and digits, stopwords dropped, lightly stemmed. */
function embeddingWords(input: string): string[] {
  return (input.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).filter((w) => !STOPWORDS.has(w)).map(stem);
}

/** A unit vector of `length` from SHA-256 in counter mode over `seed`, in [-1, 1] per dimension. */
function hashVector(seed: string, length: number): number[] {
  const raw: number[] = [];
  for (let block = 0; raw.length < length; block++) {
    const h = createHash('sha256').update(`${block}\0${seed}`).digest();
    for (let i = 0; i + 4 <= h.length && raw.length < length; i += 4) raw.push((h.readUInt32LE(i) / 0xffffffff) * 2 - 1);
  }
  const norm = Math.sqrt(raw.reduce((s, x) => s + x * x, 0)) || 1;
  return raw.map((x) => x / norm);
}

/**
 * SIMULATED embedding, not a language model's: a deterministic unit vector for `input` that carries word overlap, so
 * semantic search and the semantic cache can be tested without a real embedding model. Hashed bag of words: each
 * content word (embeddingWords) adds ±1 on DIMS_PER_WORD dimensions picked by SHA-256 of the word, scaled by
 * 1 + ln(count); the word vector is normalised, plus NOISE_WEIGHT × a unit vector from SHA-256 of the whole text, then
 * normalised again. Same text → same vector (whatever the model); texts sharing most content words → cosine near 1;
 * texts sharing none → near 0 (±0.1). It knows no synonyms: "car" and "automobile" are unrelated to it.
 */
export function embeddingFor(input: string, length: number): number[] {
  const counts = new Map<string, number>();
  for (const w of embeddingWords(input)) counts.set(w, (counts.get(w) ?? 0) + 1);
  const words = new Array<number>(length).fill(0);
  for (const [w, n] of counts) {
    const h = createHash('sha256').update(w).digest();
    const weight = 1 + Math.log(n);
    for (let j = 0; j < DIMS_PER_WORD; j++) {
      const dim = h.readUInt32LE(4 * j) % length;
      words[dim]! += h[16 + j]! & 1 ? weight : -weight;
    }
  }
  const noise = hashVector(input, length);
  const wordNorm = Math.sqrt(words.reduce((s, x) => s + x * x, 0));
  // No content words (or all cancelled out): the noise alone, still a unit vector unique to the text.
  if (wordNorm === 0) return noise;
  const v = words.map((x, i) => x / wordNorm + NOISE_WEIGHT * noise[i]!);
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0)) || 1;
  return v.map((x) => x / norm);
}
