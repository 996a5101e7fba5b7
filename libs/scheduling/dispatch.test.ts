// Table-driven tests of the locality wait: a cold head waits only for a warm node that could take it now.
import { describe, expect, it } from 'vitest';
import type { NodeRecord } from '../core/index.js';
import { orderHeads, type PeerNode, type QueueHead } from './index.js';

function node(id: string, o: { loaded?: string[]; healthy?: boolean; breaker?: 'closed' | 'open' | 'half_open'; slots?: number; active?: number } = {}): PeerNode {
  const rec: NodeRecord = {
    id,
    url: `http://${id}`,
    backend: 'ollama',
    type: 'gpu',
    healthy: o.healthy ?? true,
    simulated: true,
    host: 'elsewhere',
    vram_total_mb: 24 * 1024,
    vram_available_mb: 24 * 1024,
    ram_total_mb: 0,
    ram_available_mb: 0,
    capacity_mb: 24 * 1024 - 200,
    buffer_mb: 200,
    models_available: [{ name: 'b', size_mb: 1024, need_mb: 1100 }],
    models_loaded: (o.loaded ?? []).map((name) => ({ name, size_mb: 1, vram_mb: 1 })),
    slots: o.slots ?? 4,
    last_heartbeat: 0,
    ...(o.breaker ? { breaker: { state: o.breaker, recent_failures: 0, open_until: null } } : {}),
  };
  return o.active === undefined ? rec : { ...rec, active_jobs: o.active };
}

describe('orderHeads: locality wait', () => {
  const me = node('me', { loaded: ['a:latest'] });
  const head: QueueHead = { queue: 'qb', jobId: '1', model: 'b', priority: 1, timestamp: 1000 };
  // now = 1100, wait 500 ms: a fresh head (age 100 ms).
  it.each<[string, PeerNode[], 'wait' | 'take', RegExp | null]>([
    ['warm node with a free slot', [node('w', { loaded: ['b:latest'], active: 3 })], 'wait', null],
    ['warm node, active jobs unknown', [node('w', { loaded: ['b:latest'] })], 'wait', null],
    ['warm node half-open (may take a probe)', [node('w', { loaded: ['b:latest'], breaker: 'half_open', active: 0 })], 'wait', null],
    ['warm node with every slot busy', [node('w', { loaded: ['b:latest'], active: 4 })], 'take', /warm node w cannot take it now \(all slots busy\)/],
    ['warm node over its slots', [node('w', { loaded: ['b:latest'], slots: 2, active: 3 })], 'take', /all slots busy/],
    ['warm node with its breaker open', [node('w', { loaded: ['b:latest'], breaker: 'open', active: 0 })], 'take', /breaker open/],
    ['warm node unhealthy', [node('w', { loaded: ['b:latest'], healthy: false, active: 0 })], 'take', /unhealthy/],
    ['one warm node full, another free', [node('full', { loaded: ['b:latest'], active: 4 }), node('free', { loaded: ['b:latest'], active: 1 })], 'wait', null],
    ['no warm node', [node('cold', { active: 0 })], 'take', /no node has it loaded/],
  ])('%s → %s', (_name, others, want, reason) => {
    const r = orderHeads([head], { node: me, others, now: 1100, localityWaitMs: 500 });
    if (want === 'wait') {
      expect(r.choices).toEqual([]);
      expect(r.retryInMs).toBe(400);
    } else {
      expect(r.choices.map((c) => c.head.jobId)).toEqual(['1']);
      expect(r.choices[0]?.warm).toBe(false);
      expect(r.retryInMs).toBeNull();
      if (reason) expect(r.choices[0]?.reason).toMatch(reason);
    }
  });
});
