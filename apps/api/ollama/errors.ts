// Errors as Ollama clients expect them on /api/*: `{"error": "<message>"}` with Ollama's status codes.
import { ErrorCode, type HydraError } from '../../../libs/core/index.js';

/** Status and body of an error on the Ollama surface. */
export function ollamaError(e: HydraError, status: number): { status: number; body: { error: string } } {
  // Ollama answers a model nobody has with 404 "model 'x' not found"; Hydra's native surface says 422 unsatisfiable.
  const details = e.details as { model?: string; models_available?: string[] } | undefined;
  if (e.code === ErrorCode.Unsatisfiable && details?.model && details.models_available) {
    return { status: 404, body: { error: `model '${details.model}' not found` } };
  }
  return { status, body: { error: e.message } };
}
