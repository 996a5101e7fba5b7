// Hydra in front of a simulated fleet: `hydra api` and one `hydra worker` per node as child processes, its waits scaled with the time scale.
import type { ChildProcess } from 'node:child_process';
import { loadConfig } from '../../libs/config/index.js';
import { HYDRA_BIN, child, freePort, until } from '../support.js';
import { BUFFER_MB, fits, type NodeSpec, type Needs, type SimSpeed } from './fleet-spec.js';
import { stopProcess, type Fleet } from './sim-fleet.js';

export interface HydraOptions {
  fleet: Fleet;
  needs: Needs;
  speed: SimSpeed;
  timeScale: number;
  redisUrl: string;
  /** A key prefix of its own (`{name}`): a fresh Hydra on a Redis that earlier runs used. */
  prefix: string;
}

export interface HydraCluster {
  url: string;
  /** The scaled environment every process got (for the report). */
  env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * Hydra's own waits are policy in milliseconds of real time; at time scale K the simulated world runs K× faster, so
 * they are divided by K too, from their defaults (libs/config). Floors keep the CPU cost bounded on 2 cores:
 * heartbeats at most every 500 ms, the idle poll every 100 ms. Failover timings (locks, stalled checks) are not
 * scheduling and stay as they are.
 */
export function scaledWaits(k: number): Record<string, string> {
  const d = loadConfig({});
  const s = (ms: number, floor = 0): string => String(Math.max(floor, Math.round(ms / k)));
  return {
    LOCALITY_WAIT_MS: s(d.LOCALITY_WAIT_MS),
    BEST_FIT_WAIT_MS: s(d.BEST_FIT_WAIT_MS),
    AGING_STEP_MS: s(d.AGING_STEP_MS, 10),
    BACKOFF_MS: s(d.BACKOFF_MS),
    BACKOFF_MAX_MS: s(d.BACKOFF_MAX_MS),
    EXCLUDE_FAILED_NODE_MS: s(d.EXCLUDE_FAILED_NODE_MS),
    HEARTBEAT_MS: s(d.HEARTBEAT_MS, 500),
    POLL_MS: s(d.POLL_MS, 100),
  };
}

/**
 * Slots per worker process: `parallel` per model, times the most of its runnable models that fit in memory together
 * (Hydra already holds one model to `parallel` in flight, so this only bounds how many models run at once).
 */
export function slotsFor(node: NodeSpec, needs: Needs, speed: SimSpeed): number {
  const runnable = node.models.filter((m) => fits(node, m, needs)).sort((a, b) => needs[a]! - needs[b]!);
  let used = 0;
  let count = 0;
  for (const m of runnable) {
    if (used + needs[m]! > node.vramGb * 1024 - BUFFER_MB) break;
    used += needs[m]!;
    count++;
  }
  return speed.parallel * Math.max(1, count);
}

export async function startHydra(o: HydraOptions): Promise<HydraCluster> {
  const port = await freePort();
  const env: Record<string, string> = {
    REDIS_URL: o.redisUrl,
    QUEUE_PREFIX: o.prefix,
    LOG_LEVEL: 'warn',
    PORT: String(port),
    NUM_PARALLEL: String(o.speed.parallel),
    NUM_CTX: String(o.speed.numCtx),
    VRAM_BUFFER_MB: String(BUFFER_MB),
    ...scaledWaits(o.timeScale),
  };
  const procs: ChildProcess[] = [child(process.execPath, [HYDRA_BIN, 'api'], env)];
  for (const s of o.fleet.sims) {
    const wenv = { ...env, BACKEND: 'ollama', OLLAMA_URL: s.url, NODE_ID: s.node.id, NODE_VRAM_GB: String(s.node.vramGb), WORKER_CONCURRENCY: String(slotsFor(s.node, o.needs, o.speed)) };
    procs.push(child(process.execPath, [HYDRA_BIN, 'worker'], wenv));
  }
  const url = `http://127.0.0.1:${port}`;
  const want = o.fleet.sims.length;
  await until(
    `${want} Hydra workers registered and healthy`,
    async () => ((await (await fetch(`${url}/v1/nodes`)).json()) as { nodes: { healthy: boolean }[] }).nodes.filter((n) => n.healthy).length === want,
    90_000,
  );
  return { url, env, stop: () => Promise.all(procs.map((p) => stopProcess(p, 1000))).then(() => undefined) };
}
