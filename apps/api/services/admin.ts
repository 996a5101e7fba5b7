// Model management across the cluster (Ollama's pull, delete, and keep_alive 0 unload): one admin job per target
// node in that node's queue, run by its worker against its backend; progress and the end come back on each job's
// stream like any other job's.
import { randomUUID } from 'node:crypto';
import type { AdminCall } from '../../../libs/core/index.js';
import type { ApiContext } from '../context.js';

export interface AdminJobRef {
  node_id: string;
  job_id: string;
  queue: string;
}

/** Queue `call` on each node (ids must be registered nodes; the caller picks them). */
export async function submitAdmin(ctx: ApiContext, call: AdminCall, nodeIds: readonly string[]): Promise<AdminJobRef[]> {
  const now = Date.now();
  const out: AdminJobRef[] = [];
  for (const node_id of nodeIds) {
    const job_id = `admin-${randomUUID()}`;
    const queue = await ctx.producer.addAdmin(job_id, { call, node_id, submitted_at: now });
    out.push({ node_id, job_id, queue });
  }
  return out;
}
