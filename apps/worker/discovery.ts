// Discovery: find Ollama / OpenAI-compatible servers on hosts and IPv4 CIDRs (GET /api/version, then GET /v1/models;
// bounded concurrency, a time limit per probe), and with DISCOVER serve each one as a node of this process: new servers
// found on a rescan are added, a node whose server fails DROP_AFTER_FAILURES heartbeats in a row is drained and dropped.
// `hydra discover` runs the same scan once. docs/discovery.md.
import { createHash } from 'node:crypto';
import os from 'node:os';
import type { BackendKind } from '../../libs/core/index.js';
import { intToIpv4, type Config, type DiscoverTarget } from '../../libs/config/index.js';
import type { Logger } from '../../libs/logger/index.js';
import type { InferenceBackend } from './backends/backend.js';
import type { NodeAgent } from './node-agent.js';
import type { WorkerProcess } from './worker-process.js';

/** One address to probe. */
export interface Endpoint {
  scheme: 'http' | 'https';
  host: string;
  port: number;
}

/** A server that answered a probe. `url`: scheme, host and port (the OpenAI API root is `url` + /v1). */
export interface FoundServer extends Endpoint {
  url: string;
  kind: Extract<BackendKind, 'ollama' | 'openai'>;
  /** Ollama's /api/version; OpenAI-compatible servers report none. */
  version?: string;
  models: string[];
}

export interface ScanOptions {
  ports: readonly number[];
  concurrency: number;
  /** Per request (ms): an address probes /api/version, then /api/tags or /v1/models, each within this. */
  timeoutMs: number;
  /** Sent as Authorization: Bearer to /v1/models (OPENAI_API_KEY). */
  apiKey?: string;
  /** Only this kind counts (BACKEND=ollama or openai with DISCOVER). */
  only?: FoundServer['kind'];
}

/** A node whose server failed this many heartbeats in a row (HEARTBEAT_MS apart) is drained and leaves. */
export const DROP_AFTER_FAILURES = 3;
/** Discovered servers being started as nodes at once (each: backend, first heartbeat, registry write). */
const ADD_CONCURRENCY = 8;

/**
 * Every address of the targets × ports, in order, once each. Entries with a port keep it. A CIDR of /30 or wider leaves
 * out its network and broadcast addresses; /31 and /32 keep every address (RFC 3021).
 */
export function expandTargets(targets: readonly DiscoverTarget[], ports: readonly number[]): Endpoint[] {
  const out: Endpoint[] = [];
  const seen = new Set<string>();
  const push = (e: Endpoint) => {
    const key = `${e.scheme}://${e.host}:${e.port}`;
    if (seen.has(key)) return;
    seen.add(key);
    out.push(e);
  };
  for (const t of targets) {
    if (t.kind === 'host') {
      for (const port of t.port === undefined ? ports : [t.port]) push({ scheme: t.scheme, host: t.host, port });
      continue;
    }
    const size = 2 ** (32 - t.bits);
    const [first, last] = t.bits >= 31 ? [0, size - 1] : [1, size - 2];
    for (let i = first; i <= last; i++) for (const port of ports) push({ scheme: 'http', host: intToIpv4((t.base + i) >>> 0), port });
  }
  return out;
}

/** The base URL of an endpoint (IPv6 in brackets). */
export const endpointUrl = (e: Endpoint): string => `${e.scheme}://${e.host.includes(':') ? `[${e.host}]` : e.host}:${e.port}`;

/** GET a JSON document within `timeoutMs`; null for any failure (refused, timeout, non-2xx, not JSON). */
async function getJson(url: string, timeoutMs: number, headers: Record<string, string> = {}): Promise<unknown> {
  try {
    const r = await fetch(url, { headers: { accept: 'application/json', ...headers }, signal: AbortSignal.timeout(timeoutMs) });
    if (!r.ok) {
      await r.body?.cancel().catch(() => undefined);
      return null;
    }
    return (await r.json()) as unknown;
  } catch {
    return null;
  }
}

