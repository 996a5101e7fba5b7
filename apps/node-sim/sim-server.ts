// The simulated Ollama node: an HTTP server speaking Ollama's API (and its OpenAI-compatible /v1), with VRAM and KV cache, load/queue/evict/offload, shared decode speed and injectable faults. Always labelled simulated.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { silentLogger } from '../../libs/logger/index.js';
import { FaultsSchema, SimCore } from './sim-core.js';
import type { ResolvedSimOptions, SimNodeOptions, SimState } from './sim-options.js';
import { SimHttpError, readJsonBody, sendError, sendJson, type Flavor, type Route } from './sim-http.js';
import { ollamaChatRoutes } from './ollama-chat-routes.js';
import { ollamaRoutes } from './ollama-routes.js';
import { openaiRoutes } from './openai-routes.js';
import { pullRoutes } from './pull-routes.js';
import { BYTES_PER_GB, checkCapabilityNames, modelBytes, type SimModelSpec } from './sim-models.js';
import { KV_CACHE_TYPES } from './sim-sizing.js';

export { parseModelsArg } from './sim-models.js';
export { simulatedAnswer, schemaInstance } from './sim-text.js';
export { simulatedThinking, toolArguments } from './sim-turn.js';
export type { SimNodeOptions, SimState } from './sim-options.js';
export type { SimModelSpec } from './sim-models.js';
export { KV_CACHE_TYPES, type KvCacheType } from './sim-sizing.js';

export interface SimNode {
  /** `http://host:port`, no trailing slash. */
  url: string;
  port: number;
  /** Stops listening and cuts every open connection (hanging requests included). */
  close(): Promise<void>;
  state(): SimState;
}

/** Every response carries this header so nobody mistakes the simulation for a real node. */
const SIMULATED_HEADER = 'X-Hydra-Simulated';

