// Turning a validated request into a routed inference job: the queue it goes to and the payload it carries.
import { InferenceCallSchema, routingFieldsOf, type InferenceCall, type JobRequest, type NodeRecord, type RoutingFields } from '../core/index.js';
import { checkCapabilities, minVramMbOf, planRoute, type RecentNode, type RoutePlan } from '../scheduling/index.js';
import type { InferJob } from './catalog.js';

/** Fields of a job request that say how to run it, not what to run: they stay out of the backend's call. */
const NOT_CALL = ['priority', 'node_id', 'min_vram_gb', 'prefer_local', 'timeout_ms', 'wait', 'detach', 'cache'] as const;

/** The part of a job request that the backend sees (validated again as a call, so nothing else slips through). */
export function toCall(r: JobRequest): InferenceCall {
  const call: Record<string, unknown> = { ...r };
  for (const k of NOT_CALL) delete call[k];
  for (const [k, v] of Object.entries(call)) if (v === undefined) delete call[k];
  return InferenceCallSchema.parse(call);
}

/**
 * Route a call and build its payload. Throws `unsatisfiable` (from planRoute) when no node could ever run it, and
 * bad_request when no node's model can do what the call asks (images, tools, thinking).
 */
export function buildInferJob(
  call: InferenceCall,
  routing: { [K in keyof RoutingFields]?: RoutingFields[K] | undefined } & { priority: number; timeout_ms?: number | undefined; detach?: boolean | undefined },
  nodes: NodeRecord[],
  localHosts: readonly string[],
  now: number,
  /** Nodes seen within MODEL_GRACE_MS: a model only they had is queued, not refused (planRoute). */
  recent: readonly RecentNode[] = [],
): { plan: RoutePlan; payload: InferJob } {
  const plan = planRoute({ model: call.model, ...routingFieldsOf(routing) }, nodes, localHosts, recent);
  checkCapabilities(call, nodes);
  const { queueInfo: _info, ...route } = plan;
  const minVramMb = minVramMbOf(routing.min_vram_gb);
  const payload: InferJob = {
    call,
    priority: routing.priority,
    route,
    ...(minVramMb ? { min_vram_mb: minVramMb } : {}),
    ...(routing.timeout_ms ? { timeout_ms: routing.timeout_ms } : {}),
    ...(routing.detach ? { detach: true } : {}),
    submitted_at: now,
    attempts_log: [],
  };
  return { plan, payload };
}
