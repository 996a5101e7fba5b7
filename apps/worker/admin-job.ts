// Runs one admin job (pull, delete, unload a model) on this node's backend: progress entries on the job's stream, a clear refusal for what the backend cannot do.
import { ErrorCode, HydraError, type AdminCall, type PullProgress } from '../../libs/core/index.js';
import type { AdminJob, TokenStream } from '../../libs/queue/index.js';
import type { AdminHooks, InferenceBackend } from './backends/backend.js';

/** What a completed admin job returns (and its terminal `done` stream entry carries). */
export interface AdminResult {
  status: 'success';
  node_id: string;
  op: AdminCall['op'];
  model: string;
}

/** Why a backend kind cannot do an op, and what to do instead. */
const CANNOT: Record<InferenceBackend['kind'], string> = {
  ollama: 'this Ollama server does not offer it',
  openai: 'OpenAI-compatible servers have no model management API; manage models on that server itself',
  llamacpp: 'llama.cpp nodes load GGUF files from MODELS_DIR; copy the file there (or remove it) instead',
};
const BACKEND_NAME: Record<InferenceBackend['kind'], string> = { ollama: 'Ollama', openai: 'OpenAI-compatible', llamacpp: 'llama.cpp' };

/**
 * Run `data.call` on the backend. Each pull progress is written as a `progress` stream entry, in order. An op the
 * backend lacks fails as bad_request (never retried: the same node would refuse again). A job addressed to another
 * node (it cannot happen through the API, which queues it on that node's own queue) is refused too.
 */
export async function runAdmin(data: AdminJob, backend: InferenceBackend, nodeId: string, signal: AbortSignal, stream: TokenStream): Promise<AdminResult> {
  const { call } = data;
  if (data.node_id !== nodeId) {
    throw new HydraError(ErrorCode.BadRequest, `this admin job is for node ${data.node_id} but ran on ${nodeId}; resubmit it for the node you mean`);
  }
  const progress: Promise<void>[] = [];
  const hooks: AdminHooks = { signal, onProgress: (p: PullProgress) => progress.push(stream.event('progress', p)) };
  if (!backend[call.op]) {
    throw new HydraError(ErrorCode.BadRequest, `node ${nodeId} (${BACKEND_NAME[backend.kind]}) cannot ${call.op} models: ${CANNOT[backend.kind]}`, {
      details: { node_id: nodeId, backend: backend.kind, op: call.op },
    });
  }
  if (call.op === 'pull') await backend.pull?.(call.model, call.insecure === undefined ? {} : { insecure: call.insecure }, hooks);
  else if (call.op === 'delete') await backend.delete?.(call.model, hooks);
  else await backend.unload?.(call.model, hooks);
  // Delete and unload report no progress of their own: one entry says it was done, as Ollama's clients expect a status.
  if (call.op !== 'pull') progress.push(stream.event('progress', { status: call.op === 'delete' ? 'deleted' : 'unloaded' }));
  await Promise.all(progress);
  return { status: 'success', node_id: nodeId, op: call.op, model: call.model };
}
