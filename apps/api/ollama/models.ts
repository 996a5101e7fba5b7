// The cluster's models in Ollama's shapes: /api/tags (the union over healthy nodes), /api/ps (loaded anywhere, naming
// the node) and /api/show (proxied to an Ollama node that has the model, else built from the registry).
import { request } from 'undici';
import { ErrorCode, HydraError, type NodeModel } from '../../../libs/core/index.js';
import type { NodeView } from '../../../libs/registry/index.js';
import { canonicalModel, sameModel } from '../../../libs/scheduling/index.js';

const MB = 1024 * 1024;
/** What /api/ps shows for a model with no idle expiry (a llama.cpp node keeps it until evicted); Ollama shows a far-future time too. */
const NEVER_EXPIRES = '2318-01-01T00:00:00Z';
/** /api/show on a node: the answer's headers and body must come within this, and the body stay under the cap. */
const SHOW_TIMEOUT_MS = 5_000;
const SHOW_MAX_BYTES = 8 * MB;

const usable = (nodes: NodeView[]) => nodes.filter((n) => n.healthy);

export const modelNotFound = (model: string): HydraError =>
  new HydraError(ErrorCode.ModelNotFound, `model '${model}' not found`, { details: { model } });

function details(m: NodeModel | undefined): Record<string, unknown> {
  const d = m?.details ?? {};
  return { parent_model: '', format: d.format ?? '', family: d.family ?? '', families: d.families ?? (d.family ? [d.family] : null), parameter_size: d.parameter_size ?? '', quantization_level: d.quantization_level ?? '' };
}

const sizeOf = (m: { size_bytes?: number; size_mb: number }): number => m.size_bytes ?? Math.round(m.size_mb * MB);

/**
 * /api/tags: every model on a healthy node, once per canonical name (`qwen3` = `qwen3:latest`), with the details the
 * first node reporting it gave. `name` and `model` both (Open WebUI keys models by `model`); `nodes` is Hydra's extra.
 */
export function tagsOf(nodes: NodeView[]): { models: Record<string, unknown>[] } {
  const byName = new Map<string, { entry: Record<string, unknown> & { name: string }; nodes: string[] }>();
  for (const n of usable(nodes)) {
    for (const m of n.models_available) {
      const name = canonicalModel(m.name);
      const seen = byName.get(name);
      if (seen) {
        seen.nodes.push(n.id);
        continue;
      }
      const entry = { name, model: name, modified_at: m.modified_at ?? new Date(0).toISOString(), size: sizeOf(m), digest: m.digest ?? '', details: details(m) };
      byName.set(name, { entry, nodes: [n.id] });
    }
  }
  return { models: [...byName.values()].sort((a, b) => a.entry.name.localeCompare(b.entry.name)).map((v) => ({ ...v.entry, nodes: v.nodes })) };
}

/** /api/ps: each loaded model on each healthy node, named by its node (`node`, Hydra's extra field). */
export function psOf(nodes: NodeView[]): { models: Record<string, unknown>[] } {
  const models: Record<string, unknown>[] = [];
  for (const n of usable(nodes)) {
    for (const l of n.models_loaded) {
      const avail = n.models_available.find((m) => sameModel(m.name, l.name));
      models.push({
        name: l.name,
        model: l.name,
        size: sizeOf(l),
        size_vram: l.vram_bytes ?? Math.round(l.vram_mb * MB),
        digest: l.digest ?? avail?.digest ?? '',
        details: details(avail),
        expires_at: l.expires_at ?? NEVER_EXPIRES,
        context_length: l.context_length ?? avail?.context_length ?? 0,
        node: n.id,
      });
    }
  }
  return { models };
}

/** Healthy nodes that list `model`, warm ones first (a node with it loaded answers /api/show fastest). */
function nodesWith(nodes: NodeView[], model: string): NodeView[] {
  const warm = (n: NodeView) => Number(n.models_loaded.some((l) => sameModel(l.name, model)));
  return usable(nodes)
    .filter((n) => n.models_available.some((m) => sameModel(m.name, model)))
    .sort((a, b) => warm(b) - warm(a));
}

const proxiable = (n: NodeView): boolean => n.backend === 'ollama' && /^https?:\/\//.test(n.url);

/** /api/show for `model`: 404 in Ollama's words when no healthy node has it. */
export async function showModel(nodes: NodeView[], model: string, verbose: boolean | undefined): Promise<{ node: string; body: unknown }> {
  const node = nodesWith(nodes, model)[0];
  if (!node) throw modelNotFound(model);
  const m = node.models_available.find((x) => sameModel(x.name, model))!;
  if (proxiable(node)) return { node: node.id, body: await proxyShow(node, { model: m.name, ...(verbose === undefined ? {} : { verbose }) }) };
  return { node: node.id, body: showFromRegistry(m) };
}

/** Ask the node's Ollama server itself: it knows the template, parameters, license and full model_info. */
async function proxyShow(node: NodeView, body: Record<string, unknown>): Promise<unknown> {
  let res;
  try {
    res = await request(`${node.url.replace(/\/$/, '')}/api/show`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      headersTimeout: SHOW_TIMEOUT_MS,
      bodyTimeout: SHOW_TIMEOUT_MS,
      signal: AbortSignal.timeout(SHOW_TIMEOUT_MS * 2),
    });
  } catch (e) {
    throw new HydraError(ErrorCode.BackendUnavailable, `node ${node.id} did not answer /api/show: ${(e as Error).message}`, { retryable: true });
  }
  const length = Number(res.headers['content-length'] ?? 0);
  if (length > SHOW_MAX_BYTES) {
    res.body.destroy();
    throw new HydraError(ErrorCode.BackendError, `node ${node.id} answered /api/show with ${length} bytes, over the ${SHOW_MAX_BYTES}-byte limit`);
  }
  let text = '';
  for await (const chunk of res.body) {
    text += chunk;
    if (text.length > SHOW_MAX_BYTES) {
      res.body.destroy();
      throw new HydraError(ErrorCode.BackendError, `node ${node.id} answered /api/show with more than ${SHOW_MAX_BYTES} bytes`);
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new HydraError(ErrorCode.BackendError, `node ${node.id} answered /api/show with something that is not JSON: ${text.slice(0, 200)}`);
  }
  if (res.statusCode >= 400) {
    const why = (parsed as { error?: unknown }).error;
    const message = `node ${node.id}: ${typeof why === 'string' ? why : `/api/show answered ${res.statusCode}`}`;
    throw new HydraError(res.statusCode === 404 ? ErrorCode.ModelNotFound : res.statusCode < 500 ? ErrorCode.BadRequest : ErrorCode.BackendError, message);
  }
  return parsed;
}

/** Ollama's /api/show shape from what the node reported (no template, parameters or license: the backend has none to give). */
function showFromRegistry(m: NodeModel): Record<string, unknown> {
  const d = details(m);
  const arch = typeof d.family === 'string' && d.family ? d.family : 'unknown';
  return {
    license: '',
    modelfile: '',
    parameters: '',
    template: '',
    details: d,
    model_info: { 'general.architecture': arch, ...(m.context_length ? { [`${arch}.context_length`]: m.context_length } : {}) },
    capabilities: m.capabilities ?? ['completion'],
    modified_at: m.modified_at ?? new Date(0).toISOString(),
  };
}
