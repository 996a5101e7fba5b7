// Node (inference server) facts as reported by a worker: models, memory, health.

/** Architecture numbers needed for the KV-cache estimate (Ollama's /api/show model_info, or GGUF metadata). */
export interface ModelArch {
  block_count: number;
  head_count: number;
  head_count_kv: number;
  embedding_length: number;
  context_length?: number;
}

export interface ModelAvailable {
  name: string;
  /** Weights on disk, bytes. */
  size_bytes: number;
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
  expires_at?: string;
}

/** One probe of a backend: health plus what it has and has loaded. */
export interface BackendProbe {
  healthy: boolean;
  error?: string;
  version?: string;
  models_available: ModelAvailable[];
  models_loaded: ModelLoaded[];
  /** Memory facts the backend itself knows (llama.cpp does; Ollama does not). Bytes. */
  memory?: { vram_total: number; vram_free: number; ram_total?: number; ram_free?: number };
}

/** Every inference backend a worker can front; config, the node record and the worker's backend table use this list. */
export const BACKEND_KINDS = ['ollama', 'openai', 'llamacpp'] as const;
export type BackendKind = (typeof BACKEND_KINDS)[number];

const NODE_TYPES = ['gpu', 'cpu'] as const;
export type NodeType = (typeof NODE_TYPES)[number];

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
  models_available: { name: string; size_mb: number; need_mb: number }[];
  models_loaded: { name: string; size_mb: number; vram_mb: number }[];
  /** Worker processes serving this node id and their slots. */
  slots: number;
  /** Circuit breaker of the reporting worker process: open = not pulling after repeated backend failures. */
  breaker?: { state: 'closed' | 'open' | 'half_open'; recent_failures: number; open_until: number | null };
  last_heartbeat: number;
  version?: string;
}
