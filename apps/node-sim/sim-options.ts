// The simulated node's configuration (what `createSimNode` takes) and the shape of its observable state (`GET /admin/state`). Defaults and their sources: docs/simulator.md.
import type { Logger } from '../../libs/logger/index.js';
import type { LoadedModelState } from './sim-memory.js';
import type { SimModelSpec } from './sim-models.js';
import type { KvCacheType } from './sim-sizing.js';

export interface SimNodeOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Memory for loaded models, GB = GiB (2^30 bytes), the unit of the worker's NODE_VRAM_GB. */
  vramGb: number;
  models: SimModelSpec[];
  /** System RAM for layers that do not fit VRAM (CPU offload), GB = GiB. Default 64. */
  ramGb?: number;
  /** Concurrent requests (KV-cache slots) per loaded model, as OLLAMA_NUM_PARALLEL; more wait in FIFO order. Default 4. */
  parallel?: number;
  /** Context per slot when a request sets no `options.num_ctx`, tokens (OLLAMA_CONTEXT_LENGTH). Default 4096. */
  numCtx?: number;
  /** KV cache element type (OLLAMA_KV_CACHE_TYPE): f16, q8_0 or q4_0. Default f16. */
  kvCacheType?: KvCacheType;
  /** Requests that may wait for a model load behind the one being placed (OLLAMA_MAX_QUEUE); more get a 503. Default 512. */
  maxQueue?: number;
  /** Fixed cost of every load (runner start-up), ms. Default 1000. */
  loadFixedMs?: number;
  /** Load time per GB of weights, ms, on top of `loadFixedMs`. Default 20. */
  loadMsPerGb?: number;
  /** Base single-stream decode speed, tokens/s; a model decodes at `base * 8 / max(sizeGb, 1)`. Default 200. */
  tokensPerSecond?: number;
  /**
   * With n requests evaluating or decoding on the node at once (all models together), each runs at
   * single-stream speed × n^(e − 1): aggregate throughput grows as n^e. 1 = parallelism is free. Default 0.7.
   */
  batchExponent?: number;
  /** CPU decode speed as a fraction of the GPU's, for the offloaded part of a model. Default 0.1. */
  cpuSpeedRatio?: number;
  /**
   * Every simulated duration (load, prompt, tokens, keep-alive, pull) is divided by this; answers report
   * real-time-equivalent (multiplied back) durations. Default 1.
   */
  timeScale?: number;
  /** Near-zero latency (no load, prompt or per-token delay), for benchmarks. Pull time is set by `pullMBps` and `timeScale` alone. */
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
  /** System RAM for offloaded layers, and what offloaded models hold of it. */
  ram_total_bytes: number;
  ram_used_bytes: number;
  /** Loaded (or loading) models, least recently used first. */
  loaded: LoadedModelState[];
  /** Inference requests in progress, including those waiting for a load or a slot, or hanging on a fault. */
  active_requests: number;
  /** Requests waiting for memory to load their model (FIFO), the one being placed included. */
  queued_for_load: number;
  /** Requests evaluating a prompt or decoding right now: the n of the batch exponent. */
  decoding: number;
  /** Inference requests answered in full. */
  served: number;
  /** Inference requests whose client went away before the answer was complete. */
  aborted: number;
  /** Inference requests answered with an error status (injected failures, OOM, unknown model). */
  failed: number;
  /** Connections the node cut on a `drop_next` fault. */
  dropped: number;
  /** Loads refused because the model does not fit VRAM + RAM (Ollama's "model requires more system memory" 500). */
  oom_errors: number;
  loads: number;
  /** Loads that put part of the model in system RAM (size_vram < size): a model placed on a node whose VRAM cannot hold it. */
  offloaded_loads: number;
  /** Idle models unloaded to make room for another. */
  evictions: number;
  /** Models unloaded by keep-alive expiry, keep_alive 0, delete or reset. */
  unloads: number;
  /** Models unloaded to load again with another num_ctx. */
  reloads: number;
  /** Requests answered 503 because max_queue requests already waited for a load. */
  queue_full: number;
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
