// The worker's settings, picked from config once: the dispatcher, the job runner and the node agent read these
// instead of each taking a dozen loose fields.
import type { Config } from '../../libs/config/index.js';

export interface WorkerSettings {
  nodeId: string;
  /** Jobs this process runs at once. */
  slots: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  maxStalledCount: number;
  pollMs: number;
  localityWaitMs: number;
  /** How long a cold job is left to a better-fitting node that could start it now (ms). */
  bestFitWaitMs: number;
  /** How long a session stays tied to the node that ran its last turn (s); 0: no affinity. */
  sessionAffinityS: number;
  backoffMs: number;
  backoffMaxMs: number;
  retentionS: number;
  backendTimeoutMs: number;
  /** How long a node that failed an attempt leaves the job to other nodes (ms). */
  excludeFailedNodeMs: number;
  heartbeatMs: number;
  agingStepMs: number;
  drainMode: Config['DRAIN_MODE'];
  drainGraceMs: number;
  /** Token stream writes are coalesced over this long (ms). */
  streamFlushMs: number;
  /** DISPATCH_TIMING_LOG_MS: log a summary of the dispatch rounds' times this often (0: not timed). */
  dispatchTimingLogMs: number;
}

export function workerSettings(config: Config, nodeId: string, slots: number): WorkerSettings {
  return {
    nodeId,
    slots,
    lockDurationMs: config.LOCK_DURATION_MS,
    stalledIntervalMs: config.STALLED_INTERVAL_MS,
    maxStalledCount: config.MAX_STALLED_COUNT,
    pollMs: config.POLL_MS,
    localityWaitMs: config.LOCALITY_WAIT_MS,
    bestFitWaitMs: config.BEST_FIT_WAIT_MS,
    sessionAffinityS: config.SESSION_AFFINITY_S,
    backoffMs: config.BACKOFF_MS,
    backoffMaxMs: config.BACKOFF_MAX_MS,
    retentionS: config.JOB_RETENTION_S,
    backendTimeoutMs: config.BACKEND_TIMEOUT_MS,
    excludeFailedNodeMs: config.EXCLUDE_FAILED_NODE_MS,
    heartbeatMs: config.HEARTBEAT_MS,
    agingStepMs: config.AGING_STEP_MS,
    drainMode: config.DRAIN_MODE,
    drainGraceMs: config.DRAIN_GRACE_MS,
    streamFlushMs: 25,
    dispatchTimingLogMs: config.DISPATCH_TIMING_LOG_MS,
  };
}
