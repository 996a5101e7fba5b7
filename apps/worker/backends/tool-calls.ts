// Tool calls between the wire forms and Hydra's (Ollama's: arguments an object): parsing argument strings, and
// assembling OpenAI's streamed deltas (pieces of name and arguments per index) into whole calls.
import type { ToolCall } from '../../../libs/core/index.js';

/**
 * Arguments as an object: objects as they are, JSON-object strings parsed. Anything else (a model that wrote broken
 * JSON, or a bare value) is kept whole as `{ _raw: "<text>" }` rather than dropped or failed: the client that runs the
 * tool sees exactly what the model said and can decide.
 */
export function toolArguments(a: unknown): Record<string, unknown> {
  if (a === null || a === undefined || a === '') return {};
  if (typeof a === 'object' && !Array.isArray(a)) return a as Record<string, unknown>;
  if (typeof a === 'string') {
    try {
      const v: unknown = JSON.parse(a);
      if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      // not JSON: kept raw below
    }
    return { _raw: a };
  }
  return { _raw: JSON.stringify(a) };
}

/** One streamed piece of a call (OpenAI `delta.tool_calls[i]`): the first piece of an index has the id and name. */
export interface ToolCallDelta {
  index?: number | null | undefined;
  id?: string | null | undefined;
  function?: { name?: string | null | undefined; arguments?: string | null | undefined } | null | undefined;
}

/** Collects deltas by index; `calls()` gives the finished calls in index order. */
export class ToolCallAccumulator {
  private readonly parts = new Map<number, { id?: string; name: string; args: string }>();

  add(d: ToolCallDelta): void {
    // Servers that send each call whole and without an index (some do) get one index per call.
    const index = d.index ?? this.parts.size;
    const p = this.parts.get(index) ?? { name: '', args: '' };
    if (d.id) p.id = d.id;
    if (d.function?.name) p.name += d.function.name;
    if (d.function?.arguments) p.args += d.function.arguments;
    this.parts.set(index, p);
  }

  calls(): ToolCall[] {
    return [...this.parts.entries()]
      .sort(([a], [b]) => a - b)
      .filter(([, p]) => p.name !== '')
      .map(([index, p]) => ({ ...(p.id ? { id: p.id } : {}), type: 'function' as const, function: { index, name: p.name, arguments: toolArguments(p.args) } }));
  }
}
