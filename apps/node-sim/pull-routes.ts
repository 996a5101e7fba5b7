// Model management on the simulated node: /api/pull (Ollama's NDJSON progress at a simulated download speed, abortable, disk-checked) and DELETE /api/delete.
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { SimCore } from './sim-core.js';
import { SimHttpError, readJsonBody, sendError, sendJson, startStream, writePiece, type Route } from './sim-http.js';
import { BYTES_PER_GB, modelBytes, type SimModelSpec } from './sim-models.js';

const PullBodySchema = z.object({ model: z.string().optional(), name: z.string().optional(), insecure: z.boolean().optional(), stream: z.boolean().optional() }).loose();
const DeleteBodySchema = z.object({ model: z.string().optional(), name: z.string().optional() }).loose();

/** Ollama reports download progress on a 60 ms ticker. */
const PROGRESS_INTERVAL_MS = 60;
/** The weights layer reports at least this many steps, so a fast simulated download still shows progress. */
const MIN_PROGRESS_STEPS = 4;
const MAX_PROGRESS_STEPS = 10_000;
/** The small layers of an Ollama model besides its weights (template, license, params, config), bytes. */
const SMALL_LAYERS = [1_482, 11_357, 96, 487];

interface Layer {
  digest: string;
  size: number;
  weights: boolean;
}

/** Layers as Ollama's manifest lists them: weights first, config last; their sizes add up to the model's size. */
function layersOf(m: SimModelSpec): Layer[] {
  const total = modelBytes(m);
  const smallBytes = SMALL_LAYERS.reduce((a, b) => a + b, 0);
  // A (tiny) model smaller than the small layers together is one layer.
  const sizes = total > smallBytes ? [total - smallBytes, ...SMALL_LAYERS] : [total];
  return sizes.map((size, i) => ({ digest: `sha256:${createHash('sha256').update(`simulated-layer:${m.name}:${i}`).digest('hex')}`, size, weights: i === 0 }));
}

function nameOf(body: unknown, schema: typeof PullBodySchema | typeof DeleteBodySchema): { name: string; stream: boolean } {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new SimHttpError(400, `invalid request: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
  const name = parsed.data.model || parsed.data.name;
  if (!name) throw new SimHttpError(400, 'model is required');
  return { name, stream: (parsed.data as { stream?: boolean }).stream !== false };
}

export function pullRoutes(core: SimCore): Array<[string, Route]> {
  return [
    ['POST /api/pull', (req, res) => pull(core, req, res)],
    ['DELETE /api/delete', async (req, res) => {
      const { name } = nameOf(await readJsonBody(req), DeleteBodySchema);
      const m = core.catalog.remove(name);
      if (!m) throw new SimHttpError(404, `model '${name}' not found`);
      // A busy model unloads once its requests end.
      core.memory.unload(m.name);
      core.pulls.deletes++;
      core.log.info({ model: m.name }, 'model deleted');
      // Ollama answers a delete with 200 and an empty body.
      res.writeHead(200, { 'Content-Length': 0 });
      res.end();
    }],
  ];
}

/**
 * Ollama's pull: `pulling manifest`, then per layer `pulling <digest12>` with `total`/`completed` (several times for
 * the weights, timed by `pullMBps`; once, complete, for a layer already on disk), `verifying sha256 digest`,
 * `writing manifest`, `success`. An error after the stream started is one more `{"error"}` line (status 200); with
 * `stream: false` it is the status alone (500, as Ollama's waitForStream answers). The client going away stops the
 * download and installs nothing.
 */
async function pull(core: SimCore, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { name, stream } = nameOf(await readJsonBody(req), PullBodySchema);
  const ac = new AbortController();
  const gone = (): void => {
    if (!res.writableFinished) ac.abort(new Error('the client closed the connection'));
  };
  res.on('close', gone);
  if (!res.socket || res.socket.destroyed) gone();
  const emit = async (progress: Record<string, unknown>): Promise<void> => {
    ac.signal.throwIfAborted();
    if (stream) await writePiece(res, `${JSON.stringify(progress)}\n`, ac.signal);
  };
  core.pulls.pulls_active++;
  try {
    if (stream) startStream(res, 'application/x-ndjson');
    await emit({ status: 'pulling manifest' });
    const spec = core.catalog.pullable(name);
    if (!spec) throw new SimHttpError(500, 'pull model manifest: file does not exist');
    const onDisk = core.catalog.find(spec.name) !== undefined;
    const free = core.catalog.freeDiskBytes();
    if (!onDisk && modelBytes(spec) > free) {
      throw new SimHttpError(500, `no space left on device: ${spec.name} needs ${spec.sizeGb} GB, the simulated disk has ${(free / BYTES_PER_GB).toFixed(1)} GB free`);
    }
    for (const layer of layersOf(spec)) await download(core, layer, onDisk, emit, ac.signal);
    await emit({ status: 'verifying sha256 digest' });
    await emit({ status: 'writing manifest' });
    core.catalog.install(spec);
    core.pulls.pulls_completed++;
    core.log.info({ model: spec.name, cached: onDisk }, 'model pulled');
    if (stream) res.end(`${JSON.stringify({ status: 'success' })}\n`);
    else sendJson(res, 200, { status: 'success' });
  } catch (e) {
    if (ac.signal.aborted) {
      core.pulls.pulls_aborted++;
      core.log.info({ model: name }, 'pull aborted by the client');
      return;
    }
    core.pulls.pulls_failed++;
    if (!(e instanceof SimHttpError)) throw e;
    core.log.info({ model: name, err: e.message }, 'pull failed');
    sendError(res, 'ollama', e.status, e.message);
  } finally {
    core.pulls.pulls_active--;
  }
}

async function download(core: SimCore, layer: Layer, onDisk: boolean, emit: (p: Record<string, unknown>) => Promise<void>, signal: AbortSignal): Promise<void> {
  const progress = (completed: number): Record<string, unknown> => ({ status: `pulling ${layer.digest.slice(7, 19)}`, digest: layer.digest, total: layer.size, completed });
  if (onDisk) return emit(progress(layer.size));
  // Wall-clock ms of the download: simulated durations are divided by the time scale (the 60 ms ticker is not).
  const ms = (layer.size / (core.opts.pullMBps * 1e6)) * 1000 / core.opts.timeScale;
  const steps = layer.weights ? Math.min(MAX_PROGRESS_STEPS, Math.max(MIN_PROGRESS_STEPS, Math.ceil(ms / PROGRESS_INTERVAL_MS))) : 1;
  const start = performance.now();
  if (layer.weights) await emit(progress(0));
  for (let k = 1; k <= steps; k++) {
    const wait = start + (ms * k) / steps - performance.now();
    if (wait > 0) await sleep(wait, undefined, { signal });
    await emit(progress(Math.round((layer.size * k) / steps)));
  }
}
