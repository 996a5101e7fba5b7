// The simulated node's configuration (what `createSimNode` takes) and the shape of its observable state (`GET /admin/state`).
import type { Logger } from '../../libs/logger/index.js';
import type { LoadedModelState } from './sim-memory.js';
import type { SimModelSpec } from './sim-models.js';

export interface SimNodeOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Memory for loaded models, GB = GiB (2^30 bytes), the unit of the worker's NODE_VRAM_GB. */
  vramGb: number;
  models: SimModelSpec[];
  /** Concurrent requests per loaded model; more wait in FIFO order. Default 4. */
  parallel?: number;
  /** Load time per GB of model, ms. Default 20. */
  loadMsPerGb?: number;
  /** Base decode speed, tokens/s; a model decodes at `base * 8 / max(sizeGb, 1)`. Default 200. */
  tokensPerSecond?: number;
  /** Near-zero latency (no load, prompt or per-token delay), for benchmarks. Pull time is set by `pullMBps` alone. */
  fast?: boolean;
  /** Models /api/pull can fetch besides those in `models` (which can always be re-pulled). Default none. */
  pullable?: SimModelSpec[];
  /** Simulated download speed of /api/pull, megabytes (1e6 bytes) per second. Default 200. */
  pullMBps?: number;
  /** Disk for installed models, GB = GiB; a pull that does not fit fails. Default unlimited. */
  diskGb?: number;
  logger?: Logger;
}

export type ResolvedSimOptions = Required<Omit<SimNodeOptions, 'logger' | 'diskGb'>> & { diskGb: number | undefined };

/** What `GET /admin/state` and `SimNode.state()` report. Bytes are exact; counters start at 0 and `POST /admin/reset` zeroes them. */
export interface SimState {
  simulated: true;
  vram_total_bytes: number;
  vram_used_bytes: number;
  /** Loaded (or loading) models, least recently used first. */
  loaded: LoadedModelState[];
  /** Inference requests in progress, including those waiting for a load or a slot, or hanging on a fault. */
  active_requests: number;
  /** Inference requests answered in full. */
  served: number;
  /** Inference requests whose client went away before the answer was complete. */
  aborted: number;
  /** Inference requests answered with an error status (injected failures, OOM, unknown model). */
  failed: number;
  /** Connections the node cut on a `drop_next` fault. */
  dropped: number;
  oom_errors: number;
  loads: number;
  evictions: number;
  unloads: number;
  faults_pending: { fail_next: number; hang_next: number; drop_next: number };
  /** Pulls in progress (streams still downloading). */
  pulls_active: number;
  /** Pulls that ended in `success`. */
  pulls_completed: number;
  /** Pulls whose client went away before `success`: the download stopped and nothing was installed. */
  pulls_aborted: number;
  /** Pulls that ended in an error (unknown model, disk full). */
  pulls_failed: number;
  /** Models removed by DELETE /api/delete. */
  deletes: number;
  /** Bytes of installed models (what /api/tags sizes add up to). */
  disk_used_bytes: number;
  /** null: unlimited. */
  disk_total_bytes: number | null;
  /** Requests received by "METHOD /path" (all routes, admin ones included). */
  requests: Record<string, number>;
}
