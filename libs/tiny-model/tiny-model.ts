// The toy llama GGUF: a byte/char vocabulary and weights built so greedy decoding follows a fixed successor rule.
import { writeFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { mulberry32 } from '../core/index.js';
import { encodeGguf, gguf, type GgufFile, type GgufTensor } from './gguf-writer.js';

/** Says what it is: a toy for tests and demos, not a language model. */
export const TINY_MODEL_NAME = 'tiny-toy-llama';

/** ChatML, as Qwen and OpenHermes ship it; node-llama-cpp resolves it to its ChatML wrapper. */
const TINY_CHAT_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export const TINY_DIMS = {
  embedding_length: 64,
  block_count: 2,
  head_count: 4,
  head_count_kv: 4,
  feed_forward_length: 128,
  context_length: 4096,
} as const;

/**
 * The greedy rule, per character (the model only looks at the last token):
 * - `a`..`y` → the next letter, `A`..`Y` likewise; `z` and `Z` → end of text;
 * - `0`..`8` → the next digit, `9` → `0` (digits never end: use them for long outputs);
 * - newline → `a` (so a chat reply, which follows `<|im_start|>assistant\n`, is the alphabet);
 * - anything else (space, punctuation, non-ASCII, empty prompt) → end of text.
 * Returns the next character, or null for end of text.
 */
export function nextTinyChar(c: string): string | null {
  if (c === '\n') return 'a';
  if (c.length !== 1) return null;
  if (/[a-yA-Y0-8]/.test(c)) return String.fromCharCode(c.charCodeAt(0) + 1);
  if (c === '9') return '0';
  return null;
}

/** The text greedy decoding produces after a prompt whose last character is `lastChar`, at most `maxTokens` characters. */
export function expectedGreedyContinuation(lastChar: string, maxTokens = 1024): string {
  let out = '';
  let c: string | null = lastChar;
  while (out.length < maxTokens && (c = nextTinyChar(c)) !== null) out += c;
  return out;
}

/** Greedy output and why it ended, as a backend should report it for `prompt` with `num_predict = maxTokens`. */
export function expectedGreedyOutput(prompt: string, maxTokens = 1024): { text: string; done_reason: 'stop' | 'length' } {
  const last = [...prompt].at(-1) ?? '';
  const text = expectedGreedyContinuation(last, maxTokens);
  // Reaching the cap is 'length' even when end of text would come next: decoding stops before asking.
  return { text, done_reason: text.length < maxTokens ? 'stop' : 'length' };
}

/** What any chat through the ChatML template answers: the prompt ends with "assistant\n". */
export const TINY_CHAT_REPLY = expectedGreedyContinuation('\n');

/** Vocabulary: control tokens, 256 byte-fallback tokens, then one token per printable ASCII character ("▁" is space). */
const CONTROL = ['<unk>', '<s>', '</s>', '<|im_start|>', '<|im_end|>'] as const;
const BYTE_BASE = CONTROL.length;
const CHAR_BASE = BYTE_BASE + 256;
const CHARS = ['\u2581', ...Array.from({ length: 0x7e - 0x21 + 1 }, (_, i) => String.fromCharCode(0x21 + i))];
const TINY_VOCAB_SIZE = CHAR_BASE + CHARS.length;
const BOS_ID = 1;
const EOS_ID = 4; // <|im_end|>: ends both raw completions and ChatML turns

/** llama.cpp token types. */
const TokenType = { normal: 1, unknown: 2, control: 3, byte: 6 } as const;

function vocabulary(): { tokens: string[]; types: number[] } {
  const tokens: string[] = [...CONTROL];
  const types: number[] = [TokenType.unknown, TokenType.control, TokenType.control, TokenType.control, TokenType.control];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TokenType.byte);
  }
  for (const c of CHARS) {
    tokens.push(c);
    types.push(TokenType.normal);
  }
  return { tokens, types };
}

/** The character a token stands for (byte tokens of ASCII count as that character), or '' for control tokens. */
function tokenChar(id: number): string {
  if (id >= CHAR_BASE) {
    const c = CHARS[id - CHAR_BASE] ?? '';
    return c === '\u2581' ? ' ' : c;
  }
  if (id >= BYTE_BASE) {
    const b = id - BYTE_BASE;
    return b < 0x80 ? String.fromCharCode(b) : '';
  }
  return '';
}

