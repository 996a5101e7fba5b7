// GET /v1/jobs: the recent inference jobs of every Hydra queue, newest first. Bounded: at most `limit` jobs are read
// per queue and state (BullMQ getJobs, one pipelined read each), then merged by submit time and cut to `limit`.
import type { Job } from 'bullmq';
import { z } from 'zod';
import { ErrorCode, HydraError, zodProblems } from '../../../libs/core/index.js';
import type { InferJob } from '../../../libs/queue/index.js';
import type { ApiContext } from '../context.js';
import { whereRunning } from '../job-view.js';

/** States as the job view names them; `prioritized` (BullMQ's word for Hydra's waiting jobs) is accepted too. */
const STATES = ['waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed'] as const;
type ListState = Exclude<(typeof STATES)[number], 'prioritized'>;

/** BullMQ's lists behind each public state: Hydra's jobs all carry a priority, so waiting ones are `prioritized`. */
const BULL_TYPES: Record<ListState, ('prioritized' | 'wait' | 'active' | 'delayed' | 'completed' | 'failed')[]> = {
  waiting: ['prioritized', 'wait'],
  active: ['active'],
  delayed: ['delayed'],
  completed: ['completed'],
  failed: ['failed'],
};

const JobListQuerySchema = z.strictObject({
  limit: z.coerce.number({ error: 'must be a whole number from 1 to 200' }).int('must be a whole number from 1 to 200').min(1, 'must be at least 1').max(200, 'must be at most 200').default(20),
  state: z.enum(STATES, { error: `must be one of ${STATES.join(', ')}` }).optional(),
  model: z.string().min(1, 'must not be empty').max(200).optional(),
});
type JobListQuery = z.infer<typeof JobListQuerySchema>;

/** One row of the list (docs/api.md, "GET /v1/jobs"). */
interface JobSummary {
  id: string;
  state: string;
  type: string;
  model: string;
  queue: string;
  priority: number;
  created_at: string;
  finished_at: string | null;
  node_id: string | null;
}

/** The query as the API takes it, or a 400 naming each bad parameter. */
export function parseJobListQuery(query: unknown): JobListQuery {
  const r = JobListQuerySchema.safeParse(query ?? {});
  if (r.success) return r.data;
  const fields = zodProblems(r.error);
  throw new HydraError(ErrorCode.BadRequest, `invalid query: ${fields.map((p) => `${p.field} ${p.problem}`).join('; ')}`, { details: { fields } });
}

/** The node of a finished job: the one that completed it, or the last one that failed it. */
function finishedNode(job: Job, data: InferJob): string | null {
  const r = job.returnvalue as { node_id?: unknown } | null;
  if (typeof r?.node_id === 'string') return r.node_id;
  const last = data.attempts_log?.at(-1);
  return last?.node_id ?? null;
}

export async function listJobs(ctx: ApiContext, q: JobListQuery): Promise<JobSummary[]> {
  const state: ListState | undefined = q.state === 'prioritized' ? 'waiting' : q.state;
  const states = state ? [state] : (Object.keys(BULL_TYPES) as ListState[]);
  // Inference runs in class and node queues; a class queue of another model cannot hold a match, so it is not read.
  const queues = (await ctx.producer.listQueues()).filter((i) => (i.kind === 'class' ? !q.model || i.model === q.model : i.kind === 'node'));
  const found = await Promise.all(
    queues.flatMap((info) =>
      states.map(async (s) => {
        const jobs = await ctx.producer.queue(info.name).getJobs(BULL_TYPES[s], 0, q.limit - 1, false);
        return jobs.map((job) => ({ job, state: s, queue: info.name }));
      }),
    ),
  );
  const rows = found
    .flat()
    .filter(({ job }) => {
      const call = (job?.data as Partial<InferJob> | undefined)?.call as { type?: unknown; model?: unknown } | undefined;
      // Admin jobs (pull, delete) share node queues and have no inference type: not listed.
      return typeof call?.type === 'string' && (!q.model || call.model === q.model);
    })
    .sort((a, b) => b.job.timestamp - a.job.timestamp)
    .slice(0, q.limit);
  return Promise.all(
    rows.map(async ({ job, state: s, queue }) => {
      const data = job.data as InferJob;
      const node = s === 'active' ? (await whereRunning(ctx.redis, ctx.keys, job)).node_id : s === 'completed' || s === 'failed' ? finishedNode(job, data) : null;
      return {
        id: job.id!,
        state: s,
        type: data.call.type,
        model: data.call.model,
        queue,
        priority: data.priority,
        created_at: new Date(job.timestamp).toISOString(),
        finished_at: job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
        node_id: node,
      };
    }),
  );
}
