// A simulated model turn beyond plain text: capability checks, the reasoning trace (think), the tool call built from a tool's JSON-schema parameters, and the token plan that streams them.
import { SimHttpError, isRecord } from './sim-http.js';
import { capabilitiesOf, qualifiedName, type SimModelSpec } from './sim-models.js';
import { chunk, planAnswer, schemaInstance, splitWords, withFiller, type AnswerRequest } from './sim-text.js';

export type ThinkLevel = 'low' | 'medium' | 'high';
/** Ollama's `think`: a boolean or an effort level. */
export type ThinkValue = boolean | ThinkLevel;

/** Tokens of reasoning per level (`think: true` is medium): more effort costs more decode time, as on a real model. */
const THINK_TOKENS: Record<ThinkLevel, number> = { low: 8, medium: 16, high: 32 };
const THINK_FILLER = 'first consider the question then check each step before answering'.split(' ');
/** Characters of a tool call's JSON per decoded token: arguments cost decode time like text does. */
const TOOL_PIECE_CHARS = 8;
/** Prompt tokens an image costs: Ollama's own estimate for a CLIP image (server/prompt.go). */
export const IMAGE_PROMPT_TOKENS = 768;
/** Tool definitions are rendered into the prompt by the template; about 4 characters of their JSON per token. */
const TOOL_CHARS_PER_TOKEN = 4;

export interface SimToolCall {
  name: string;
  arguments: Record<string, unknown>;
}

/** A tool the request offers, in Ollama's and OpenAI's shape `{type: "function", function: {name, parameters}}`. */
export interface ToolDef {
  function: { name: string; parameters?: unknown };
}

export interface TurnPiece {
  kind: 'thinking' | 'content' | 'tool';
  text: string;
}

export interface PlannedTurn {
  /** One per token, in order: reasoning first, then the answer text or the tool call's JSON. */
  pieces: TurnPiece[];
  /** Sent whole after the last piece (as Ollama does); empty when no call was made or num_predict cut it short. */
  toolCalls: SimToolCall[];
  doneReason: 'stop' | 'length';
}

export interface TurnRequest extends AnswerRequest {
  /** Resolved by `resolveThink`; absent: no reasoning trace. */
  think?: ThinkLevel;
  /** The tool to call; absent, or answering a tool result: a text answer. */
  tool?: ToolDef;
}

/**
 * The turn's tokens: the reasoning trace, then a tool call (when `tool` is set and the last message is not a tool
 * result) or the text answer of `planAnswer`. `numPredict` caps all of them together, reasoning included, as on Ollama.
 */
export function planTurn(req: TurnRequest): PlannedTurn {
  const thinking = req.think ? thinkingPieces(req.model, req.prompt, req.think).map((text) => ({ kind: 'thinking' as const, text })) : [];
  let rest: TurnPiece[];
  let toolCalls: SimToolCall[] = [];
  if (req.tool && req.toolResult === undefined) {
    const call = { name: req.tool.function.name, arguments: toolArguments(req.tool.function.parameters, req.prompt) };
    rest = chunk(JSON.stringify(call), TOOL_PIECE_CHARS).map((text) => ({ kind: 'tool' as const, text }));
    toolCalls = [call];
  } else {
    const { numPredict: _cap, ...answer } = req;
    rest = planAnswer(answer).pieces.map((text) => ({ kind: 'content' as const, text }));
  }
  const pieces = [...thinking, ...rest];
  if (req.numPredict !== undefined && req.numPredict >= 0 && req.numPredict < pieces.length) {
    return { pieces: pieces.slice(0, req.numPredict), toolCalls: [], doneReason: 'length' };
  }
  return { pieces, toolCalls, doneReason: 'stop' };
}

/** The reasoning trace as one string (what a non-streaming answer carries in `thinking`), for tests. */
export function simulatedThinking(req: { model: string; prompt: string; think?: ThinkValue }): string {
  const level = req.think === undefined || req.think === true ? 'medium' : req.think === false ? undefined : req.think;
  return level ? thinkingPieces(req.model, req.prompt, level).join('') : '';
}

function thinkingPieces(model: string, prompt: string, level: ThinkLevel): string[] {
  return withFiller(['simulated', 'reasoning', 'by', model, 'about:', ...splitWords(prompt).slice(0, 8)], THINK_TOKENS[level], THINK_FILLER);
}

