// Ollama's model management (pull, delete, keep_alive 0 unload) across nodes: which nodes by default, one admin job
// per node through the admin service, and their ends (and pull progress) read back from each job's stream.
import { ErrorCode, HydraError, type AdminCall } from '../../../libs/core/index.js';
import type { NodeView } from '../../../libs/registry/index.js';
import { sameModel } from '../../../libs/scheduling/index.js';
import type { ApiContext } from '../context.js';
import { submitAdmin, type AdminJobRef } from '../services/admin.js';
import { cancelJob } from '../services/jobs.js';
import { readJobStream, type StreamReader } from '../services/stream-reader.js';
import { modelNotFound } from './models.js';

const MB = 1024 * 1024;

interface NodeOutcome {
  node_id: string;
  ok: boolean;
  error?: { code: string; message: string };
}

/** Nodes the caller named (`nodes` in the body and/or X-Hydra-Node), checked against the registry; null when none named. */
export function namedNodes(nodes: NodeView[], named: readonly string[]): NodeView[] | null {
  if (named.length === 0) return null;
  const ids = [...new Set(named)];
  const unknown = ids.filter((id) => !nodes.some((n) => n.id === id));
  if (unknown.length > 0) throw new HydraError(ErrorCode.BadRequest, `unknown node(s) ${unknown.join(', ')}; registered: ${nodes.map((n) => n.id).join(', ') || 'none'}`);
  return ids.map((id) => nodes.find((n) => n.id === id)!);
}

/**
 * Default targets of a pull: every healthy node with an Ollama backend (only Ollama pulls from a registry). The size
 * of a model is unknown before pulling it, unless a node already has it: then nodes whose memory (capacity_mb, VRAM or
 * RAM) cannot hold its weights are left out, since they could never run it.
 */
export function pullTargets(nodes: NodeView[], model: string): NodeView[] {
  const known = nodes.flatMap((n) => n.models_available.filter((m) => sameModel(m.name, model)).map((m) => m.size_bytes ?? m.size_mb * MB));
  const size = known.length > 0 ? Math.min(...known) : 0;
  const out = nodes.filter((n) => n.healthy && n.backend === 'ollama' && n.capacity_mb * MB >= size);
  if (out.length === 0) {
    throw new HydraError(ErrorCode.Unavailable, `no healthy Ollama node can pull "${model}"${size ? ` (${(size / 2 ** 30).toFixed(1)} GiB)` : ''}; name nodes with "nodes": [...] or X-Hydra-Node`, { retryable: true });
  }
  return out;
}

/** Default targets of a delete: every node that has the model; 404 in Ollama's words when none has it. */
export function deleteTargets(nodes: NodeView[], model: string): NodeView[] {
  const out = nodes.filter((n) => n.models_available.some((m) => sameModel(m.name, model)));
  if (out.length === 0) throw modelNotFound(model);
  return out;
}

/** The node's own spelling of the model when it has it (`qwen3` may be `qwen3:latest` there). */
const nameOn = (n: NodeView, model: string): string => n.models_available.find((m) => sameModel(m.name, model))?.name ?? model;

/**
 * Run `call` on each node and wait for every end. `onProgress` gets each progress entry (pull) with its node.
 * `signal` aborting (the client left) cancels the jobs still running: Ollama stops a pull whose client goes away.
 */
export async function runAdmin(
  ctx: ApiContext,
  call: AdminCall,
  targets: NodeView[],
  signal: AbortSignal,
  onProgress?: (node: string, progress: Record<string, unknown>) => void,
  onQueued?: (refs: AdminJobRef[]) => void,
): Promise<NodeOutcome[]> {
  const refs: AdminJobRef[] = [];
  for (const n of targets) refs.push(...(await submitAdmin(ctx, { ...call, model: nameOn(n, call.model) }, [n.id])));
  onQueued?.(refs);
  const readers: StreamReader[] = [];
  const leave = () => {
    for (const r of readers) r.close();
    for (const ref of refs) cancelJob(ctx, ref.job_id, 'the client left its Ollama model request').catch(() => undefined);
  };
  signal.addEventListener('abort', leave, { once: true });
  try {
    return await Promise.all(
      refs.map(async (ref): Promise<NodeOutcome> => {
        const reader = await readJobStream(ctx, ref.job_id, '0', false);
        readers.push(reader);
        if (signal.aborted) reader.close();
        for await (const item of reader) {
          if (item.event === 'progress' && onProgress) onProgress(ref.node_id, JSON.parse(item.data) as Record<string, unknown>);
          if (item.event === 'done') return { node_id: ref.node_id, ok: true };
          if (item.event === 'error') return { node_id: ref.node_id, ok: false, error: JSON.parse(item.data) as NodeOutcome['error'] };
        }
        return { node_id: ref.node_id, ok: false, error: { code: ErrorCode.Cancelled, message: 'the client left' } };
      }),
    );
  } finally {
    signal.removeEventListener('abort', leave);
    for (const r of readers) r.close();
  }
}

/** One error for every node that failed, naming each, with the first failure's code (it decides the status). */
export function failureOf(op: string, model: string, outcomes: NodeOutcome[]): HydraError | null {
  const failed = outcomes.filter((o) => !o.ok);
  if (failed.length === 0) return null;
  const code = (failed[0]?.error?.code ?? ErrorCode.Internal) as ErrorCode;
  return new HydraError(code, `${op} "${model}" failed on node(s) ${failed.map((o) => `${o.node_id} (${o.error?.message ?? 'unknown error'})`).join(', ')}`);
}
