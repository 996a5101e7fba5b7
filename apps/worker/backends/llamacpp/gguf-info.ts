// What probe() says about a GGUF without loading it: architecture numbers, family, size, quantization, capabilities; cached per file version.
import { stat } from 'node:fs/promises';
import type { ChatWrapper, GgufFileInfo } from 'node-llama-cpp';
import type { ModelAvailable, ModelCapability } from '../../../../libs/core/index.js';
import type { NodeLlamaCpp } from './runtime.js';

/** What probe() reports of one GGUF file: a model as the node agent sees it, less its name. */
export type GgufSummary = Omit<ModelAvailable, 'name'>;

/** Memory (bytes) to load a model and create its context, from llama.cpp's own accounting (node-llama-cpp's GgufInsights). */
export type NeedEstimator = (info: GgufFileInfo) => Promise<number | undefined>;

/** Big arrays probe() does not need; skipping them keeps a metadata read to a few ms. */
const IGNORED_KEYS = ['tokenizer.ggml.tokens', 'tokenizer.ggml.scores', 'tokenizer.ggml.token_type', 'tokenizer.ggml.merges'];

/**
 * Bytes per block and values per block of common ggml types (ggml.c type_traits), to notice a file whose
 * tensor data runs past its end. Types not listed are only checked for where their data starts.
 */
const GGML_BLOCKS: Record<number, readonly [values: number, bytes: number]> = {
  0: [1, 4], // F32
  1: [1, 2], // F16
  2: [32, 18], // Q4_0
  3: [32, 20], // Q4_1
  6: [32, 22], // Q5_0
  7: [32, 24], // Q5_1
  8: [32, 34], // Q8_0
  10: [256, 84], // Q2_K
  11: [256, 110], // Q3_K
  12: [256, 144], // Q4_K
  13: [256, 176], // Q5_K
  14: [256, 210], // Q6_K
  30: [1, 2], // BF16
};

/** Reads each file once per (size, mtime); a file whose metadata cannot be read is remembered with the reason. */
export class GgufInfoCache {
  private readonly cache = new Map<string, { key: string; result: GgufSummary | { error: string } }>();

  constructor(
    private readonly nlc: NodeLlamaCpp,
    private readonly estimateNeed?: NeedEstimator,
  ) {}

  /** The summary, or `{ error }` saying why the file is not a usable GGUF. Never throws. */
  async get(path: string): Promise<GgufSummary | { error: string }> {
    let key: string;
    let size: number;
    try {
      const s = await stat(path);
      size = s.size;
      key = `${s.size}:${s.mtimeMs}`;
    } catch (e) {
      return { error: `cannot read ${path}: ${e instanceof Error ? e.message : String(e)}` };
    }
    const hit = this.cache.get(path);
    if (hit?.key === key) return hit.result;
    let result: GgufSummary | { error: string };
    try {
      const info = await this.nlc.readGgufFileInfo(path, { sourceType: 'filesystem', logWarnings: false, ignoreKeys: IGNORED_KEYS });
      const truncated = truncation(info, size);
      result = truncated ? { error: truncated } : summarise(info, size, this.nlc, path);
      if (!('error' in result) && this.estimateNeed) {
        const need = await this.estimateNeed(info).catch(() => undefined);
        if (need !== undefined && need > 0) result.need_bytes = need;
      }
    } catch (e) {
      result = { error: `not a readable GGUF file: ${e instanceof Error ? e.message : String(e)}` };
    }
    this.cache.set(path, { key, result });
    return result;
  }
}

/**
 * What a model can do through this backend, in Ollama's words. completion always; tools when its chat wrapper has a
 * function-call syntax (every node-llama-cpp wrapper does, Jinja ones included: the functions are documented in the
 * system prompt and the call is grammar-constrained); thinking when the wrapper knows thought segments (e.g. the
 * Qwen3 and DeepSeek-R1 templates). Never vision (node-llama-cpp 3.22 takes no images) nor insert (suffix is not
 * implemented here), so such requests are refused at submit rather than answered wrongly.
 */
