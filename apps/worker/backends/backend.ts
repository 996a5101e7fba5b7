// The contract every inference backend (ollama, openai, llamacpp) implements for the node agent.
import type { BackendKind, BackendProbe, ChatCall, EmbedCall, GenerateCall, InferenceOutput } from '../../../libs/core/index.js';

export interface CallHooks {
  /** Aborting must stop work on the backend (close the HTTP request, stop decoding). */
  signal: AbortSignal;
  /** Called with each new piece of generated text, in order. */
  onToken?: (text: string) => void;
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
  close(): Promise<void>;
}
