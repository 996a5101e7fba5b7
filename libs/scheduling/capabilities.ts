// What a call needs from its model (images → vision, tools → tools, think → thinking, suffix → insert) against what
// the nodes that have the model report. Pure. A node that reports no capabilities is unknown, and never blocks.
import { ErrorCode, HydraError, type InferenceCall, type ModelCapability, type NodeRecord } from '../core/index.js';
import { sameModel } from './models.js';

const WHAT: Record<ModelCapability, string> = {
  completion: 'text generation',
  embedding: 'embeddings',
  vision: 'images (vision)',
  tools: 'tools (function calling)',
  thinking: 'thinking',
  insert: 'suffix (fill-in-the-middle)',
};

/** The capabilities a call needs beyond plain text. */
export function requiredCapabilities(call: InferenceCall): ModelCapability[] {
  const need = new Set<ModelCapability>();
  if (call.type === 'generate') {
    if (call.images?.length) need.add('vision');
    if (call.think) need.add('thinking');
    if (call.suffix) need.add('insert');
  } else if (call.type === 'chat') {
    if (call.messages.some((m) => m.images?.length)) need.add('vision');
    if (call.tools?.length) need.add('tools');
    if (call.think) need.add('thinking');
  }
  return [...need];
}

/**
 * Throws bad_request when every node that has the model says it lacks a capability the call needs (so the request
 * could never be served as asked); does nothing when some node does not say.
 */
export function checkCapabilities(call: InferenceCall, nodes: readonly NodeRecord[]): void {
  const need = requiredCapabilities(call);
  if (need.length === 0) return;
  const entries = nodes.flatMap((n) => n.models_available.filter((m) => sameModel(m.name, call.model)).map((m) => ({ node: n.id, caps: m.capabilities })));
  if (entries.length === 0 || entries.some((e) => e.caps === undefined)) return;
  const missing = need.filter((c) => !entries.some((e) => e.caps!.includes(c)));
  if (missing.length === 0) return;
  throw new HydraError(
    ErrorCode.BadRequest,
    `model "${call.model}" does not support ${missing.map((c) => WHAT[c]).join(' or ')} on any node that has it (${entries.map((e) => `${e.node}: ${e.caps!.join(', ') || 'no capabilities'}`).join('; ')})`,
    { details: { model: call.model, missing, param: missing.includes('vision') ? 'images' : missing.includes('tools') ? 'tools' : 'think' } },
  );
}
