// The node's heartbeat: probe the backend, build the node record (memory, models, health, breaker), write it to the
// registry with a TTL. One beat at a time, so a slow probe never lets an older record overwrite a newer one.
import type { Config } from '../../libs/config/index.js';
import type { BackendProbe, NodeRecord } from '../../libs/core/index.js';
import type { Logger } from '../../libs/logger/index.js';
import type { NodeRegistry } from '../../libs/registry/index.js';
import type { InferenceBackend } from './backends/backend.js';
import type { SharedBreaker } from './circuit-breaker.js';
import { buildNodeRecord, osRam, readNvidiaSmi } from './resources.js';
import type { WorkerSettings } from './settings.js';

export interface HeartbeatDeps {
  backend: InferenceBackend;
  registry: NodeRegistry;
  /** The node's breaker (shared by its processes): re-read at each beat so the record shows the node's state. */
  breaker: SharedBreaker;
  /** This worker process: its membership of the node (and its slots) is renewed with each beat. */
  procId: string;
  logger: Logger;
  /** The backend started or stopped answering. */
  onHealthChange: (healthy: boolean) => void;
  /**
   * A discovered node (DISCOVER): a server on another host, so this machine's GPUs (nvidia-smi), NODE_URL and host
   * name say nothing about it; the record names `host` instead.
   */
  remote?: { host: string };
}

/** Memory facts from config: what a node without nvidia-smi says it has, and what it keeps free. */
type MemoryConfig = Pick<Config, 'NODE_URL' | 'NODE_VRAM_GB' | 'NODE_RAM_GB' | 'VRAM_BUFFER_MB' | 'NUM_CTX' | 'NUM_PARALLEL'> &
  Partial<Pick<Config, 'KV_CACHE_TYPE' | 'MODEL_GRACE_MS'>>;

/**
 * The models a failed probe reports: none (the backend did not answer), though its disk still holds what the last
 * answer listed. Publishing that empty list made the API refuse a model's jobs (422, "no node has it") whenever one
 * probe timed out under load; so for MODEL_GRACE_MS after the last healthy probe the record keeps the last known
 * available models (and no loaded ones: what the backend holds in memory is unknown), still marked unhealthy, so
 * jobs are queued ("every qualifying node is unhealthy right now") and nothing is sent to it. Past the grace the
 * empty list stands: a backend gone for good no longer draws jobs for its models.
 */
export function withLastKnownModels(probe: BackendProbe, lastHealthy: { probe: BackendProbe; atMs: number } | null, nowMs: number, graceMs: number): BackendProbe {
  if (probe.healthy || probe.models_available.length > 0 || !lastHealthy || nowMs - lastHealthy.atMs > graceMs) return probe;
  return { ...probe, models_available: lastHealthy.probe.models_available };
}

export class Heartbeat {
  private current: NodeRecord | null = null;
  /** Health, breaker state, available and loaded models at the last beat (a change drops the shared snapshot). */
  private routingView = '';
  private lastHealthy: boolean | null = null;
  private inFlight: Promise<NodeRecord> | null = null;
  private soonTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** The last probe that answered, and when (for withLastKnownModels). */
  private lastGood: { probe: BackendProbe; atMs: number } | null = null;

  constructor(
    private readonly s: WorkerSettings,
    private readonly mem: MemoryConfig,
    private readonly d: HeartbeatDeps,
  ) {}

  /** The latest record (null before the first beat). */
  record(): NodeRecord | null {
    return this.current;
  }

  /** Probe and publish now; a beat already running is joined rather than overlapped. After `stop`, nothing is sent. */
  beat(): Promise<NodeRecord> {
    if (this.stopped) return this.current ? Promise.resolve(this.current) : Promise.reject(new Error('heartbeat stopped'));
    this.inFlight ??= this.run().finally(() => (this.inFlight = null));
    return this.inFlight;
  }

  /** A beat within 200 ms (a model was loaded or evicted), at most one pending. */
  soon(): void {
    this.soonTimer ??= setTimeout(() => {
      this.soonTimer = null;
      this.beat().catch(() => undefined);
    }, 200);
  }

  /**
   * No beat from now on, and one already under way publishes nothing: resolves once it has ended. A beat whose probe was
   * still out when the process left wrote the node's record and this process's membership back after `leave` had
   * dropped them, so the node outlived its last process by the record's TTL (test/shared-node.int.test.ts, in CI).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.soonTimer) clearTimeout(this.soonTimer);
    this.soonTimer = null;
    await this.inFlight?.catch(() => undefined);
  }

  private async run(): Promise<NodeRecord> {
    const { s, mem, d } = this;
    const answer: BackendProbe = await d.backend.probe(AbortSignal.timeout(Math.max(1000, s.heartbeatMs)));
    if (answer.healthy) this.lastGood = { probe: answer, atMs: Date.now() };
    const probe = withLastKnownModels(answer, this.lastGood, Date.now(), mem.MODEL_GRACE_MS ?? 0);
    const rec = buildNodeRecord({
      id: s.nodeId,
      url: d.remote ? d.backend.url : (mem.NODE_URL ?? d.backend.url),
      backend: d.backend.kind,
      probe,
      gpu: d.remote ? null : await readNvidiaSmi(),
      ...(d.remote ? { host: d.remote.host } : {}),
      ...(mem.NODE_VRAM_GB !== undefined ? { nodeVramGb: mem.NODE_VRAM_GB } : {}),
      ...(mem.NODE_RAM_GB !== undefined ? { nodeRamGb: mem.NODE_RAM_GB } : {}),
      bufferMb: mem.VRAM_BUFFER_MB,
      numCtx: mem.NUM_CTX,
      numParallel: mem.NUM_PARALLEL,
      ...(mem.KV_CACHE_TYPE ? { kvCacheType: mem.KV_CACHE_TYPE } : {}),
      slots: s.slots,
      now: Date.now(),
      ram: osRam(),
    });
    await d.breaker.sync(Date.now(), 0).catch((e: Error) => d.logger.warn({ err: e.message }, 'circuit breaker state unreadable'));
    rec.breaker = d.breaker.view(Date.now());
    rec.parallel = Math.max(1, probe.parallel ?? mem.NUM_PARALLEL);
    // What routing and the dispatchers' warm/healthy checks look at: a change drops the shared registry snapshot.
    const names = (ms: readonly { name: string }[]) => ms.map((m) => m.name).sort();
    const seen = JSON.stringify([rec.healthy, rec.breaker?.state ?? null, names(rec.models_available), names(rec.models_loaded)]);
    const changed = this.current === null || this.routingView !== seen;
    if (this.stopped) return rec;
    this.current = rec;
    this.routingView = seen;
    await d.registry.heartbeat(rec, s.heartbeatMs * 3, d.procId, { unchanged: !changed });
    if (this.lastHealthy !== rec.healthy) {
      d.logger[rec.healthy ? 'info' : 'warn']({ node: s.nodeId, backend: d.backend.url, err: rec.error }, rec.healthy ? 'backend healthy' : 'backend unhealthy; not pulling jobs');
      this.lastHealthy = rec.healthy;
      d.onHealthChange(rec.healthy);
    }
    return rec;
  }
}
