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

export const NODE_TYPES = ['gpu', 'cpu'] as const;
export type NodeType = (typeof NODE_TYPES)[number];