/**
 * Ollama's rule: a model that can think thinks unless `think: false`; asking a model that cannot is a 400 naming the
 * model as the client wrote it. Returns the level to think at, or undefined.
 */
export function resolveThink(m: SimModelSpec, requested: string, think: ThinkValue | undefined): ThinkLevel | undefined {
  if (!capabilitiesOf(m).includes('thinking')) {
    if (think !== undefined && think !== false) throw new SimHttpError(400, `"${requested}" does not support thinking`);
    return undefined;
  }
  if (think === false) return undefined;
  return think === undefined || think === true ? 'medium' : think;
}

/** What the request needs beyond text; each missing capability is Ollama's 400. */
export interface TurnNeeds {
  kind: 'chat' | 'generate';
  tools: boolean;
  images: number;
  suffix: boolean;
}

export function checkCapabilities(m: SimModelSpec, requested: string, need: TurnNeeds): void {
  const caps = capabilitiesOf(m);
  if (!caps.includes('completion')) throw new SimHttpError(400, `"${requested}" does not support ${need.kind}`);
  const missing = [...(need.tools && !caps.includes('tools') ? ['tools'] : []), ...(need.suffix && !caps.includes('insert') ? ['insert'] : [])];
  if (missing.length > 0) throw new SimHttpError(400, `${qualifiedName(m.name)} does not support ${missing.join(', ')}`);
  // Ollama's own answer here comes from its runner (500 "this model is missing data required for image input"); the
  // sim answers a 400 that names the model, since nothing a retry can change.
  if (need.images > 0 && !caps.includes('vision')) throw new SimHttpError(400, `"${requested}" does not support images`);
}

/** Images are base64 (Ollama decodes them when reading the body: a bad one is a 400 before anything runs). */
export function checkImages(images: readonly string[], field: string): void {
  for (const [i, img] of images.entries()) {
    const text = img.replace(/\s+/g, '');
    if (text.length === 0 || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) {
      throw new SimHttpError(400, `invalid image in ${field}[${i}]: illegal base64 data (send the image bytes base64-encoded)`);
    }
  }
}

/** Prompt tokens that images and tool definitions add to a request. */
export function extraPromptTokens(images: number, tools: readonly unknown[] | undefined): number {
  return images * IMAGE_PROMPT_TOKENS + (tools && tools.length > 0 ? Math.ceil(JSON.stringify(tools).length / TOOL_CHARS_PER_TOKEN) : 0);
}

const NUMBER = /^-?\d+(?:\.\d+)?$/;

/**
 * Arguments for a call to a tool with these JSON-schema `parameters`, from the last user message: each `required`
 * property (every declared one when there is no `required`) gets `const`, else the first `enum` value; strings take the
 * message's words from the end (the first string property its last word, punctuation stripped: "weather in Paris?" →
 * "Paris"), numbers the message's numbers in order (else 1, kept within minimum/maximum), booleans true, anything else
 * a minimal schema instance.
 */
export function toolArguments(parameters: unknown, message: string): Record<string, unknown> {
  if (!isRecord(parameters)) return {};
  const props = isRecord(parameters.properties) ? parameters.properties : {};
  const keys = Array.isArray(parameters.required) ? parameters.required.filter((k): k is string => typeof k === 'string') : Object.keys(props);
  const tokens = splitWords(message).map((w) => w.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, '')).filter((w) => w.length > 0);
  const words = tokens.filter((w) => !NUMBER.test(w));
  const numbers = tokens.filter((w) => NUMBER.test(w)).map(Number);
  let nextWord = words.length - 1;
  let nextNumber = 0;
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    const schema = isRecord(props[key]) ? props[key] : {};
    const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
    if ('const' in schema || (Array.isArray(schema.enum) && schema.enum.length > 0) || typeof schema.format === 'string') {
      out[key] = schemaInstance(schema, parameters);
    } else if (type === 'string') {
      out[key] = words[nextWord--] ?? 'simulated';
    } else if (type === 'number' || type === 'integer') {
      const raw = numbers[nextNumber++] ?? 1;
      const lo = typeof schema.minimum === 'number' ? schema.minimum : -Infinity;
      const hi = typeof schema.maximum === 'number' ? schema.maximum : Infinity;
      const v = Math.min(hi, Math.max(lo, raw));
      out[key] = type === 'integer' ? Math.round(v) : v;
    } else if (type === 'boolean') {
      out[key] = true;
    } else {
      out[key] = schemaInstance(schema, parameters);
    }
  }
  return out;
}
