// Table-driven tests of the locality wait (a cold head waits only for a warm node that could take it now) and of best fit.
import { describe, expect, it } from 'vitest';
import type { NodeRecord } from '../core/index.js';
import { bestFit, orderHeads, type FitCandidate, type PeerNode, type QueueHead } from './index.js';

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

describe('orderHeads: a warm node at its per-model slot limit', () => {
  const me = node('me', { loaded: ['a:latest'] });
  const head: QueueHead = { queue: 'qb', jobId: '1', model: 'b', priority: 1, timestamp: 1000 };
  // Worker slots free (2 of 4 used), but both backend slots for b are running b.
  const busy = { ...node('w', { loaded: ['b:latest'], active: 2 }), parallel: 2, inflight_by_model: { 'b:latest': 2 } };

  it('is not waited for as if it could take the job now', () => {
    const r = orderHeads([head], { node: me, others: [busy], now: 1100, localityWaitMs: 500 });
    expect(r.choices.map((c) => c.head.jobId)).toEqual(['1']);
    expect(r.choices[0]?.reason).toMatch(/warm node w cannot take it now \(all slots busy\)/);
  });

  it('is waited for once one of its slots for the model is free', () => {
    const r = orderHeads([head], { node: me, others: [{ ...busy, inflight_by_model: { 'b:latest': 1, 'a:latest': 1 } }], now: 1100, localityWaitMs: 500 });
    expect(r.choices).toEqual([]);
    expect(r.retryInMs).toBe(400);
  });
});

describe('bestFit', () => {
  const c = (id: string, o: Partial<FitCandidate> = {}): FitCandidate => ({ id, warm: false, freeMb: 8000, needMb: 5000, ...o });
  it.each<[string, FitCandidate[], string | null]>([
    ['warm beats a tighter cold fit', [c('cold-tight', { freeMb: 5000 }), c('warm', { warm: true, freeMb: 70_000 })], 'warm'],
    ['least memory left over wins among cold nodes', [c('big', { freeMb: 80_000 }), c('small', { freeMb: 8000 }), c('mid', { freeMb: 24_000 })], 'small'],
    ['a node that cannot fit it now is ignored', [c('too-small', { freeMb: 4000 }), c('big', { freeMb: 48_000 })], 'big'],
    ['ties broken by measured speed', [c('slow', { tokensPerS: 20 }), c('fast', { tokensPerS: 90 }), c('unknown')], 'fast'],
    ['none fits', [c('a', { freeMb: 100 })], null],
    ['a warm node is a candidate even when its free memory is small (the model is already there)', [c('warm-full', { warm: true, freeMb: 0 }), c('cold', { freeMb: 9000 })], 'warm-full'],
  ])('%s', (_name, cands, want) => {
    expect(bestFit(cands)).toBe(want);
  });

  it('orderHeads leaves a young cold head to a better-fitting node, then takes it after the wait', () => {
    const me = node('me');
    const head: QueueHead = { queue: 'qb', jobId: '1', model: 'b', priority: 1, timestamp: 1000 };
    const ctx = { node: me, others: [], localityWaitMs: 500, bestFitWaitMs: 250, betterFit: () => 'small' };
    expect(orderHeads([head], { ...ctx, now: 1100 })).toEqual({ choices: [], retryInMs: 150 });
    const later = orderHeads([head], { ...ctx, now: 1300 });
    expect(later.choices.map((x) => x.head.jobId)).toEqual(['1']);
    expect(orderHeads([head], { ...ctx, now: 1100, betterFit: () => null }).choices).toHaveLength(1);
  });
});

describe('orderHeads: session affinity', () => {
  const me = node('me', { loaded: ['b:latest'] });
  const head = (sessionNode?: string): QueueHead => ({ queue: 'qb', jobId: '1', model: 'b', priority: 1, timestamp: 1000, ...(sessionNode ? { sessionNode } : {}) });
  it.each<[string, PeerNode[], string | undefined, 'wait' | 'take']>([
    ['session node warm with a free slot: left to it, though warm here too', [node('home', { loaded: ['b:latest'], active: 0 })], 'home', 'wait'],
    ['session node full: taken here', [node('home', { loaded: ['b:latest'], active: 4 })], 'home', 'take'],
    ['session node no longer has the model loaded: taken here', [node('home', { active: 0 })], 'home', 'take'],
    ['session node gone from the registry: taken here', [], 'home', 'take'],
    ['this node is the session node', [node('other', { loaded: ['b:latest'], active: 0 })], 'me', 'take'],
    ['no session', [node('other', { loaded: ['b:latest'], active: 0 })], undefined, 'take'],
  ])('%s', (_name, others, sessionNode, want) => {
    const r = orderHeads([head(sessionNode)], { node: me, others, now: 1100, localityWaitMs: 500 });
    expect(r.choices.length).toBe(want === 'take' ? 1 : 0);
    if (want === 'wait') expect(r.retryInMs).toBe(400);
    if (sessionNode === 'me') expect(r.choices[0]?.reason).toMatch(/session affinity/);
  });
});
