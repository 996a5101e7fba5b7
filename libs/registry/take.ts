// Taking a job in one round trip (scripts/take.lua): the node's reservation (reserve.lua) and BullMQ's own move to
// active, in one Lua call. BullMQ's script is included as the pinned version ships it (bullmq-internals.ts names the
// version; libs/registry/take.int.test.ts checks the job a take hands out against what BullMQ's getNextJob gives).
import { raw2NextJobData, type Job, type Worker } from 'bullmq';
import { moveToActive } from 'bullmq/dist/esm/scripts/moveToActive-11.js';
import { loadScript, readScript, replyCode, type HydraKeys, type RedisClient, type ScriptCall } from '../queue/index.js';

const SCRIPTS = new URL('./scripts/', import.meta.url);

/** What reserve.lua takes, as the registry's callers give it. */
export interface ReserveRequest {
  nodeId: string;
  /** The reservation's key: the BullMQ lock token the job will be taken with. */
  token: string;
  model: string;
  mb: number;
  capacityMb: number;
  now: number;
  ttlMs: number;
  /** The backend's concurrent requests per model on this node (OLLAMA_NUM_PARALLEL, server slots). */
  parallel: number;
  /** The job this reservation is for, when known (the peeked head): admitting the fenced job lifts the fence. */
  forJobId?: string;
  /** Its BullMQ priority (1 most urgent): a more urgent job than the fenced one is not held back by the fence. */
  bullPriority?: number;
}

/** Why a reservation was refused, or that it was admitted (reserve.lua). */
export type ReserveOutcome = 'admitted' | 'full' | 'busy' | 'fenced';
export const RESERVE_OUTCOMES: readonly ReserveOutcome[] = ['admitted', 'full', 'busy', 'fenced'];

/** reserve.lua's keys and arguments for `r` (one place for both the reserve and the take). */
export function reserveCall(keys: HydraKeys, r: ReserveRequest): { keys: string[]; argv: (string | number)[] } {
  return {
    keys: [keys.reservations(r.nodeId), keys.reservationPeak(r.nodeId), keys.nodeFence(r.nodeId)],
    argv: [r.token, r.model, Math.ceil(r.mb), Math.floor(r.capacityMb), r.now, r.ttlMs, Math.max(1, r.parallel), r.forJobId ?? '', r.bullPriority ?? 0],
  };
}

export type TakeOutcome =
  /** The reservation was refused: nothing was taken. */
  | { outcome: 'refused'; why: Exclude<ReserveOutcome, 'admitted'> }
  /** No job to take (queue empty, paused, or its next job delayed); the reservation, if any, was given back. */
  | { outcome: 'empty' }
  /**
   * Taken under the request's token, its reservation held; `cancelled`: its cancel flag was up as it was taken; `left`:
   * the jobs its queue still had ready then (0: the dispatcher need not look again until woken).
   */
  | { outcome: 'taken'; job: Job; cancelled: boolean; left: number };

export interface TakeRequest {
  nodeId: string;
  token: string;
  now: number;
  /** The reservation to make first; none for an admin head. */
  reserve?: Omit<ReserveRequest, 'nodeId' | 'token' | 'now'>;
  /** The taken job's liveness entry (hash key, value), written under its id as it is taken; none with liveness off. */
  live?: { key: string; value: string } | null;
}

export type JobTaker = (worker: Worker, r: TakeRequest) => Promise<TakeOutcome>;

/** BullMQ's Worker builds a taken job (and its events) from moveToActive's reply; protected in its types. */
interface WorkerInternals {
  nextJobFromJobData(jobData?: unknown, jobId?: string, token?: string): Promise<Job | undefined>;
}

/**
 * Take the next job of `worker`'s queue for a node: reserve (unless `reserve` is absent), move to active, in one
 * call. `cancelPrefix` is the cancel flag's key without the job id (keys.cancelFlag('')).
 */
export function jobTaker(redis: RedisClient, keys: HydraKeys): JobTaker {
  const take: ScriptCall<unknown[]> = loadScript(redis, SCRIPTS, 'take', { reserve: readScript(SCRIPTS, 'reserve').lua, moveToActive: moveToActive.content });
  return async (worker, r) => {
    const q = worker.keys;
    const res = reserveCall(keys, { nodeId: r.nodeId, token: r.token, now: r.now, model: '', mb: 0, capacityMb: 0, ttlMs: 0, parallel: 1, ...r.reserve });
    const reply = await take(
      [...res.keys, q.wait!, q.active!, q.prioritized!, q.events!, q.stalled!, q.limiter!, q.delayed!, q.paused!, q.meta!, q.pc!, q.marker!, r.live?.key ?? keys.liveJobs('')],
      [...res.argv, q['']!, worker.opts.lockDuration ?? 30_000, worker.opts.name ?? '', keys.cancelFlag(''), r.live?.value ?? ''],
    );
    const code = replyCode('take', reply[0], ['refused', 'empty', 'taken']);
    if (code === 'refused') return { outcome: 'refused', why: replyCode('take', reply[1], RESERVE_OUTCOMES.filter((o) => o !== 'admitted')) };
    if (code === 'empty') return { outcome: 'empty' };
    const [jobData, jobId] = raw2NextJobData([reply[1], reply[2], reply[3], reply[4]]) as [unknown, string];
    const job = await (worker as unknown as WorkerInternals).nextJobFromJobData(jobData, jobId, r.token);
    // nextJobFromJobData answers nothing only for a repeatable job it could not schedule again; Hydra adds none.
    if (!job) throw new Error(`take: BullMQ built no job from ${jobId}'s data`);
    return { outcome: 'taken', job, cancelled: Number(reply[5]) === 1, left: Number(reply[6]) };
  };
}
