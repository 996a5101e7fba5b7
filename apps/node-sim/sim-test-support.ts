// Shared helpers for the simulated node's own tests: start nodes (closed after each test), post JSON, split NDJSON and SSE.
import { afterEach } from 'vitest';
import { createSimNode, type SimNode, type SimNodeOptions } from './sim-server.js';

const nodes: SimNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.close()));
});

/** A fast node with `opts` (closed after the test). */
export async function startSim(opts: Partial<SimNodeOptions> & Pick<SimNodeOptions, 'models'>): Promise<SimNode> {
  const n = await createSimNode({ vramGb: 24, fast: true, ...opts });
  nodes.push(n);
  return n;
}

/** Answers in tests are inspected field by field: their JSON is typed loosely. */
export type LooseResponse = Omit<Response, 'json'> & { json(): Promise<any> };

export async function send(n: SimNode, method: string, path: string, body: unknown, init: RequestInit = {}): Promise<LooseResponse> {
  return fetch(n.url + path, { method, body: JSON.stringify(body), headers: { 'content-type': 'application/json' }, ...init });
}

export const postJson = async (n: SimNode, path: string, body: unknown): Promise<any> => (await send(n, 'POST', path, body)).json();
export const getJson = async (n: SimNode, path: string): Promise<any> => (await fetch(n.url + path)).json();
export const ndjson = (text: string): any[] => text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));

/** The JSON payloads of an SSE answer, without the final `[DONE]` (asserted present). */
export function sseChunks(text: string): any[] {
  const events = text.split('\n\n').filter((e) => e !== '');
  if (events.pop() !== 'data: [DONE]') throw new Error(`SSE answer does not end with [DONE]: ${text.slice(-200)}`);
  return events.map((e) => JSON.parse(e.replace(/^data: /, '')));
}
