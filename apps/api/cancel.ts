// Cancelling a job: a waiting one is removed (and its stream ended), an active one is aborted on the node running it.
import { ErrorCode, HydraError } from '../../libs/core/index.js';
import type { ApiContext } from './context.js';

export type CancelOutcome = { state: 'cancelled' } | { state: 'cancelling' };

/** Throws not_found for an unknown job and conflict for one that already ended. */
export async function cancelJob(ctx: ApiContext, id: string, why: string): Promise<CancelOutcome> {
  const queue = await ctx.producer.queueOfJob(id);
  const job = queue ? await queue.getJob(id) : undefined;
  if (!job) throw new HydraError(ErrorCode.NotFound, `no job with id ${id}`);
  const state = await job.getState();
  if (state === 'completed' || state === 'failed') throw new HydraError(ErrorCode.Conflict, `job ${id} already ${state}; nothing to cancel`);
  await ctx.redis.set(ctx.keys.cancelFlag(id), why, 'EX', ctx.config.JOB_RETENTION_S);
  if (state !== 'active') {
    try {
      await job.remove();
      const err = { code: 'cancelled', message: `job ${id} was cancelled before it started (${why})` };
      await ctx.redis.multi().xadd(ctx.keys.stream(id), '*', 'e', 'error', 'd', JSON.stringify(err)).expire(ctx.keys.stream(id), ctx.config.JOB_RETENTION_S).exec();
      await ctx.redis.publish(ctx.keys.channels.done, JSON.stringify({ id, state: 'cancelled' }));
      return { state: 'cancelled' };
    } catch {
      // It became active meanwhile (locked): abort it on its node instead.
    }
  }
  await ctx.redis.publish(ctx.keys.channels.cancel, id);
  return { state: 'cancelling' };
}