const tokenIdOfChar = (c: string): number => (c === ' ' ? CHAR_BASE : CHAR_BASE + CHARS.indexOf(c));

/**
 * Residual-stream class of a token: one orthogonal direction of the 64-wide stream each.
 * 0-25 a-z, 26-51 A-Z, 52-61 0-9, 62 newline, 63 everything else.
 */
function tokenClass(id: number): number {
  const c = tokenChar(id);
  if (c >= 'a' && c <= 'z' && c.length === 1) return c.charCodeAt(0) - 97;
  if (c >= 'A' && c <= 'Z' && c.length === 1) return 26 + c.charCodeAt(0) - 65;
  if (c >= '0' && c <= '9' && c.length === 1) return 52 + c.charCodeAt(0) - 48;
  if (c === '\n') return 62;
  return 63;
}

/** A character standing for each class, to apply `nextTinyChar` to. */
function classChar(k: number): string {
  if (k < 26) return String.fromCharCode(97 + k);
  if (k < 52) return String.fromCharCode(65 + k - 26);
  if (k < 62) return String.fromCharCode(48 + k - 52);
  return k === 62 ? '\n' : ' ';
}

/** The same weights on every run and machine. */
const prng = mulberry32;

/**
 * Options that make the file deliberately broken, for tests of load-error reporting.
 * `wrongShape`: `blk.0.attn_q.weight` is declared 64×32 instead of 64×64.
 */
export interface TinyModelVariant {
  wrongShape?: boolean;
}

/**
 * Weights. The embedding puts each token on its class's axis; attention mixes in at most ~2% of the context's
 * average (so embeddings depend on the whole text) and the FFN adds nothing; the output matrix maps each class to
 * its successor token with a logit of ~24 against ≤ ~1 for every other token, so greedy (and practically any
 * sampling) follows `nextTinyChar`.
 */
