// Which GGUF files this node can serve, under which names: explicit pairs, a models folder, an Ollama model store.
import { readdir, readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import { basename, join, resolve } from 'node:path';

export interface CatalogEntry {
  /** The name probe() lists and jobs use. */
  name: string;
  path: string;
  source: 'extra' | 'folder' | 'ollama';
  /** Ollama store only: the params layer blob (the model's default options, JSON). */
  paramsPath?: string;
}

export interface Catalog {
  entries: CatalogEntry[];
  /** Sources that could not be read, each with why. */
  problems: string[];
  /** How many sources were configured and how many could be read. */
  sources: { configured: number; readable: number };
}

export interface CatalogSources {
  modelsDir?: string;
  /** An Ollama store (the folder holding manifests/ and blobs/). Undefined: ~/.ollama/models when it exists; false: none. */
  ollamaModelsDir?: string | false;
  extraModels?: ReadonlyArray<{ name: string; path: string }>;
}

const OLLAMA_MODEL_LAYER = 'application/vnd.ollama.image.model';
const OLLAMA_PARAMS_LAYER = 'application/vnd.ollama.image.params';
const OLLAMA_DEFAULT_REGISTRY = 'registry.ollama.ai';
const OLLAMA_DEFAULT_NAMESPACE = 'library';

/**
 * The form names are compared in, as Ollama compares them: case-insensitive, the default registry and
 * `library/` namespace implied, `:latest` when no tag. `Llama3` ≡ `library/llama3` ≡ `llama3:latest`.
 */
export function canonicalModelName(name: string): string {
  let n = name.trim().toLowerCase();
  if (n.startsWith(`${OLLAMA_DEFAULT_REGISTRY}/`)) n = n.slice(OLLAMA_DEFAULT_REGISTRY.length + 1);
  if (n.startsWith(`${OLLAMA_DEFAULT_NAMESPACE}/`)) n = n.slice(OLLAMA_DEFAULT_NAMESPACE.length + 1);
  const last = n.slice(n.lastIndexOf('/') + 1);
  return last.includes(':') ? n : `${n}:latest`;
}

/** Ollama's shortest display name for manifests/<registry>/<namespace>/<model>/<tag>. */
export function ollamaDisplayName(registry: string, namespace: string, model: string, tag: string): string {
  if (registry !== OLLAMA_DEFAULT_REGISTRY) return `${registry}/${namespace}/${model}:${tag}`;
  if (namespace !== OLLAMA_DEFAULT_NAMESPACE) return `${namespace}/${model}:${tag}`;
  return `${model}:${tag}`;
}

/** Read every source. Never throws: unreadable sources land in `problems`. */
export async function scanCatalog(sources: CatalogSources): Promise<Catalog> {
  const entries: CatalogEntry[] = [];
  const problems: string[] = [];
  let configured = 0;
  let readable = 0;

  for (const m of sources.extraModels ?? []) entries.push({ name: m.name, path: resolve(m.path), source: 'extra' });

  if (sources.modelsDir !== undefined) {
    configured++;
    try {
      entries.push(...(await scanFolder(resolve(sources.modelsDir))));
      readable++;
    } catch (e) {
      problems.push(`models folder ${sources.modelsDir}: ${describe(e)}`);
    }
  }

  const store = sources.ollamaModelsDir === false ? undefined : (sources.ollamaModelsDir ?? (await defaultOllamaStore()));
  if (store !== undefined) {
    configured++;
    try {
      const found = await scanOllamaStore(resolve(store));
      entries.push(...found.entries);
      problems.push(...found.problems);
      readable++;
    } catch (e) {
      problems.push(`Ollama model store ${store}: ${describe(e)}`);
    }
  }

  return { entries: dedupe(entries, problems), problems, sources: { configured, readable } };
}

/** The entry a job's model name refers to. */
export function findModel(catalog: Catalog, name: string): CatalogEntry | undefined {
  const wanted = canonicalModelName(name);
  return catalog.entries.find((e) => canonicalModelName(e.name) === wanted);
}

/** `name.gguf` → `name`; split models (`x-00001-of-00003.gguf`) by their first part; vision projectors skipped. */
async function scanFolder(dir: string): Promise<CatalogEntry[]> {
  const out: CatalogEntry[] = [];
  for (const d of await readdir(dir, { withFileTypes: true })) {
    if (!(d.isFile() || d.isSymbolicLink()) || !/\.gguf$/i.test(d.name)) continue;
    let name = d.name.replace(/\.gguf$/i, '');
    if (/^mmproj/i.test(name)) continue;
    const split = /^(.*)-(\d{5})-of-\d{5}$/.exec(name);
    if (split) {
      if (split[2] !== '00001') continue;
      name = split[1] ?? name;
    }
    out.push({ name, path: join(dir, d.name), source: 'folder' });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

async function defaultOllamaStore(): Promise<string | undefined> {
  const dir = join(os.homedir(), '.ollama', 'models');
  try {
    return (await stat(join(dir, 'manifests'))).isDirectory() ? dir : undefined;
  } catch {
    return undefined;
  }
}

/** manifests/<registry>/<namespace>/<model>/<tag> (JSON) → blobs/sha256-<hex>. */
async function scanOllamaStore(root: string): Promise<{ entries: CatalogEntry[]; problems: string[] }> {
  const manifests = join(root, 'manifests');
  const entries: CatalogEntry[] = [];
  const problems: string[] = [];
  for (const registry of await subdirs(manifests)) {
    for (const namespace of await subdirs(join(manifests, registry))) {
      for (const model of await subdirs(join(manifests, registry, namespace))) {
        const modelDir = join(manifests, registry, namespace, model);
        for (const d of await readdir(modelDir, { withFileTypes: true })) {
          if (!d.isFile()) continue;
          const name = ollamaDisplayName(registry, namespace, model, d.name);
          try {
            const manifest = JSON.parse(await readFile(join(modelDir, d.name), 'utf8')) as { layers?: Array<{ mediaType?: string; digest?: string }> };
            const layers = manifest.layers ?? [];
            const weights = layers.find((l) => l.mediaType === OLLAMA_MODEL_LAYER);
            if (!weights?.digest) continue; // not a model (e.g. an adapter-only manifest)
            const path = await blobPath(root, weights.digest);
            const params = layers.find((l) => l.mediaType === OLLAMA_PARAMS_LAYER);
            const paramsPath = params?.digest ? await blobPath(root, params.digest).catch(() => undefined) : undefined;
            entries.push({ name, path, source: 'ollama', ...(paramsPath ? { paramsPath } : {}) });
          } catch (e) {
            problems.push(`Ollama manifest ${name}: ${describe(e)}`);
          }
        }
      }
    }
  }
  return { entries, problems };
}

/** Current Ollama names blobs `sha256-<hex>`; older versions used `sha256:<hex>`. */
async function blobPath(root: string, digest: string): Promise<string> {
  const m = /^sha256[:-]([0-9a-f]{64})$/.exec(digest);
  if (!m) throw new Error(`unexpected layer digest ${digest}`);
  for (const file of [`sha256-${m[1]}`, `sha256:${m[1]}`]) {
    const p = join(root, 'blobs', file);
    try {
      await stat(p);
      return p;
    } catch {
      // try the other spelling
    }
  }
  throw new Error(`blob ${basename(digest)} is missing from ${join(root, 'blobs')}`);
}

async function subdirs(dir: string): Promise<string[]> {
  return (await readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
}

/** First source wins a name (explicit pairs, then the folder, then the store); the loser is reported. */
function dedupe(entries: CatalogEntry[], problems: string[]): CatalogEntry[] {
  const seen = new Map<string, CatalogEntry>();
  for (const e of entries) {
    const key = canonicalModelName(e.name);
    const first = seen.get(key);
    if (!first) seen.set(key, e);
    else if (first.path !== e.path) problems.push(`model ${e.name} at ${e.path} is shadowed by ${first.path}`);
  }
  return [...seen.values()];
}

function describe(e: unknown): string {
  const code = (e as { code?: unknown }).code;
  if (code === 'ENOENT') return 'does not exist';
  if (code === 'EACCES') return 'permission denied';
  return e instanceof Error ? e.message : String(e);
}
