// Measured speed per node × model in Redis: each completed job folds its sample into EWMAs (perf.lua, atomic across the node's processes); the registry's list() attaches them to every node.
import type { ModelPerf } from '../core/index.js';
import { loadScript, readScript, type EndWrite, type HydraKeys, type RedisClient, type ScriptCall } from '../queue/index.js';
import { canonicalModel, PERF_ALPHA, type PerfSample } from '../scheduling/index.js';

/** A node's figures outlive it by this long after its last job (ms), so a restarted node keeps what it learned. */
const PERF_TTL_MS = 7 * 24 * 3600 * 1000;

const SCRIPTS = new URL('./scripts/', import.meta.url);

/** perf.lua's text, for the job-end call that includes it (libs/queue/job-end.ts `EndScripts`). */
export const nodePerfLua = (): string => readScript(SCRIPTS, 'perf').lua;

/** Parse a node's perf hash (model → perf.lua's value); malformed entries are left out. */
export function parsePerf(hash: Record<string, string>): Record<string, ModelPerf> {
  const out: Record<string, ModelPerf> = {};
  for (const [model, raw] of Object.entries(hash)) {
    const f = raw.split('|').map(Number);
    if (f.length < 7 || f.some((x) => !Number.isFinite(x))) continue;
    const [tps, ttft, job, n, load, loads, at] = f as [number, number, number, number, number, number, number];
    if (n < 1) continue;
    out[model] = { tokens_per_s: tps, ttft_ms: ttft, job_ms: job, ...(loads > 0 ? { load_ms: load } : {}), samples: n, load_samples: loads, updated_at: at };
  }
  return out;
}

export class PerfStore {
  private readonly script: ScriptCall<number>;

  constructor(
    private readonly r: RedisClient,
    private readonly keys: HydraKeys,
    private readonly opts: { alpha?: number; ttlMs?: number } = {},
  ) {
    this.script = loadScript(r, SCRIPTS, 'perf');
  }

  /** Fold one completed job's sample into (node, model); answers the model's sample count there. */
  async record(nodeId: string, model: string, s: PerfSample, now: number): Promise<number> {
    const c = this.call(nodeId, model, s, now);
    return this.script(c.keys, c.args);
  }

  /** The same fold as a write of a job's end (libs/queue/job-end.ts); `then` gets the count. */
  recordWrite(nodeId: string, model: string, s: PerfSample, now: number, then: (samples: number | null, err: Error | null) => void): EndWrite {
    return { kind: 'nodePerf', ...this.call(nodeId, model, s, now), then: (reply, err) => then(err ? null : Number(reply), err) };
  }

  private call(nodeId: string, model: string, s: PerfSample, now: number): { keys: string[]; args: (string | number)[] } {
    return {
      keys: [this.keys.nodePerf(nodeId)],
      args: [canonicalModel(model), this.opts.alpha ?? PERF_ALPHA, s.tokens_per_s, s.ttft_ms, s.job_ms, s.load_ms ?? '', now, this.opts.ttlMs ?? PERF_TTL_MS],
    };
  }

  /** A node's figures by model (canonical names); empty when nothing was measured. */
  async perfOf(nodeId: string): Promise<Record<string, ModelPerf>> {
    return parsePerf(await this.r.hgetall(this.keys.nodePerf(nodeId)));
  }

  /** Several nodes' figures in one round trip. */
  async perfOfMany(nodeIds: readonly string[]): Promise<Map<string, Record<string, ModelPerf>>> {
    const out = new Map<string, Record<string, ModelPerf>>();
    if (nodeIds.length === 0) return out;
    const p = this.r.pipeline();
    for (const id of nodeIds) p.hgetall(this.keys.nodePerf(id));
    const res = (await p.exec()) ?? [];
    nodeIds.forEach((id, i) => out.set(id, parsePerf((res[i]?.[1] ?? {}) as Record<string, string>)));
    return out;
  }
}
