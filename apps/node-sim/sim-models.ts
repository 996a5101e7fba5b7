// The simulated node's model specs: the `name=sizeGb[:embeddingLength][:caps]` flag syntax, capabilities, names, and the Ollama-shaped facts (tags, show) about each model.
import { createHash } from 'node:crypto';
import { MODEL_CAPABILITIES, type ModelCapability } from '../../libs/core/index.js';
import { DEFAULT_EMBEDDING_LENGTH } from './sim-text.js';

/**
 * One model the node "has on disk" (or can pull). `sizeGb` is GiB (2^30 bytes), the unit of `--vram-gb` and of the
 * worker's NODE_VRAM_GB: "24 GB" of GPU memory means GiB in nvidia-smi and vendor specs, and one unit everywhere keeps
 * Hydra from over-committing its own simulated nodes (decimal GB would hold 7 % less than the worker counts).
 */
export interface SimModelSpec {
  name: string;
  sizeGb: number;
  /** Set for embedding models: the width of their vectors (and `llama.embedding_length`). */
  embeddingLength?: number;
  /**
   * What /api/show reports, exactly (Ollama's words). Default: `["embedding"]` for models declared with an embedding
   * length or named `*embed*`, else `["completion", "tools"]` (most chat models in Ollama's library can call tools).
   * Names from MODEL_CAPABILITIES (plain strings, so untyped literals assign); `createSimNode` rejects unknown ones.
   */
  capabilities?: readonly string[];
}

/** Bytes in the simulator's "GB" (a GiB): memory, model sizes and disk alike. */
export const BYTES_PER_GB = 1024 ** 3;

const ENTRY_SYNTAX = 'expected name=sizeGb[:embeddingLength][:capability+capability...] with a positive size in GB (e.g. qwen3:14b=9.3, nomic-embed-text=0.27:768, qwen3:8b=5.2:tools+thinking)';

/**
 * Parses `"qwen3:14b=9.3:tools+thinking,llava:7b=4.7:vision,nomic-embed-text=0.27:768"`: comma-separated
 * `name=sizeGb`, then optionally `:embeddingLength` (a number) and/or `:caps` (capabilities joined by `+`). Listed
 * capabilities replace the default; `completion` is implied unless `embedding` is listed. Throws an Error naming the
 * bad entry.
 */
export function parseModelsArg(arg: string): SimModelSpec[] {
  const entries = arg.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (entries.length === 0) throw new Error('no models given: expected "name=sizeGb[,name=sizeGb...]", e.g. "qwen3:14b=9.3,llama3.1:70b=43"');
  const out: SimModelSpec[] = [];
  for (const entry of entries) {
    const spec = parseEntry(entry);
    if (out.some((m) => m.name === spec.name)) throw new Error(`model "${spec.name}" is listed twice`);
    out.push(spec);
  }
  return out;
}

function parseEntry(entry: string): SimModelSpec {
  const eq = entry.lastIndexOf('=');
  const name = eq > 0 ? entry.slice(0, eq).trim() : '';
  const [sizeText = '', ...suffixes] = eq > 0 ? entry.slice(eq + 1).split(':') : [];
  const sizeGb = Number(sizeText);
  if (!name || sizeText.trim() === '' || !Number.isFinite(sizeGb) || sizeGb <= 0 || suffixes.length > 2) throw new Error(`bad model entry "${entry}": ${ENTRY_SYNTAX}`);
  const spec: SimModelSpec = { name, sizeGb };
  for (const [i, raw] of suffixes.entries()) {
    const text = raw.trim();
    if (i === 0 && /^[0-9.+-]+$/.test(text)) {
      const dims = Number(text);
      if (!Number.isInteger(dims) || dims <= 0) throw new Error(`bad model entry "${entry}": the embedding length after the size must be a positive integer (e.g. nomic-embed-text=0.27:768)`);
      spec.embeddingLength = dims;
    } else if (spec.capabilities === undefined) {
      spec.capabilities = parseCapabilities(entry, text);
    } else {
      throw new Error(`bad model entry "${entry}": ${ENTRY_SYNTAX}`);
    }
  }
  return spec;
}

function parseCapabilities(entry: string, text: string): ModelCapability[] {
  const listed = new Set<ModelCapability>();
  for (const c of text.split('+').map((s) => s.trim())) {
    if (!(MODEL_CAPABILITIES as readonly string[]).includes(c)) throw new Error(`bad model entry "${entry}": unknown capability "${c}" (known: ${MODEL_CAPABILITIES.join(', ')})`);
    listed.add(c as ModelCapability);
  }
  if (!listed.has('embedding')) listed.add('completion');
  return MODEL_CAPABILITIES.filter((c) => listed.has(c));
}

/** Throws an Error naming the first capability of `m` that Ollama does not have. */
export function checkCapabilityNames(m: SimModelSpec): void {
  const bad = m.capabilities?.find((c) => !(MODEL_CAPABILITIES as readonly string[]).includes(c));
  if (bad !== undefined) throw new Error(`model "${m.name}": unknown capability "${bad}" (known: ${MODEL_CAPABILITIES.join(', ')})`);
}

