// The simulated node's model catalog: the `name=sizeGb` flag syntax and the Ollama-shaped facts (tags, show) about each model.
import { createHash } from 'node:crypto';
import { DEFAULT_EMBEDDING_LENGTH } from './sim-text.js';

/** One model the node "has on disk". `sizeGb` is decimal GB (1e9 bytes), as Ollama's /api/tags sizes are. */
export interface SimModelSpec {
  name: string;
  sizeGb: number;
  /** Set for embedding models: the width of their vectors (and `llama.embedding_length`). */
  embeddingLength?: number;
}

export const BYTES_PER_GB = 1e9;

/**
 * Parses `"qwen3:14b=9.3,llama3.1:70b=43,nomic-embed-text=0.27:768"`: comma-separated `name=sizeGb`, with an optional
 * `:embeddingLength` after the size for embedding models. Throws an Error naming the bad entry.
 */
export function parseModelsArg(arg: string): SimModelSpec[] {
  const entries = arg.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (entries.length === 0) throw new Error('no models given: expected "name=sizeGb[,name=sizeGb...]", e.g. "qwen3:14b=9.3,llama3.1:70b=43"');
  const out: SimModelSpec[] = [];
  for (const entry of entries) {
    const eq = entry.lastIndexOf('=');
    const name = eq > 0 ? entry.slice(0, eq).trim() : '';
    const [sizeText = '', dimText, ...rest] = eq > 0 ? entry.slice(eq + 1).split(':') : [];
    const sizeGb = Number(sizeText);
    if (!name || sizeText.trim() === '' || !Number.isFinite(sizeGb) || sizeGb <= 0 || rest.length > 0) {
      throw new Error(`bad model entry "${entry}": expected name=sizeGb with a positive size in GB (e.g. qwen3:14b=9.3), optionally name=sizeGb:embeddingLength`);
    }
    let embeddingLength: number | undefined;
    if (dimText !== undefined) {
      embeddingLength = Number(dimText);
      if (!Number.isInteger(embeddingLength) || embeddingLength <= 0) {
        throw new Error(`bad model entry "${entry}": the embedding length after the size must be a positive integer (e.g. nomic-embed-text=0.27:768)`);
      }
    }
    if (out.some((m) => m.name === name)) throw new Error(`model "${name}" is listed twice`);
    out.push(embeddingLength === undefined ? { name, sizeGb } : { name, sizeGb, embeddingLength });
  }
  return out;
}

export const modelBytes = (m: SimModelSpec): number => Math.round(m.sizeGb * BYTES_PER_GB);
export const embeddingLengthOf = (m: SimModelSpec): number => m.embeddingLength ?? DEFAULT_EMBEDDING_LENGTH;
export const modelDigest = (m: SimModelSpec): string => createHash('sha256').update(`simulated:${m.name}:${modelBytes(m)}`).digest('hex');

/** Q4_K_M weighs about 0.6 GB per billion parameters: the size gives a plausible parameter count. */
const GB_PER_BILLION_PARAMS = 0.6;

interface SimArch {
  block_count: number;
  embedding_length: number;
  head_count: number;
  head_count_kv: number;
  context_length: number;
}

/** Real llama/qwen shapes by parameter count (llama3.2:1b/3b, llama3.1:8b, qwen3:14b/32b, llama3.1:70b/405b). */
const ARCH_BY_PARAMS: Array<{ maxBillions: number; arch: SimArch }> = [
  { maxBillions: 2, arch: { block_count: 16, embedding_length: 2048, head_count: 32, head_count_kv: 8, context_length: 131072 } },
  { maxBillions: 5, arch: { block_count: 28, embedding_length: 3072, head_count: 24, head_count_kv: 8, context_length: 131072 } },
  { maxBillions: 11, arch: { block_count: 32, embedding_length: 4096, head_count: 32, head_count_kv: 8, context_length: 131072 } },
  { maxBillions: 20, arch: { block_count: 40, embedding_length: 5120, head_count: 40, head_count_kv: 8, context_length: 40960 } },
  { maxBillions: 40, arch: { block_count: 64, embedding_length: 5120, head_count: 64, head_count_kv: 8, context_length: 40960 } },
  { maxBillions: 150, arch: { block_count: 80, embedding_length: 8192, head_count: 64, head_count_kv: 8, context_length: 131072 } },
];
const LARGEST_ARCH: SimArch = { block_count: 126, embedding_length: 16384, head_count: 128, head_count_kv: 8, context_length: 131072 };

function archOf(m: SimModelSpec): SimArch {
  if (m.embeddingLength !== undefined) {
    const heads = m.embeddingLength % 64 === 0 ? m.embeddingLength / 64 : 1;
    return { block_count: 12, embedding_length: m.embeddingLength, head_count: heads, head_count_kv: heads, context_length: 8192 };
  }
  const billions = m.sizeGb / GB_PER_BILLION_PARAMS;
  const row = ARCH_BY_PARAMS.find((r) => billions <= r.maxBillions);
  return { ...(row?.arch ?? LARGEST_ARCH) };
}

function parameterSize(m: SimModelSpec): string {
  const billions = m.sizeGb / GB_PER_BILLION_PARAMS;
  return billions < 1 ? `${Math.round(billions * 1000)}M` : `${billions.toFixed(1)}B`;
}

export function modelDetails(m: SimModelSpec): Record<string, unknown> {
  return {
    parent_model: '',
    format: 'gguf',
    family: 'simulated',
    families: ['simulated'],
    parameter_size: parameterSize(m),
    quantization_level: 'Q4_K_M',
  };
}

/** One entry of /api/tags. */
export function tagsEntry(m: SimModelSpec, modifiedAt: string): Record<string, unknown> {
  return { name: m.name, model: m.name, modified_at: modifiedAt, size: modelBytes(m), digest: modelDigest(m), details: modelDetails(m) };
}

/** The /api/show answer. `capabilities` says `embedding` for models declared with an embedding length. */
export function showBody(m: SimModelSpec, modifiedAt: string): Record<string, unknown> {
  const a = archOf(m);
  const modelInfo: Record<string, unknown> = {
    'general.architecture': 'llama',
    'general.basename': m.name.split(':')[0],
    'general.parameter_count': Math.round((m.sizeGb / GB_PER_BILLION_PARAMS) * 1e9),
    'general.file_type': 15,
    'general.quantization_version': 2,
    'llama.block_count': a.block_count,
    'llama.attention.head_count': a.head_count,
    'llama.attention.head_count_kv': a.head_count_kv,
    'llama.embedding_length': a.embedding_length,
    'llama.context_length': a.context_length,
    'llama.feed_forward_length': a.embedding_length * 4,
    'llama.vocab_size': 128256,
  };
  if (m.embeddingLength !== undefined) modelInfo['llama.pooling_type'] = 1;
  return {
    license: 'simulated model: no weights, no license',
    modelfile: `# simulated by hydra node-sim\nFROM ${m.name}\n`,
    parameters: '',
    template: '{{ .Prompt }}',
    details: modelDetails(m),
    model_info: modelInfo,
    capabilities: m.embeddingLength !== undefined ? ['embedding'] : ['completion'],
    modified_at: modifiedAt,
  };
}
