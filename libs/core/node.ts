// Node (inference server) facts as reported by a worker: models, memory, health.

/** Architecture numbers needed for the KV-cache estimate (Ollama's /api/show model_info, or GGUF metadata). */
export interface ModelArch {
  block_count: number;
  head_count: number;
  head_count_kv: number;
  embedding_length: number;
  context_length?: number;
}

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
   * Without it the scheduler estimates weights + f16 KV cache as Ollama does.
   */
  need_bytes?: number;
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
  context_length?: number;
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
}
