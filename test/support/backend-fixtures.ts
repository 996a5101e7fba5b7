// Fixtures for the HTTP backend tests: a simulated node with a known set of models, and cleanup after each test.
import { afterEach } from 'vitest';
import { HydraError } from '../../libs/core/index.js';
import { createSimNode, type SimNode, type SimNodeOptions } from '../../apps/node-sim/sim-server.js';

/** Things to close after the current test (servers, backends); registers its own afterEach. */
export const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

/** A fast simulated node with an 8 GB chat model, a small embedding model (width 16) and a 40 GB model that never fits. */
export async function sim(opts: Partial<SimNodeOptions> = {}): Promise<SimNode> {
  const n = await createSimNode({
    vramGb: 24,
    models: [
      { name: 'm:8b', sizeGb: 8 },
      { name: 'emb', sizeGb: 0.5, embeddingLength: 16 },
      { name: 'huge', sizeGb: 40 },
    ],
    fast: true,
    // No system RAM to offload into: the 40 GB model really never fits (it gets Ollama's out-of-memory error).
    ramGb: 1,
    ...opts,
  });
  cleanups.push(() => n.close());
  return n;
}

/** Call hooks that never abort, optionally collecting tokens. */
export const hooks = (onToken?: (t: string) => void): { signal: AbortSignal; onToken?: (t: string) => void } => ({
  signal: new AbortController().signal,
  ...(onToken ? { onToken } : {}),
});

/** The HydraError a call rejects with (fails the test if it resolves or rejects with anything else). */
export async function failure(p: Promise<unknown>): Promise<HydraError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!(e instanceof HydraError)) throw new Error(`expected a HydraError, got ${String(e)}`);
  return e;
}

/** Arm a fault on the simulated node (see docs/node-sim.md). */
export async function fault(n: SimNode, body: Record<string, unknown>): Promise<void> {
  const r = await fetch(`${n.url}/admin/faults`, { method: 'POST', body: JSON.stringify(body) });
  if (r.status !== 200) throw new Error(`arming a fault answered ${r.status}: ${await r.text()}`);
}