function resolveOptions(opts: SimNodeOptions): ResolvedSimOptions {
  const positive = (name: string, v: number): number => {
    if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number, got ${v}`);
    return v;
  };
  const atLeast0 = (name: string, v: number): number => {
    if (!Number.isFinite(v) || v < 0) throw new Error(`${name} must be >= 0, got ${v}`);
    return v;
  };
  const integer = (name: string, v: number, min: number): number => {
    if (!Number.isInteger(v) || v < min) throw new Error(`${name} must be an integer >= ${min}, got ${v}`);
    return v;
  };
  const fraction = (name: string, v: number): number => {
    if (!Number.isFinite(v) || v <= 0 || v > 1) throw new Error(`${name} must be a number > 0 and <= 1, got ${v}`);
    return v;
  };
  const kvCacheType = opts.kvCacheType ?? 'f16';
  if (!(KV_CACHE_TYPES as readonly string[]).includes(kvCacheType)) throw new Error(`kvCacheType must be one of ${KV_CACHE_TYPES.join(', ')}, got "${kvCacheType}"`);
  const checkList = (what: string, list: SimModelSpec[]): void => {
    const names = new Set<string>();
    for (const m of list) {
      if (names.has(m.name)) throw new Error(`${what} "${m.name}" is listed twice`);
      names.add(m.name);
      positive(`size of ${what} "${m.name}"`, m.sizeGb);
      checkCapabilityNames(m);
    }
  };
  checkList('model', opts.models);
  checkList('pullable model', opts.pullable ?? []);
  const diskGb = opts.diskGb === undefined ? undefined : positive('diskGb', opts.diskGb);
  const installedBytes = opts.models.reduce((s, m) => s + modelBytes(m), 0);
  if (diskGb !== undefined && installedBytes > diskGb * BYTES_PER_GB) throw new Error(`the models take ${installedBytes / BYTES_PER_GB} GB, more than diskGb (${diskGb} GB)`);
  // Defaults and where each comes from: docs/simulator.md.
  return {
    port: opts.port ?? 0,
    host: opts.host ?? '127.0.0.1',
    vramGb: positive('vramGb', opts.vramGb),
    ramGb: atLeast0('ramGb', opts.ramGb ?? 64),
    models: opts.models.map((m) => ({ ...m })),
    parallel: integer('parallel', opts.parallel ?? 4, 1),
    numCtx: integer('numCtx', opts.numCtx ?? 4096, 4),
    kvCacheType,
    maxQueue: integer('maxQueue', opts.maxQueue ?? 512, 0),
    loadFixedMs: atLeast0('loadFixedMs', opts.loadFixedMs ?? 1000),
    loadMsPerGb: atLeast0('loadMsPerGb', opts.loadMsPerGb ?? 20),
    tokensPerSecond: positive('tokensPerSecond', opts.tokensPerSecond ?? 200),
    batchExponent: fraction('batchExponent', opts.batchExponent ?? 0.7),
    cpuSpeedRatio: fraction('cpuSpeedRatio', opts.cpuSpeedRatio ?? 0.1),
    timeScale: positive('timeScale', opts.timeScale ?? 1),
    fast: opts.fast ?? false,
    pullable: (opts.pullable ?? []).map((m) => ({ ...m })),
    pullMBps: positive('pullMBps', opts.pullMBps ?? 200),
    diskGb,
  };
}

function adminRoutes(core: SimCore): Array<[string, Route]> {
  return [
    ['GET /admin/state', async (_req, res) => sendJson(res, 200, core.state())],
    ['POST /admin/reset', async (_req, res) => {
      core.reset();
      sendJson(res, 200, core.state());
    }],
    ['POST /admin/faults', async (req, res) => {
      const parsed = FaultsSchema.safeParse(await readJsonBody(req));
      if (!parsed.success) {
        const why = parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
        throw new SimHttpError(400, `invalid faults: ${why} (accepted: fail_next, fail_status, fail_message, hang_next, drop_next, drop_after_tokens)`);
      }
      core.setFaults(parsed.data);
      sendJson(res, 200, { faults_pending: core.state().faults_pending });
    }],
  ];
}

export async function createSimNode(opts: SimNodeOptions): Promise<SimNode> {
  const resolved = resolveOptions(opts);
  const log = (opts.logger ?? silentLogger()).child({ component: 'node-sim' });
  const lifetime = new AbortController();
  const core = new SimCore(resolved, log, lifetime.signal);
  const routes = new Map<string, Route>([...ollamaRoutes(core), ...ollamaChatRoutes(core), ...pullRoutes(core), ...openaiRoutes(core), ...adminRoutes(core)]);

  const lookup = (method: string, path: string): Route | undefined => {
    const m = method === 'HEAD' ? 'GET' : method;
    return routes.get(`${m} ${path}`) ?? (path.startsWith('/v1/models/') ? routes.get(`${m} /v1/models/*`) : undefined);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    res.setHeader(SIMULATED_HEADER, '1');
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const flavor: Flavor = path.startsWith('/v1/') ? 'openai' : 'ollama';
    core.countRequest(`${req.method ?? 'GET'} ${path}`);
    try {
      const route = lookup(req.method ?? 'GET', path);
      if (!route) {
        const other = ['GET', 'POST', 'DELETE'].some((m) => lookup(m, path) !== undefined);
        throw new SimHttpError(other ? 405 : 404, other ? `method ${req.method} not allowed on ${path}` : `no such endpoint: ${req.method} ${path}`);
      }
      await route(req, res);
    } catch (e) {
      if (e instanceof SimHttpError) {
        sendError(res, flavor, e.status, e.message);
        return;
      }
      log.error({ err: e, path }, 'simulated node internal error');
      sendError(res, flavor, 500, `simulated node internal error: ${e instanceof Error ? e.message : String(e)}`);
    }
  };

  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(resolved.port, resolved.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = resolved.host.includes(':') ? `[${resolved.host}]` : resolved.host;
  const url = `http://${host}:${port}`;
  log.info({ url, vramGb: resolved.vramGb, ramGb: resolved.ramGb, parallel: resolved.parallel, numCtx: resolved.numCtx, timeScale: resolved.timeScale, models: resolved.models.map((m) => m.name) }, 'simulated node listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    state: () => core.state(),
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        lifetime.abort();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
