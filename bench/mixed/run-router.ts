// One router's run: fresh simulated nodes, the router in front of them, the workload, then where each request ran and the nodes' counters.
import { fits, type NodeSpec, type Needs, type SimSpeed } from './fleet-spec.js';
import { drive, type Outcome } from './drive.js';
import { startHydra } from './hydra-cluster.js';
import { findNginx, startNginx } from './nginx.js';
import { startModelRouter } from './routers.js';
import { fleetCounters, startFleet, type Fleet, type FleetCounters, type SimFeatures } from './sim-fleet.js';
import type { WorkRequest } from './workload.js';

export const ROUTER_KINDS = ['hydra', 'random', 'least-busy', 'nginx'] as const;
export type RouterKind = (typeof ROUTER_KINDS)[number];

export interface RunContext {
  features: SimFeatures;
  speed: SimSpeed;
  timeScale: number;
  needs: Needs;
  requests: readonly WorkRequest[];
  /** For Hydra: the Redis to use, and a key prefix per run (`{name}`) so no state carries over. */
  redisUrl: string;
  seed: number;
  nodes?: readonly NodeSpec[];
  /** Give up on a request after this long, wall ms. */
  maxRequestMs: number;
  /** Hydra's key prefix (`{name}`); default one per run. */
  prefix?: string;
  /** Called with the fleet just before the first request is sent (a test looks at the nodes while it runs). */
  onStart?: (fleet: Fleet) => void;
  log?: (line: string) => void;
}

export interface RouterRun {
  /** `hydra`, `hydra#2` for a repeat, `random`, ... */
  name: string;
  kind: RouterKind;
  /** Why it did not run (nginx not installed). */
  skipped?: string;
  outcomes: Outcome[];
  wallMs: number;
  counters: FleetCounters | null;
  /** Requests placed on a node that can never fit their model (Hydra's estimate, weights + KV cache). */
  misplaced: number;
  /** Requests whose node is unknown (not routed, or the job record could not be read). */
  unplaced: number;
}

/** Runs the workload through one router in front of a fleet started for it, and stops both. `fleet` may be passed in if still fresh. */
export async function runRouter(kind: RouterKind, name: string, c: RunContext, fresh?: Fleet): Promise<RouterRun> {
  const log = c.log ?? (() => undefined);
  const nginxBin = kind === 'nginx' ? findNginx() : null;
  if (kind === 'nginx' && !nginxBin) return { name, kind, skipped: 'skipped: nginx not installed', outcomes: [], wallMs: 0, counters: null, misplaced: 0, unplaced: 0 };
  const fleet = fresh ?? (await startFleet({ features: c.features, speed: c.speed, timeScale: c.timeScale, ...(c.nodes ? { nodes: c.nodes } : {}) }));
  let stopRouter: () => Promise<void> = async () => undefined;
  try {
    let url: string;
    if (kind === 'hydra') {
      const h = await startHydra({ fleet, needs: c.needs, speed: c.speed, timeScale: c.timeScale, redisUrl: c.redisUrl, prefix: c.prefix ?? `{mixed-${name.replace(/[^a-z0-9]/g, '')}-${Date.now()}}` });
      [url, stopRouter] = [h.url, h.stop];
    } else if (kind === 'nginx') {
      const n = await startNginx(nginxBin!, fleet);
      [url, stopRouter] = [n.url, n.stop];
    } else {
      const r = await startModelRouter(kind, fleet, c.seed);
      [url, stopRouter] = [r.url, r.stop];
    }
    log(`${name}: ${c.requests.length} requests over ${Math.round(c.requests.at(-1)!.atS / c.timeScale)} s wall`);
    let next = 0.1;
    c.onStart?.(fleet);
    const { outcomes, wallMs } = await drive({
      url,
      requests: c.requests,
      timeScale: c.timeScale,
      maxRequestMs: c.maxRequestMs,
      onDone: (_o, done) => {
        if (done / c.requests.length >= next) {
          log(`${name}: ${done}/${c.requests.length} done`);
          next += 0.1;
        }
      },
    });
    if (kind === 'hydra') await hydraPlacements(url, outcomes);
    else resolveNodes(outcomes, fleet);
    const counters = await fleetCounters(fleet);
    const nodeOf = new Map(fleet.sims.map((s) => [s.node.id, s.node]));
    let misplaced = 0;
    let unplaced = 0;
    for (const o of outcomes) {
      const node = o.node ? nodeOf.get(o.node) : undefined;
      if (!node) unplaced++;
      else if (!fits(node, o.model, c.needs)) misplaced++;
    }
    return { name, kind, outcomes, wallMs, counters, misplaced, unplaced };
  } finally {
    await stopRouter();
    await fleet.stop();
  }
}

/** nginx reports the upstream as `127.0.0.1:port`: the node with that URL. */
function resolveNodes(outcomes: Outcome[], fleet: Fleet): void {
  for (const o of outcomes) {
    if (!o.node) continue;
    const s = fleet.sims.find((x) => x.node.id === o.node || x.url.endsWith(`//${o.node}`));
    if (s) o.node = s.node.id;
  }
}

/** Where Hydra ran each job: `routing_decision.selected_node` of its job record. */
async function hydraPlacements(url: string, outcomes: Outcome[]): Promise<void> {
  const queue = outcomes.filter((o) => o.jobId);
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let o = queue.pop(); o; o = queue.pop()) {
        const r = await fetch(`${url}/v1/jobs/${o.jobId}`).catch(() => null);
        if (!r?.ok) continue;
        const job = (await r.json()) as { submitted_at?: string; started_at?: string | null; routing_decision?: { selected_node?: string | null } };
        const node = job.routing_decision?.selected_node;
        if (node) o.node = node;
        if (job.started_at && job.submitted_at) o.queuedMs = Date.parse(job.started_at) - Date.parse(job.submitted_at);
      }
    }),
  );
}