export function chatCapabilities(wrapper: ChatWrapper | null): ModelCapability[] {
  const caps: ModelCapability[] = ['completion'];
  const prefix = wrapper?.settings.functions.call.prefix;
  if (prefix !== undefined && String(prefix) !== '') caps.push('tools');
  if (wrapper?.settings.segments?.thought) caps.push('thinking');
  return caps;
}

function summarise(info: GgufFileInfo, size: number, nlc: NodeLlamaCpp, path: string): GgufSummary {
  const a = info.architectureMetadata;
  const family = info.metadata.general.architecture;
  // Resolved from the metadata as a load would (the template in tokenizer.chat_template); null: no template, the
  // loaded model then gets node-llama-cpp's general wrapper, which has the same function-call syntax.
  const wrapper = nlc.resolveChatWrapper({ fileInfo: info, filename: path, warningLogs: false }) ?? new nlc.GeneralChatWrapper();
  const out: GgufSummary = { size_bytes: size, family, capabilities: chatCapabilities(wrapper) };
  if (a.block_count !== undefined && a.embedding_length !== undefined) {
    const headCount = firstNumber(a.attention?.head_count) ?? 1;
    const keyLength = firstNumber(a.attention?.key_length);
    const valueLength = firstNumber(a.attention?.value_length);
    const vocab = a.vocab_size ?? vocabOf(info);
    out.arch = {
      block_count: a.block_count,
      head_count: headCount,
      head_count_kv: firstNumber(a.attention?.head_count_kv) ?? headCount,
      embedding_length: a.embedding_length,
      ...(a.context_length !== undefined ? { context_length: a.context_length } : {}),
      ...(keyLength !== undefined ? { key_length: keyLength } : {}),
      ...(valueLength !== undefined ? { value_length: valueLength } : {}),
      ...(vocab !== undefined ? { vocab_size: vocab } : {}),
    };
    out.embedding_length = a.embedding_length;
  }
  const params = (info.fullTensorInfo ?? info.tensorInfo ?? []).reduce(
    (sum, t) => sum + t.dimensions.reduce<number>((p, d) => p * Number(d), 1),
    0,
  );
  if (params > 0) out.parameter_size = humanCount(params);
  const fileType = info.metadata.general.file_type;
  if (fileType !== undefined) {
    const name = nlc.GgufFileType[fileType];
    if (name) out.quantization = name.replace(/^(MOSTLY|ALL)_/, '');
  }
  return out;
}

/**
 * Vocabulary size from the token embedding's shape ([embedding, vocabulary]): the token list itself is skipped when
 * reading metadata (IGNORED_KEYS), so its length is not known.
 */
function vocabOf(info: GgufFileInfo): number | undefined {
  const t = (info.fullTensorInfo ?? info.tensorInfo ?? []).find((x) => x.name === 'token_embd.weight');
  const rows = t?.dimensions[1];
  return rows === undefined ? undefined : Number(rows);
}

/** Some models store per-layer head counts as arrays; the first layer's is what the KV estimate needs. */
function firstNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (Array.isArray(v) && typeof v[0] === 'number') return v[0];
  return undefined;
}

/** Why the file is shorter than its tensors need, or undefined. */
function truncation(info: GgufFileInfo, fileSize: number): string | undefined {
  for (const t of info.tensorInfo ?? []) {
    if (t.filePart !== 1) continue; // later parts of a split model live in their own files
    const start = Number(t.fileOffset);
    const block = GGML_BLOCKS[t.ggmlType];
    const values = t.dimensions.reduce<number>((p, d) => p * Number(d), 1);
    const end = block ? start + Math.ceil(values / block[0]) * block[1] : start;
    if (end > fileSize) return `file is truncated: tensor ${t.name} needs bytes up to ${end} but the file has ${fileSize}`;
  }
  return undefined;
}

/** Ollama-style parameter count: "8.0B", "494.03M", "115K". */
function humanCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${Math.round(n / 1e3)}K`;
  return String(n);
}
