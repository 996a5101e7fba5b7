// Turning a validated request into a routed inference job: the queue it goes to and the payload it carries.
import { routingFieldsOf, type InferenceCall, type JobRequest, type NodeRecord, type RoutingFields } from '../core/index.js';
import { planRoute, type RoutePlan } from '../scheduling/index.js';
import type { InferJob } from './catalog.js';

/** The part of a job request that the backend sees. */
export function toCall(r: JobRequest): InferenceCall {
  const base = { model: r.model, ...(r.options ? { options: r.options } : {}), ...(r.keep_alive !== undefined ? { keep_alive: r.keep_alive } : {}) };
  if (r.type === 'generate') return { type: 'generate', ...base, prompt: r.prompt, ...(r.system ? { system: r.system } : {}), ...(r.format ? { format: r.format } : {}) };
  if (r.type === 'chat') return { type: 'chat', ...base, messages: r.messages, ...(r.format ? { format: r.format } : {}) };
  return { type: 'embed', ...base, input: r.input };
}

/** Route a call and build its payload. Throws `unsatisfiable` (from planRoute) when no node could ever run it. */
export function buildInferJob(
  call: InferenceCall,
  routing: { [K in keyof RoutingFields]?: RoutingFields[K] | undefined } & { priority: number; timeout_ms?: number | undefined; detach?: boolean | undefined },
  nodes: NodeRecord[],
  localHosts: readonly string[],
  now: number,
): { plan: RoutePlan; payload: InferJob } {
  const plan = planRoute({ model: call.model, ...routingFieldsOf(routing) }, nodes, localHosts);
  const { queueInfo: _info, ...route } = plan;
  const payload: InferJob = {
    call,
    priority: routing.priority,
    route,
    ...(routing.timeout_ms ? { timeout_ms: routing.timeout_ms } : {}),
    ...(routing.detach ? { detach: true } : {}),
    submitted_at: now,
    attempts_log: [],
  };
  return { plan, payload };
}