const stringsOf = (list: unknown, field: string): string[] =>
  Array.isArray(list) ? list.map((x) => (x && typeof x === 'object' ? (x as Record<string, unknown>)[field] : undefined)).filter((v): v is string => typeof v === 'string') : [];

/**
 * Probe one address: Ollama first (GET /api/version answers `{"version": ...}`; its models from /api/tags), else an
 * OpenAI-compatible server (GET /v1/models answers `{"data": [{"id": ...}]}`). Ollama also serves /v1/models, so the
 * order matters. Null when neither answers.
 */
export async function probeEndpoint(e: Endpoint, opts: Pick<ScanOptions, 'timeoutMs' | 'apiKey' | 'only'>): Promise<FoundServer | null> {
  const url = endpointUrl(e);
  if (opts.only !== 'openai') {
    const v = await getJson(`${url}/api/version`, opts.timeoutMs);
    if (v && typeof v === 'object' && typeof (v as { version?: unknown }).version === 'string') {
      const tags = await getJson(`${url}/api/tags`, opts.timeoutMs);
      return { ...e, url, kind: 'ollama', version: (v as { version: string }).version, models: stringsOf((tags as { models?: unknown } | null)?.models, 'name') };
    }
    if (opts.only === 'ollama') return null;
  }
  const m = await getJson(`${url}/v1/models`, opts.timeoutMs, opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {});
  if (m && typeof m === 'object' && Array.isArray((m as { data?: unknown }).data)) return { ...e, url, kind: 'openai', models: stringsOf((m as { data: unknown }).data, 'id') };
  return null;
}

/** Probe every address of the targets, at most `concurrency` at once; the servers found, in target order. */
export async function scanTargets(targets: readonly DiscoverTarget[], opts: ScanOptions): Promise<FoundServer[]> {
  const endpoints = expandTargets(targets, opts.ports);
  const found: (FoundServer | null)[] = new Array<FoundServer | null>(endpoints.length).fill(null);
  let next = 0;
  const lane = async () => {
    while (next < endpoints.length) {
      const i = next++;
      found[i] = await probeEndpoint(endpoints[i]!, opts);
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency, endpoints.length) }, lane));
  return found.filter((f): f is FoundServer => f !== null);
}

/** Node ids: letters, digits, _ . - and at most 64 characters (NODE_ID's rule in libs/config). */
const NODE_ID_MAX = 64;

/**
 * The node id of a discovered server: `<prefix>-<host>-<port>`, prefix NODE_ID or the host name, every character outside
 * [A-Za-z0-9_.-] replaced by "-". Deterministic, so a restarted worker serves the same nodes under the same ids. Longer
 * than 64: the prefix is cut and 8 hex digits of a hash of the full id keep it unique.
 */
export function discoveredNodeId(prefix: string, e: Pick<Endpoint, 'host' | 'port'>): string {
  const clean = (s: string) => s.replace(/[^A-Za-z0-9_.-]/g, '-');
  const full = `${clean(prefix)}-${clean(e.host)}-${e.port}`;
  if (full.length <= NODE_ID_MAX) return full;
  const hash = createHash('sha256').update(full).digest('hex').slice(0, 8);
  const tail = `-${hash}-${clean(e.host)}-${e.port}`;
  const room = NODE_ID_MAX - tail.length;
  return room >= 1 ? `${clean(prefix).slice(0, room)}${tail}` : `${clean(prefix).slice(0, NODE_ID_MAX - 14)}-${hash}-${e.port}`.slice(0, NODE_ID_MAX);
}

/** The backend for a found server: the backend table's entry with the server's URL in place of OLLAMA_URL / OPENAI_BASE_URL. */
export async function backendFor(found: FoundServer, config: Config, logger: Logger): Promise<InferenceBackend> {
  // Loaded on demand: `hydra discover` uses this file for the scan alone.
  const { BACKENDS } = await import('./backends/index.js');
  return BACKENDS[found.kind].create({ ...config, OLLAMA_URL: found.url, OPENAI_BASE_URL: `${found.url}/v1` }, logger);
}