export function tinyModelGguf(variant: TinyModelVariant = {}): GgufFile {
  const { embedding_length: d, block_count, head_count, head_count_kv, feed_forward_length: ff, context_length } = TINY_DIMS;
  const n = TINY_VOCAB_SIZE;
  const { tokens, types } = vocabulary();
  const rand = prng(0x70e);
  const small = (len: number, scale: number) => Float32Array.from({ length: len }, () => (rand() * 2 - 1) * scale);
  const ones = (len: number) => new Float32Array(len).fill(1);
  const identity = (scale: number) => {
    const m = new Float32Array(d * d);
    for (let i = 0; i < d; i++) m[i * d + i] = scale;
    return m;
  };

  const embd = new Float32Array(d * n);
  for (let t = 0; t < n; t++) embd[t * d + tokenClass(t)] = 1;

  const output = new Float32Array(d * n);
  for (let k = 0; k < d; k++) {
    const next = nextTinyChar(classChar(k));
    const target = next === null ? EOS_ID : tokenIdOfChar(next);
    output[target * d + k] = 3; // × the normalised stream's 8 on that axis ≈ logit 24
  }

  const tensors: GgufTensor[] = [
    { name: 'token_embd.weight', dims: [d, n], data: embd },
    { name: 'output_norm.weight', dims: [d], data: ones(d) },
    { name: 'output.weight', dims: [d, n], data: output },
  ];
  for (let l = 0; l < block_count; l++) {
    const qCols = variant.wrongShape && l === 0 ? d / 2 : d;
    tensors.push(
      { name: `blk.${l}.attn_norm.weight`, dims: [d], data: ones(d) },
      { name: `blk.${l}.attn_q.weight`, dims: [d, qCols], data: small(d * qCols, 0.05) },
      { name: `blk.${l}.attn_k.weight`, dims: [d, d], data: small(d * d, 0.05) },
      { name: `blk.${l}.attn_v.weight`, dims: [d, d], data: identity(1) },
      { name: `blk.${l}.attn_output.weight`, dims: [d, d], data: identity(0.01) },
      { name: `blk.${l}.ffn_norm.weight`, dims: [d], data: ones(d) },
      { name: `blk.${l}.ffn_gate.weight`, dims: [d, ff], data: small(d * ff, 0.05) },
      { name: `blk.${l}.ffn_up.weight`, dims: [d, ff], data: small(d * ff, 0.05) },
      { name: `blk.${l}.ffn_down.weight`, dims: [ff, d], data: new Float32Array(ff * d) },
    );
  }

  return {
    metadata: [
      ['general.architecture', gguf.string('llama')],
      ['general.name', gguf.string(TINY_MODEL_NAME)],
      ['general.description', gguf.string('A toy llama for tests: greedy output follows a fixed successor rule, not language.')],
      ['general.file_type', gguf.u32(0)], // all F32
      ['general.alignment', gguf.u32(32)],
      ['llama.vocab_size', gguf.u32(n)],
      ['llama.context_length', gguf.u32(context_length)],
      ['llama.embedding_length', gguf.u32(d)],
      ['llama.block_count', gguf.u32(block_count)],
      ['llama.feed_forward_length', gguf.u32(ff)],
      ['llama.attention.head_count', gguf.u32(head_count)],
      ['llama.attention.head_count_kv', gguf.u32(head_count_kv)],
      ['llama.rope.dimension_count', gguf.u32(d / head_count)],
      ['llama.rope.freq_base', gguf.f32(10000)],
      ['llama.attention.layer_norm_rms_epsilon', gguf.f32(1e-5)],
      ['tokenizer.ggml.model', gguf.string('llama')],
      ['tokenizer.ggml.tokens', gguf.strings(tokens)],
      ['tokenizer.ggml.scores', gguf.f32s(tokens.map(() => 0))],
      ['tokenizer.ggml.token_type', gguf.i32s(types)],
      ['tokenizer.ggml.bos_token_id', gguf.u32(BOS_ID)],
      ['tokenizer.ggml.eos_token_id', gguf.u32(EOS_ID)],
      ['tokenizer.ggml.unknown_token_id', gguf.u32(0)],
      ['tokenizer.ggml.padding_token_id', gguf.u32(0)],
      ['tokenizer.ggml.add_bos_token', gguf.bool(true)],
      ['tokenizer.ggml.add_eos_token', gguf.bool(false)],
      // Without this, SentencePiece prepends "▁" to every prompt and the last-token rule gets a surprise first token.
      ['tokenizer.ggml.add_space_prefix', gguf.bool(false)],
      ['tokenizer.chat_template', gguf.string(TINY_CHAT_TEMPLATE)],
    ],
    tensors,
  };
}

/**
 * Tokens the toy tokenizer makes of `text`: one per printable ASCII character or space, one per UTF-8 byte of
 * anything else; `<|im_start|>` / `<|im_end|>` count as one when `special` (as in a rendered chat prompt).
 * Excludes the BOS token that completions prepend.
 */
export function countTinyTokens(text: string, opts: { special?: boolean } = {}): number {
  const parts = opts.special ? text.split(/(<\|im_start\|>|<\|im_end\|>)/) : [text];
  let count = 0;
  for (const part of parts) {
    if (part === '<|im_start|>' || part === '<|im_end|>') {
      count += opts.special ? 1 : part.length;
      continue;
    }
    for (const c of part) count += c === ' ' || CHARS.includes(c) ? 1 : Buffer.byteLength(c, 'utf8');
  }
  return count;
}

/** The prompt text ChatML renders for `messages`, ending with the assistant's turn opener (add_generation_prompt). */
export function chatMLPrompt(messages: ReadonlyArray<{ role: string; content: string }>): string {
  return messages.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join('') + '<|im_start|>assistant\n';
}

/** Write the toy model to `path` (parent folders created). Deterministic: the same bytes every time. */
export async function writeTinyModel(path: string, variant: TinyModelVariant = {}): Promise<{ path: string; name: string; bytes: number }> {
  const buf = encodeGguf(tinyModelGguf(variant));
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, buf);
  return { path, name: TINY_MODEL_NAME, bytes: buf.length };
}
