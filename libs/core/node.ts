// Node (inference server) facts as reported by a worker: models, memory, health.

/** Architecture numbers needed for the memory estimate (Ollama's /api/show model_info, or GGUF metadata). */
export interface ModelArch {
  block_count: number;
  head_count: number;
  head_count_kv: number;
  embedding_length: number;
  context_length?: number;
  /** Per-head width of keys / values (`attention.key_length` / `value_length`); absent: embedding_length / head_count. */
  key_length?: number;
  value_length?: number;
  /** Tokens in the vocabulary (`<arch>.vocab_size`, or the token embedding's rows): sizes the logits buffer. */
  vocab_size?: number;
}

/**
 * Element types of the KV cache Ollama accepts in OLLAMA_KV_CACHE_TYPE (KV_CACHE_TYPE here): f16 (the default), or
 * the ggml block quantizations q8_0 and q4_0 (Ollama applies them only with flash attention on).
 */
export const KV_CACHE_TYPES = ['f16', 'q8_0', 'q4_0'] as const;
export type KvCacheType = (typeof KV_CACHE_TYPES)[number];

/**
 * Where a model's `need_mb` comes from (docs/scheduling.md, "Memory admission"):
 * - `estimate`: weights + KV cache + compute graph, from the model's architecture numbers;
 * - `weights`: weights only (no architecture numbers: KV cache and graph are not counted);
 * - `backend`: the backend's own accounting (llama.cpp in-process) at the node's NUM_CTX × NUM_PARALLEL;
 * - `unknown`: no size at all (an OpenAI-compatible server that does not say, and no OPENAI_MODEL_SIZES entry): the
 *   model is counted as taking the node's whole capacity, so it never runs beside another model there.
 */
export type NeedSource = 'estimate' | 'weights' | 'backend' | 'unknown';

/**
 * What a model can do, in Ollama's words (/api/show `capabilities`): completion (text generation), embedding,
 * vision (images in), tools (function calling), thinking (a separate reasoning trace), insert (suffix / FIM).
 */
export const MODEL_CAPABILITIES = ['completion', 'embedding', 'vision', 'tools', 'thinking', 'insert'] as const;
export type ModelCapability = (typeof MODEL_CAPABILITIES)[number];

/** The fields Ollama's /api/tags and /api/ps show per model, as the node's backend reported them. */
export interface ModelDetails {
  format?: string;
  family?: string;
  families?: string[];
  parameter_size?: string;
  quantization_level?: string;
}

export interface ModelAvailable {
  name: string;
  /** Weights on disk, bytes. */
  size_bytes: number;
  digest?: string;
  /** ISO-8601 with offset. */
  modified_at?: string;
  details?: ModelDetails;
  /** Known capabilities; absent = unknown (the backend does not say), which never blocks a request. */
  capabilities?: ModelCapability[];
  arch?: ModelArch;
  family?: string;
  parameter_size?: string;
  quantization?: string;
  /** Embedding width when the model is used for embeddings, if known. */
  embedding_length?: number;
  /**
   * Memory to load it and hold one context, bytes, when the backend can compute it exactly (llama.cpp's own estimate).
   * Without it the scheduler estimates weights + KV cache + compute graph as Ollama does.
   */
  need_bytes?: number;
  /** True when the backend does not know the weights' size (`size_bytes` is then 0): see NeedSource `unknown`. */
  size_unknown?: boolean;
  /** The context the model serves, tokens, when the backend says it without `arch` (vLLM max_model_len, llama-server n_ctx_train). */
  context_length?: number;
}

export interface ModelLoaded {
  name: string;
  /** Total memory the loaded model occupies, bytes. */
  size_bytes: number;
  /** Part of it in VRAM, bytes (0 on CPU). */
  vram_bytes: number;
  /** When the backend will unload it if idle: ISO-8601 with a UTC offset. */
  expires_at?: string;
  digest?: string;
  context_length?: number;
}

/** One probe of a backend: health plus what it has and has loaded. */
export interface BackendProbe {
  healthy: boolean;
  error?: string;
  version?: string;
  models_available: ModelAvailable[];
  models_loaded: ModelLoaded[];
  /** Concurrent requests per model the server itself reports (llama-server's slots); else NUM_PARALLEL is used. */
  parallel?: number;
  /** Memory facts the backend itself knows (llama.cpp does; Ollama does not). Bytes. */
  memory?: { vram_total: number; vram_free: number; ram_total?: number; ram_free?: number };
  /** The KV cache type the backend really uses, when it knows (llama.cpp in-process: f16); else KV_CACHE_TYPE applies. */
  kv_cache_type?: KvCacheType;
}

