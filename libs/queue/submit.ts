// Turning a validated request into a routed inference job: the queue it goes to and the payload it carries.
import { createHash } from 'node:crypto';
import { InferenceCallSchema, routingFieldsOf, type InferenceCall, type JobRequest, type NodeRecord, type RoutingFields } from '../core/index.js';
import { canonicalModel, checkCapabilities, minVramMbOf, planRoute, type RecentNode, type RoutePlan } from '../scheduling/index.js';
import type { InferJob } from './catalog.js';

/** Fields of a job request that say how to run it, not what to run: they stay out of the backend's call. */
const NOT_CALL = ['priority', 'node_id', 'min_vram_gb', 'prefer_local', 'session_id', 'timeout_ms', 'wait', 'detach', 'cache'] as const;

/**
 * The session affinity key of a call: from an explicit `session_id`, else, for a chat that continues a conversation
 * (an assistant turn in it), from the model and its opening messages — the prefix whose KV cache the node that served
 * the earlier turns still holds. Single-turn calls get none (nothing to reuse beyond a shared system prompt, and
 * pinning every request of an app to one node would defeat load spreading).
 */
export function sessionKeyOf(call: InferenceCall, sessionId: string | undefined): string | undefined {
  const hash = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 32);
  if (sessionId) return hash(`id\0${sessionId}`);
  if (call.type !== 'chat' || !call.messages.some((m) => m.role === 'assistant')) return undefined;
  const opening = call.messages.slice(0, call.messages[0]?.role === 'system' ? 2 : 1).map((m) => [m.role, m.content]);
  return hash(`chat\0${canonicalModel(call.model)}\0${JSON.stringify(opening)}`);
}

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
  const session = sessionKeyOf(call, routing.session_id);
  const payload: InferJob = {
    call,
    priority: routing.priority,
    route,
    ...(minVramMb ? { min_vram_mb: minVramMb } : {}),
    ...(routing.timeout_ms ? { timeout_ms: routing.timeout_ms } : {}),
    ...(routing.detach ? { detach: true } : {}),
    ...(session ? { session } : {}),
    submitted_at: now,
    attempts_log: [],
  };
  return { plan, payload };
}
