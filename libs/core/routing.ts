// The routing vocabulary, defined once: priority, model name, the routing fields a caller may set, and the routing
// candidate / decision every result carries. Zod schemas with inferred types; the decision is assembled only here.
import { z } from 'zod';

/** Priority 1-10, 10 most urgent. */
export const PrioritySchema = z
  .number({ error: 'must be an integer from 1 to 10' })
  .int('must be an integer from 1 to 10')
  .min(1, 'must be at least 1 (1 lowest, 10 highest)')
  .max(10, 'must be at most 10 (10 highest)');
export type Priority = z.infer<typeof PrioritySchema>;
export const DEFAULT_PRIORITY = 5;

export const ModelNameSchema = z.string({ error: 'is required (a model name, e.g. "qwen3:14b")' }).min(1, 'must not be empty').max(200);

/** What a caller may say about where a request runs. */
export const RoutingFieldsSchema = z.object({
  node_id: z.string().min(1).max(64).optional(),
  min_vram_gb: z.number({ error: 'must be a number of GB' }).min(0, 'must not be negative').max(100_000).optional(),
  prefer_local: z.boolean().optional(),
  /**
   * Session affinity: requests of one conversation (same value) go to the node that served its last turn, which holds
   * its KV cache (prefix reuse), when that node can take them now. Chat requests without it get one from their opening
   * messages (sessionKeyOf).
   */
  session_id: z.string().min(1, 'must not be empty').max(256, 'must be at most 256 characters').optional(),
});
export type RoutingFields = z.infer<typeof RoutingFieldsSchema>;

/** Only the routing fields that say something (no empty strings, zero VRAM or false). */
export function routingFieldsOf(r: { node_id?: string | undefined; min_vram_gb?: number | undefined; prefer_local?: boolean | undefined; session_id?: string | undefined }): RoutingFields {
  return {
    ...(r.node_id ? { node_id: r.node_id } : {}),
    ...(r.min_vram_gb ? { min_vram_gb: r.min_vram_gb } : {}),
    ...(r.prefer_local ? { prefer_local: true } : {}),
    ...(r.session_id ? { session_id: r.session_id } : {}),
  };
}

/** A node that could serve a request, as seen at submit. */
export const RoutingCandidateSchema = z.object({
  id: z.string(),
  healthy: z.boolean(),
  warm: z.boolean(),
  need_mb: z.number(),
  capacity_mb: z.number(),
});
export type RoutingCandidate = z.infer<typeof RoutingCandidateSchema>;

/** The submit-time half of the decision: which queue and why. Carried in the job payload. */
export const RouteSchema = z.object({
  queue: z.string(),
  requested_node: z.string().nullable(),
  reason: z.string(),
  candidates: z.array(RoutingCandidateSchema),
});
export type Route = z.infer<typeof RouteSchema>;

export const AttemptRecordSchema = z.object({
  attempt: z.number(),
  node_id: z.string(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  at: z.number(),
});
export type AttemptRecord = z.infer<typeof AttemptRecordSchema>;

/** The whole decision: the route, the node that took it (null while nobody has) and every attempt. */
export const RoutingDecisionSchema = RouteSchema.extend({
  selected_node: z.string().nullable(),
  queued_ms: z.number(),
  attempts: z.array(AttemptRecordSchema),
});
export type RoutingDecision = z.infer<typeof RoutingDecisionSchema>;

/**
 * Assemble a routing decision. Without `taken` it is the decision of a job no node has taken yet; with it, the
 * node's own reason is appended to the submit-time reason and this attempt joins the earlier ones.
 */
export function routingDecision(route: Route, earlier: readonly AttemptRecord[], taken?: { node_id: string; reason: string; queued_ms: number; attempt: number; at: number }): RoutingDecision {
  if (!taken) return { ...route, selected_node: null, queued_ms: 0, attempts: [...earlier] };
  return {
    ...route,
    selected_node: taken.node_id,
    reason: `${route.reason}; ${taken.reason}`,
    queued_ms: Math.max(0, taken.queued_ms),
    attempts: [...earlier, { attempt: taken.attempt, node_id: taken.node_id, at: taken.at }],
  };
}