/** Every inference backend a worker can front; config, the node record and the worker's backend table use this list. */
export const BACKEND_KINDS = ['ollama', 'openai', 'llamacpp'] as const;
export type BackendKind = (typeof BACKEND_KINDS)[number];

const NODE_TYPES = ['gpu', 'cpu'] as const;
export type NodeType = (typeof NODE_TYPES)[number];

/** A model a node has, as the registry shows it: sizes in MB, plus what /api/tags and capability checks need. */
export interface NodeModel {
  name: string;
  size_mb: number;
  need_mb: number;
  /** Exact size in bytes, for Ollama's /api/tags. */
  size_bytes?: number;
  digest?: string;
  modified_at?: string;
  details?: ModelDetails;
  capabilities?: ModelCapability[];
  /** The model's own (training) context; a request's num_ctx is capped at it. */
  context_length?: number;
  /** Where `need_mb` comes from; absent in records of older workers (then: an estimate of weights + f16 KV). */
  need_source?: NeedSource;
  /**
   * The facts `needMbFor` (libs/scheduling) computes the need at another num_ctx from. Weights are `size_bytes`
   * (`size_mb`). KV cache bytes for one token of context in one slot, over all layers, K and V, at `kv_cache_type`:
   * the KV cache of a load is this × num_ctx × parallel.
   */
  kv_bytes_per_token?: number;
  kv_cache_type?: KvCacheType;
  /** Inputs of the compute-graph estimate; `vocab_size` absent: unknown, or an embedding model (no logits). */
  graph?: { embedding_length: number; head_count: number; vocab_size?: number };
  /**
   * MiB added to the formula so that `needMbFor` at the node's NUM_CTX × NUM_PARALLEL equals `need_mb` when the
   * backend gave its own figure (llama.cpp in-process); may be negative. Absent: 0.
   */
  correction_mb?: number;
}

/** Measured speed of one model on one node: EWMAs over its completed jobs (libs/registry/perf.ts). */
export interface ModelPerf {
  /** Decode speed, tokens per second (eval_count / eval_duration). */
  tokens_per_s: number;
  /** Time to the first token, ms, without a model load (that is `load_ms`). */
  ttft_ms: number;
  /** How long a job holds a backend slot, ms, without a model load: first token plus decoding (absent: unknown). */
  job_ms?: number;
  /** Model load time, ms, over the jobs that had to load the model; absent until one did. */
  load_ms?: number;
  /** Jobs measured. */
  samples: number;
  /** Of them, jobs that loaded the model (the samples of `load_ms`). */
  load_samples?: number;
  /** Last update, ms since epoch. */
  updated_at?: number;
}

export interface NodeLoadedModel {
  name: string;
  size_mb: number;
  vram_mb: number;
  size_bytes?: number;
  vram_bytes?: number;
  expires_at?: string;
  digest?: string;
  context_length?: number;
}

/** What a worker publishes about its node in the registry; sizes in MB (MiB). */
export interface NodeRecord {
  id: string;
  /** Backend address (http URL, or llamacpp://...). */
  url: string;
  backend: BackendKind;
  type: NodeType;
  /** True when the backend answers its probe. */
  healthy: boolean;
  error?: string;
  simulated: boolean;
  host: string;
  vram_total_mb: number;
  vram_available_mb: number;
  ram_total_mb: number;
  ram_available_mb: number;
  /** Memory the scheduler may hand to models: total minus the safety buffer minus memory used outside the backend. */
  capacity_mb: number;
  buffer_mb: number;
  models_available: NodeModel[];
  models_loaded: NodeLoadedModel[];
  /** Worker processes serving this node id and their slots. */
  slots: number;
  /** NUM_CTX: the context per slot each model's `need_mb` is computed at (absent in records of older workers). */
  num_ctx?: number;
  /**
   * Requests the backend runs at once per loaded model (OLLAMA_NUM_PARALLEL as configured in NUM_PARALLEL, or the
   * server's own slots): a node never has more in flight for one model, so nothing queues inside a backend where
   * other nodes cannot take it. Absent in records of older workers: 1.
   */
  parallel?: number;
  /** Circuit breaker of the node, shared by all its worker processes (in Redis): open = not pulling after repeated backend failures. */
  breaker?: { state: 'closed' | 'open' | 'half_open'; recent_failures: number; open_until: number | null };
  last_heartbeat: number;
  version?: string;
  /**
   * Measured speed per model (canonical name, e.g. `llama3:latest`). Not written by the heartbeat: the registry's
   * `list()` attaches it from Redis (libs/registry/perf.ts); absent when nothing was measured yet.
   */
  perf?: Record<string, ModelPerf>;
}
