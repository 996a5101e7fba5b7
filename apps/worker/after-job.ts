// What runs after a job ends for good (completed, or failed with no retry left): its answer goes into the L1 cache,
// and when it is a workflow step, its workflow advances.
import type { L1Cache } from '../../libs/cache/index.js';
import type { Config } from '../../libs/config/index.js';
import type { Logger } from '../../libs/logger/index.js';
import type { InferJob } from '../../libs/queue/index.js';
import type { Coordinator } from '../../libs/workflows/index.js';
import type { RunDeps } from './run-job.js';

export interface AfterJob {
  onFinished: NonNullable<RunDeps['onFinished']>;
}

export function createAfterJob(config: Config, deps: { cache: L1Cache; coordinator: Coordinator; logger: Logger }): AfterJob {
  const { cache, coordinator, logger } = deps;
  return {
    async onFinished(job, outcome) {
      // runJob validated the payload before running it.
      const data = job.data as InferJob;
      if (outcome.state === 'completed' && data.cache_key) {
        const stored = await cache.put(data.cache_key, outcome.result, job.id);
        if (stored === 'too_large') logger.debug({ jobId: job.id, limit: config.CACHE_MAX_ENTRY_BYTES }, 'answer larger than CACHE_MAX_ENTRY_BYTES; not cached');
      }
      if (data.workflow) {
        await coordinator.stepFinished(
          data.workflow,
          job,
          outcome.state === 'completed' ? { state: 'completed', result: outcome.result } : { state: 'failed', error: { code: outcome.error.code, message: outcome.error.message } },
        );
      }
    },
  };
}
