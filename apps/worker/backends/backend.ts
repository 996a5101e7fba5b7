// The contract every inference backend (ollama, openai, llamacpp) implements for the node agent.
import type { BackendKind, BackendProbe, ChatCall, EmbedCall, GenerateCall, InferenceOutput, PullProgress } from '../../../libs/core/index.js';

export interface CallHooks {
  /** Aborting must stop work on the backend (close the HTTP request, stop decoding). */
  signal: AbortSignal;
  /** Called with each new piece of generated text, in order. */
  onToken?: (text: string) => void;
  /** Called with each new piece of reasoning text (thinking models), in order. */
  onThinking?: (text: string) => void;
}

export interface AdminHooks {
  signal: AbortSignal;
  /** Pull progress as the backend reports it. */
  onProgress?: (p: PullProgress) => void;
}

export interface InferenceBackend {
  readonly kind: BackendKind;
  /** Where the backend lives (http URL, or `llamacpp://<models dir>`). */
  readonly url: string;
  /** Health, models available and loaded. Must not throw: failures are `healthy: false` with `error`. */
  probe(signal?: AbortSignal): Promise<BackendProbe>;
  generate(call: GenerateCall, hooks: CallHooks): Promise<InferenceOutput>;
  chat(call: ChatCall, hooks: CallHooks): Promise<InferenceOutput>;
  embed(call: EmbedCall, hooks: CallHooks): Promise<InferenceOutput>;
  /**
   * Model management. A backend that cannot do one leaves it out, and the node answers that with a clear error
   * (e.g. llama.cpp in-process cannot download models; an OpenAI-compatible server has no pull API).
   */
  pull?(model: string, opts: { insecure?: boolean }, hooks: AdminHooks): Promise<void>;
  delete?(model: string, hooks: AdminHooks): Promise<void>;
  /** Unload the model from memory now (Ollama: keep_alive 0). */
  unload?(model: string, hooks: AdminHooks): Promise<void>;
  close(): Promise<void>;
}
