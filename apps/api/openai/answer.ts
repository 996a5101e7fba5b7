// Hydra results in OpenAI's response shapes: chat.completion, text_completion, embedding lists, models; tool calls
// with ids and JSON-string arguments, finish reasons and usage, shared by the plain answers and the SSE chunks.
import { canonicalModel } from '../../../libs/scheduling/index.js';
import type { InferResult, ToolCall } from '../../../libs/core/index.js';
import type { NodeView } from '../../../libs/registry/index.js';

/** Who an answer belongs to: the ids OpenAI clients see are derived from the Hydra job id. */
export interface AnswerMeta {
  jobId: string;
  model: string;
  /** Unix seconds. */
  created: number;
}

export type FinishReason = 'stop' | 'length' | 'tool_calls';

export interface OpenAIToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export function finishReason(r: InferResult): FinishReason {
  if ((r.message?.tool_calls?.length ?? 0) > 0) return 'tool_calls';
  return r.done_reason === 'length' ? 'length' : 'stop';
}

export const usageOf = (r: InferResult) => ({ prompt_tokens: r.prompt_tokens, completion_tokens: r.completion_tokens, total_tokens: r.prompt_tokens + r.completion_tokens });

/** Every call gets an id: the backend's own, else one derived from the job (stable across a cached replay). */
export function toolCallsOf(calls: ToolCall[] | undefined, jobId: string): OpenAIToolCall[] {
  const stem = jobId.replace(/[^A-Za-z0-9]/g, '').slice(0, 24);
  return (calls ?? []).map((c, i) => ({ id: c.id || `call_${stem}_${i}`, type: 'function', function: { name: c.function.name, arguments: JSON.stringify(c.function.arguments) } }));
}

export function chatCompletion(meta: AnswerMeta, r: InferResult) {
  const calls = toolCallsOf(r.message?.tool_calls, meta.jobId);
  const thinking = r.message?.thinking;
  return {
    id: `chatcmpl-${meta.jobId}`,
    object: 'chat.completion',
    created: meta.created,
    model: meta.model,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          // OpenAI sends null content beside tool calls when the model said nothing else.
          content: calls.length > 0 && !r.message?.content ? null : (r.message?.content ?? ''),
          ...(calls.length > 0 ? { tool_calls: calls } : {}),
          ...(thinking ? { reasoning_content: thinking } : {}),
        },
        finish_reason: finishReason(r),
        logprobs: null,
      },
    ],
    usage: usageOf(r),
  };
}

export function textCompletion(meta: AnswerMeta, r: InferResult) {
  return {
    id: `cmpl-${meta.jobId}`,
    object: 'text_completion',
    created: meta.created,
    model: meta.model,
    choices: [{ text: r.response ?? '', index: 0, logprobs: null, finish_reason: finishReason(r) }],
    usage: usageOf(r),
  };
}

/** Little-endian float32 bytes in base64: what the openai clients decode when they ask for `base64` (their default). */
export function base64Embedding(v: readonly number[]): string {
  const buf = Buffer.alloc(v.length * 4);
  v.forEach((x, i) => buf.writeFloatLE(x, i * 4));
  return buf.toString('base64');
}

export function embeddingList(model: string, r: InferResult, encoding: 'float' | 'base64') {
  return {
    object: 'list',
    data: (r.embeddings ?? []).map((e, index) => ({ object: 'embedding', index, embedding: encoding === 'base64' ? base64Embedding(e) : e })),
    model,
    usage: { prompt_tokens: r.prompt_tokens, total_tokens: r.prompt_tokens },
  };
}

export interface OpenAIModel {
  id: string;
  object: 'model';
  /** Unix seconds: the newest modification any node reports (0 when none does). */
  created: number;
  owned_by: string;
}

/** The models of every healthy node, one entry per canonical name (`qwen3` = `qwen3:latest`), sorted by id. */
export function modelList(nodes: readonly NodeView[]): OpenAIModel[] {
  const byName = new Map<string, OpenAIModel>();
  for (const n of nodes) {
    if (!n.healthy) continue;
    for (const m of n.models_available) {
      const key = canonicalModel(m.name);
      const created = m.modified_at ? Math.floor(Date.parse(m.modified_at) / 1000) || 0 : 0;
      const seen = byName.get(key);
      if (!seen) byName.set(key, { id: m.name, object: 'model', created, owned_by: 'hydra' });
      else seen.created = Math.max(seen.created, created);
    }
  }
  return [...byName.values()].sort((a, b) => a.id.localeCompare(b.id));
}
