// The baselines: small in-process HTTP routers that forward each request to a node listing its model, chosen at
// random (Open WebUI, LiteLLM simple-shuffle) or by fewest requests in flight from this router (LiteLLM least-busy).
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Fleet, SimProc } from './sim-fleet.js';
import { seededRandom } from './workload.js';

export const ROUTED_BY = 'x-bench-node';
export type ModelRouterKind = 'random' | 'least-busy';

export interface ModelRouter {
  url: string;
  stop(): Promise<void>;
}

/** Which nodes list each model, from their /api/tags (what these routers know; not whether it fits). */
async function listing(fleet: Fleet): Promise<Map<string, SimProc[]>> {
  const byModel = new Map<string, SimProc[]>();
  for (const s of fleet.sims) {
    const tags = (await (await fetch(`${s.url}/api/tags`)).json()) as { models: { name: string }[] };
    for (const m of tags.models) byModel.set(m.name, [...(byModel.get(m.name) ?? []), s]);
  }
  return byModel;
}

const readBody = async (req: IncomingMessage): Promise<Buffer> => {
  const parts: Buffer[] = [];
  for await (const c of req) parts.push(c as Buffer);
  return Buffer.concat(parts);
};

export async function startModelRouter(kind: ModelRouterKind, fleet: Fleet, seed: number): Promise<ModelRouter> {
  const byModel = await listing(fleet);
  const inFlight = new Map<SimProc, number>(fleet.sims.map((s) => [s, 0]));
  const rnd = seededRandom(seed);
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity });

  const choose = (candidates: SimProc[]): SimProc => {
    if (kind === 'random') return candidates[Math.floor(rnd() * candidates.length)]!;
    const least = Math.min(...candidates.map((c) => inFlight.get(c)!));
    const ties = candidates.filter((c) => inFlight.get(c) === least);
    return ties[Math.floor(rnd() * ties.length)]!;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readBody(req);
    let model = '';
    try {
      model = String((JSON.parse(body.toString() || '{}') as { model?: unknown }).model ?? '');
    } catch {
      /* not JSON: no model, answered 404 below */
    }
    const candidates = byModel.get(model) ?? [];
    if (candidates.length === 0) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: `model "${model}" not found, try pulling it first` }));
      return;
    }
    const target = choose(candidates);
    inFlight.set(target, inFlight.get(target)! + 1);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      inFlight.set(target, inFlight.get(target)! - 1);
    };
    const up = request(`${target.url}${req.url ?? '/'}`, { method: req.method, headers: { 'content-type': 'application/json', 'content-length': body.length }, agent }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, { ...ur.headers, [ROUTED_BY]: target.node.id });
      ur.pipe(res);
      ur.on('close', release);
    });
    up.on('error', (e) => {
      release();
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json', [ROUTED_BY]: target.node.id });
      res.end(JSON.stringify({ error: `router: upstream ${target.node.id} failed: ${e.message}` }));
    });
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
      release();
    });
    up.end(body);
  };

  const server = createServer((req, res) => void handle(req, res).catch(() => res.destroy()));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
        agent.destroy();
      }),
  };
}
