// VRAM-aware routing, pinning with fallback, and unsatisfiable requests, through real worker processes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from './support/cluster.js';
import { waitFor } from './support/wait.js';

describe('routing by VRAM and by node', () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster();
    await Promise.all([
      c.simWorker('gpu24', { vramGb: 24, models: [{ name: 'llama3.1:70b', sizeGb: 43 }, { name: 'qwen3:14b', sizeGb: 9.3 }], tokensPerSecond: 5000, loadMsPerGb: 0 }),
      c.simWorker('gpu80', { vramGb: 80, models: [{ name: 'llama3.1:70b', sizeGb: 43 }, { name: 'qwen3:14b', sizeGb: 9.3 }], tokensPerSecond: 5000, loadMsPerGb: 0 }),
    ]);
  });
  afterAll(async () => c?.stop());

  it('runs a 43 GB model with min_vram_gb 40 only on the 80 GB node', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await c.post('/v1/jobs', { type: 'generate', model: 'llama3.1:70b', prompt: `q${i}`, min_vram_gb: 40 });
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      ids.push(r.body.id);
    }
    // Also without min_vram_gb: the 24 GB node cannot fit 43 GB, so it must never take one.
    for (let i = 0; i < 4; i++) ids.push((await c.post('/v1/jobs', { type: 'generate', model: 'llama3.1:70b', prompt: `p${i}` })).body.id);
    const done = await waitFor(async () => {
      const views = await Promise.all(ids.map(async (id) => (await c.get(`/v1/jobs/${id}`)).body));
      return views.every((v) => v.state === 'completed') ? views : null;
    }, { timeoutMs: 30_000, what: 'all 70b jobs to complete' });
    expect(new Set(done.map((v) => v.result.node_id))).toEqual(new Set(['gpu80']));
    expect(c.sims[0]!.state().oom_errors).toBe(0);
  });

  it('refuses at submit what no registered node could ever satisfy', async () => {
    const big = await c.post('/v1/jobs', { type: 'generate', model: 'llama3.1:70b', prompt: 'x', min_vram_gb: 96 });
    expect(big.status).toBe(422);
    expect(big.body.error.code).toBe('unsatisfiable');
    expect(big.body.error.message).toMatch(/min_vram_gb 96: no registered GPU node with model "llama3.1:70b" has that much VRAM \(largest: 80\.0 GB\)/);
    const unknown = await c.post('/v1/jobs', { type: 'generate', model: 'mystery:7b', prompt: 'x' });
    expect(unknown.status).toBe(422);
    expect(unknown.body.error.message).toMatch(/no registered node has model "mystery:7b"/);
  });

  it('pins a job to node_id', async () => {
    for (const node of ['gpu24', 'gpu80']) {
      const r = await c.post('/v1/jobs', { type: 'generate', model: 'qwen3:14b', prompt: 'pin', node_id: node, wait: true });
      expect(r.status).toBe(200);
      expect(r.body.result.node_id).toBe(node);
      expect(r.body.result.routing_decision).toMatchObject({ requested_node: node, selected_node: node, queue: `node.${node}` });
      expect(r.body.result.routing_decision.reason).toMatch(`pinned to requested node ${node}`);
    }
  });

  it('pins to a node its cached node list does not have yet (a node that just joined), after one fresh read', async () => {
    // The API's node list is up to half a second old: as it was before gpu80 joined.
    const real = c.ctx.nodes;
    const cached = (await real()).filter((n) => n.id !== 'gpu80');
    let stale = true;
    c.ctx.nodes = Object.assign(async () => (stale ? cached : real()), {
      invalidate: () => {
        stale = false;
        real.invalidate();
      },
    });
    try {
      const r = await c.post('/v1/jobs', { type: 'generate', model: 'qwen3:14b', prompt: 'pin to the newcomer', node_id: 'gpu80', wait: true });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      // Before: "requested node gpu80 is not registered; fell back to any qualifying node".
      expect(r.body.result.routing_decision.reason).toMatch('pinned to requested node gpu80');
      expect(r.body.result.node_id).toBe('gpu80');
    } finally {
      c.ctx.nodes = real;
    }
  });

  it('falls back from an unhealthy pinned node and says why', async () => {
    await c.sims[0]!.close(); // gpu24's backend dies; its worker keeps heartbeating as unhealthy
    await c.waitForNode('gpu24', (n) => n.healthy === false);
    // The API routes from a node list it caches for 250 ms: submit until routing has seen the change.
    const submitted = await waitFor(async () => {
      const p = await c.post('/v1/jobs', { type: 'generate', model: 'qwen3:14b', prompt: 'fallback', node_id: 'gpu24' });
      return /fell back/.test(p.body.reason) ? p.body : null;
    }, { what: 'routing to see gpu24 unhealthy' });
    const r = await waitFor(async () => {
      const v = await c.get(`/v1/jobs/${submitted.id}`);
      return v.body.state === 'completed' ? v : null;
    }, { what: 'the fallen-back job to complete' });
    expect(r.body.result.node_id).toBe('gpu80');
    expect(r.body.result.routing_decision.requested_node).toBe('gpu24');
    expect(r.body.result.routing_decision.reason).toMatch(/requested node gpu24 is unhealthy .*fell back to any qualifying node/);
  });

  it('removes a stopped worker’s node within the heartbeat TTL', async () => {
    const w = c.workers.find((x) => x.nodeId === 'gpu24')!;
    w.proc.kill('SIGKILL');
    const t0 = Date.now();
    await waitFor(async () => !(await c.nodes()).some((n) => n.id === 'gpu24'), { timeoutMs: 8000, what: 'gpu24 to leave /v1/nodes' });
    // HEARTBEAT_MS is 1000 in tests: the record's TTL is 3 heartbeats.
    expect(Date.now() - t0).toBeLessThan(3000 + 500);
  });
});