/** What the model can do (see `SimModelSpec.capabilities` for the default). */
export function capabilitiesOf(m: SimModelSpec): ModelCapability[] {
  if (m.capabilities) return MODEL_CAPABILITIES.filter((c) => m.capabilities?.includes(c));
  return m.embeddingLength !== undefined || /embed/i.test(m.name) ? ['embedding'] : ['completion', 'tools'];
}

/** Ollama treats a name without a tag as `:latest`: "qwen3" and "qwen3:latest" are the same model. */
export function canonicalName(name: string): string {
  const last = name.slice(name.lastIndexOf('/') + 1);
  return last.includes(':') ? name : `${name}:latest`;
}

/** The fully qualified name Ollama puts in capability errors, e.g. `registry.ollama.ai/library/qwen3:latest`. */
export function qualifiedName(name: string): string {
  const parts = canonicalName(name).split('/');
  if (parts.length === 1) return `registry.ollama.ai/library/${parts[0]}`;
  if (parts.length === 2) return `registry.ollama.ai/${parts.join('/')}`;
  return parts.join('/');
}

export const modelBytes = (m: SimModelSpec): number => Math.round(m.sizeGb * BYTES_PER_GB);
export const embeddingLengthOf = (m: SimModelSpec): number => m.embeddingLength ?? DEFAULT_EMBEDDING_LENGTH;
export const modelDigest = (m: SimModelSpec): string => createHash('sha256').update(`simulated:${m.name}:${modelBytes(m)}`).digest('hex');

/** Q4_K_M weighs about 0.6 GB per billion parameters: the size gives a plausible parameter count. */
const GB_PER_BILLION_PARAMS = 0.6;

/** Architecture numbers as GGUF names them (`<arch>.block_count`, ...): what /api/show reports and what memory is sized from. */
export interface SimArch {
  block_count: number;
  embedding_length: number;
  head_count: number;
  head_count_kv: number;
  context_length: number;
  /** Per-head width of keys and values (`attention.key_length` / `value_length`): embedding_length / head_count. */
  key_length: number;
  value_length: number;
}

/** `llama.vocab_size` the sim reports: llama 3's tokenizer. It sizes the logits buffer of the compute graph. */
export const VOCAB_SIZE = 128256;

type ArchShape = Omit<SimArch, 'key_length' | 'value_length'>;

/** Real llama/qwen shapes by parameter count (llama3.2:1b/3b, llama3.1:8b, qwen3:14b/32b, llama3.1:70b/405b). */
const ARCH_BY_PARAMS: Array<{ maxBillions: number; arch: ArchShape }> = [
  { maxBillions: 2, arch: { block_count: 16, embedding_length: 2048, head_count: 32, head_count_kv: 8, context_length: 131072 } },
  { maxBillions: 5, arch: { block_count: 28, embedding_length: 3072, head_count: 24, head_count_kv: 8, context_length: 131072 } },
  { maxBillions: 11, arch: { block_count: 32, embedding_length: 4096, head_count: 32, head_count_kv: 8, context_length: 131072 } },
  { maxBillions: 20, arch: { block_count: 40, embedding_length: 5120, head_count: 40, head_count_kv: 8, context_length: 40960 } },
  { maxBillions: 40, arch: { block_count: 64, embedding_length: 5120, head_count: 64, head_count_kv: 8, context_length: 40960 } },
  { maxBillions: 150, arch: { block_count: 80, embedding_length: 8192, head_count: 64, head_count_kv: 8, context_length: 131072 } },
];
const LARGEST_ARCH: ArchShape = { block_count: 126, embedding_length: 16384, head_count: 128, head_count_kv: 8, context_length: 131072 };

/** An embedding-only model: its vectors are as wide as its `llama.embedding_length`. */
export const isEmbeddingOnly = (m: SimModelSpec): boolean => {
  const caps = capabilitiesOf(m);
  return caps.includes('embedding') && !caps.includes('completion');
};

/** The model's architecture, derived from its size (embedding models: from their width). */
export function archOf(m: SimModelSpec): SimArch {
  let shape: ArchShape;
  if (isEmbeddingOnly(m)) {
    const width = embeddingLengthOf(m);
    const heads = width % 64 === 0 ? width / 64 : 1;
    shape = { block_count: 12, embedding_length: width, head_count: heads, head_count_kv: heads, context_length: 8192 };
  } else {
    const billions = m.sizeGb / GB_PER_BILLION_PARAMS;
    shape = { ...(ARCH_BY_PARAMS.find((r) => billions <= r.maxBillions)?.arch ?? LARGEST_ARCH) };
  }
  const headDim = shape.embedding_length / shape.head_count;
  return { ...shape, key_length: headDim, value_length: headDim };
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

/** The /api/show answer. */
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
    'llama.attention.key_length': a.key_length,
    'llama.attention.value_length': a.value_length,
    'llama.feed_forward_length': a.embedding_length * 4,
    'llama.vocab_size': VOCAB_SIZE,
  };
  if (isEmbeddingOnly(m)) modelInfo['llama.pooling_type'] = 1;
  return {
    license: 'simulated model: no weights, no license',
    modelfile: `# simulated by hydra node-sim\nFROM ${m.name}\n`,
    parameters: '',
    template: '{{ .Prompt }}',
    details: modelDetails(m),
    model_info: modelInfo,
    capabilities: capabilitiesOf(m),
    modified_at: modifiedAt,
  };
}
