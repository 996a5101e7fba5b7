// Hydra's routing hints for clients that speak only the Ollama or OpenAI protocol: X-Hydra-* request headers, a
// default priority per API key (API_KEY_PRIORITIES), and the X-Hydra-Job-Id / X-Hydra-Node headers on every answer.
import type { Request, Response } from 'express';
import { DEFAULT_PRIORITY, ErrorCode, HydraError, PrioritySchema, RoutingFieldsSchema, zodProblems, type RoutingFields } from '../../libs/core/index.js';
import { presentedKey } from './auth.js';

export interface Hints extends RoutingFields {
  priority: number;
}

const HEADER = {
  priority: 'x-hydra-priority',
  node_id: 'x-hydra-node',
  min_vram_gb: 'x-hydra-min-vram-gb',
  session_id: 'x-hydra-session',
  prefer_local: 'x-hydra-prefer-local',
} as const;

/**
 * The hints of a request: X-Hydra-Priority (1-10), X-Hydra-Node, X-Hydra-Min-VRAM-GB, X-Hydra-Prefer-Local
 * (true/false/1/0), X-Hydra-Session (session affinity), else the API key's default priority, else 5. A bad header is a
 * 400 naming it.
 */
export function hintsOf(req: Request, keyPriorities: ReadonlyMap<string, number>): Hints {
  const raw = (h: string) => req.header(h)?.trim();
  const problems: string[] = [];
  const num = (h: string): number | undefined => {
    const v = raw(h);
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) problems.push(`${h} must be a number (got ${JSON.stringify(v)})`);
    return n;
  };
  const priority = num(HEADER.priority);
  const min = num(HEADER.min_vram_gb);
  const localRaw = raw(HEADER.prefer_local);
  const local = localRaw === undefined || localRaw === '' ? undefined : /^(1|true|yes)$/i.test(localRaw) ? true : /^(0|false|no)$/i.test(localRaw) ? false : null;
  if (local === null) problems.push(`${HEADER.prefer_local} must be true or false (got ${JSON.stringify(localRaw)})`);
  const routing = RoutingFieldsSchema.safeParse({ node_id: raw(HEADER.node_id) || undefined, min_vram_gb: min, prefer_local: local ?? undefined, session_id: raw(HEADER.session_id) || undefined });
  if (!routing.success) for (const p of zodProblems(routing.error)) problems.push(`${HEADER[p.field as keyof typeof HEADER] ?? p.field} ${p.problem}`);
  let p = priority;
  if (p !== undefined) {
    const r = PrioritySchema.safeParse(p);
    if (!r.success) problems.push(`${HEADER.priority} ${r.error.issues[0]?.message ?? 'is invalid'}`);
  } else {
    const key = presentedKey(req.header('authorization'));
    p = (key ? keyPriorities.get(key) : undefined) ?? DEFAULT_PRIORITY;
  }
  if (problems.length > 0) throw new HydraError(ErrorCode.BadRequest, `invalid Hydra header: ${problems.join('; ')}`, { details: { param: problems[0]?.split(' ')[0] } });
  return { priority: p, ...(routing.success ? routing.data : {}) };
}

/** Which job answered, and on which node (the node is unknown until a node takes the job). */
export function setJobHeaders(res: Response, jobId: string | null, nodeId: string | null | undefined): void {
  if (res.headersSent) return;
  if (jobId) res.setHeader('X-Hydra-Job-Id', jobId);
  if (nodeId) res.setHeader('X-Hydra-Node', nodeId);
}