export interface Discovery {
  /** Resolves after the first scan and the nodes it found started. */
  ready: Promise<void>;
  /** No more scans; the nodes themselves stop with the process. */
  stop(): Promise<void>;
}

interface Served {
  nodeId: string;
  agent: NodeAgent | null;
  failures: number;
  dropping: boolean;
}

/** DISCOVER on a worker: scan now and every DISCOVER_INTERVAL_MS, one node agent of `proc` per server found. */
export function startDiscovery(proc: WorkerProcess, config: Config, logger: Logger): Discovery {
  const log = logger.child({ part: 'discovery' });
  const prefix = config.NODE_ID ?? os.hostname();
  const slots = config.WORKER_CONCURRENCY ?? 4;
  const served = new Map<string, Served>();
  const scanOpts: ScanOptions = {
    ports: config.DISCOVER_PORTS,
    concurrency: config.DISCOVER_CONCURRENCY,
    timeoutMs: config.DISCOVER_TIMEOUT_MS,
    ...(config.OPENAI_API_KEY ? { apiKey: config.OPENAI_API_KEY } : {}),
    ...(config.BACKEND === 'ollama' || config.BACKEND === 'openai' ? { only: config.BACKEND } : {}),
  };
  let stopped = false;

  const drop = (key: string, s: Served) => {
    if (s.dropping || !s.agent) return;
    s.dropping = true;
    log.warn({ node: s.nodeId, failures: s.failures }, 'discovered server stopped answering: draining its node and dropping it');
    void s.agent.stop().finally(() => served.delete(key));
  };

  const add = async (found: FoundServer): Promise<void> => {
    const key = found.url;
    const nodeId = discoveredNodeId(prefix, found);
    const s: Served = { nodeId, agent: null, failures: 0, dropping: false };
    served.set(key, s);
    try {
      const backend = await backendFor(found, config, logger);
      s.agent = await proc.addNode({
        backend,
        nodeId,
        slots,
        remote: { host: found.host },
        logger: logger.child({ agent: nodeId }),
        onBeat: (rec) => {
          s.failures = rec.healthy ? 0 : s.failures + 1;
          if (s.failures >= DROP_AFTER_FAILURES) drop(key, s);
        },
      });
      log.info({ node: nodeId, url: found.url, kind: found.kind, version: found.version, models: found.models.length }, 'discovered server: serving it as a node');
      if (stopped) await s.agent.stop();
    } catch (e) {
      served.delete(key);
      log.warn({ url: found.url, err: (e as Error).message }, 'discovered server could not be started as a node');
    }
  };

  const scan = async (): Promise<void> => {
    const t0 = Date.now();
    const found = await scanTargets(config.DISCOVER, scanOpts);
    const fresh = found.filter((f) => !served.has(f.url));
    log.debug({ found: found.length, new: fresh.length, ms: Date.now() - t0 }, 'discovery scan done');
    if (found.length === 0 && served.size === 0) log.warn({ targets: config.DISCOVER.length, ports: config.DISCOVER_PORTS }, 'discovery found no server yet; scanning again later');
    let next = 0;
    const lane = async () => {
      while (next < fresh.length && !stopped) await add(fresh[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(ADD_CONCURRENCY, fresh.length) }, lane));
  };

  let busy = true;
  let running: Promise<void> = scan()
    .catch((e: Error) => log.warn({ err: e.message }, 'discovery scan failed'))
    .finally(() => (busy = false));
  const ready = running;
  const timer = setInterval(() => {
    // One scan at a time: a slow scan (timeouts on a sparse network) delays the next one instead of piling up.
    if (busy || stopped) return;
    busy = true;
    running = scan()
      .catch((e: Error) => log.warn({ err: e.message }, 'discovery scan failed'))
      .finally(() => (busy = false));
  }, config.DISCOVER_INTERVAL_MS);
  return {
    ready,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running.catch(() => undefined);
    },
  };
}
