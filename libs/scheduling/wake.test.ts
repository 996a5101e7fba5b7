// Wake fan-out: a few nodes with a free slot, warm first, in turns; never a full one.
import { describe, expect, it } from 'vitest';
import { wakeNodesFor, wakeTargets, type WakeCandidate } from './wake.js';
import type { QueueInfo } from './routing.js';

const c = (warm: boolean, free: number): WakeCandidate => ({ warm, free });

describe('wakeTargets', () => {
  it('wakes every candidate with a free slot when there are no more than the fan-out, warm first', () => {
    expect(wakeTargets([c(false, 0), c(true, 1), c(false, 2)], 4, 0)).toEqual([1, 2]);
  });
  it('wakes up to the fan-out, warm nodes with a free slot first, never a full one', () => {
    const cands = [c(false, 1), c(true, 0), c(true, 2), c(false, 1), c(true, 1), c(false, 3)];
    expect(wakeTargets(cands, 3, 0)).toEqual([2, 4, 0]);
  });
  it('takes turns, so a flood of one model spreads over the warm nodes', () => {
    const cands = Array.from({ length: 10 }, () => c(true, 1));
    const woken = new Set<number>();
    for (let turn = 0; turn < 5; turn++) for (const i of wakeTargets(cands, 2, turn)) woken.add(i);
    expect(woken.size).toBeGreaterThanOrEqual(5);
    expect(wakeTargets(cands, 2, 3)).toEqual([3, 4]);
  });
  it('wakes nobody when every node is full (each wakes itself when a job ends)', () => {
    expect(wakeTargets(Array.from({ length: 6 }, () => c(true, 0)), 4, 0)).toEqual([]);
  });
});

describe('wakeNodesFor', () => {
  const klass: QueueInfo = { kind: 'class', name: 'infer.m.0', model: 'm', min_vram_mb: 0 };
  const cand = (id: string, warm: boolean, healthy = true) => ({ id, healthy, warm, need_mb: 100, capacity_mb: 1000 });
  it("wakes a node queue's node only", () => {
    expect(wakeNodesFor({ queueInfo: { kind: 'node', name: 'node.a', node: 'a' }, candidates: [] }, [], 0)).toEqual(['a']);
  });
  it('wakes at most four healthy candidates with a free slot, warm first, from the registry view', () => {
    const candidates = [cand('a', false), cand('b', true), cand('c', true, false), cand('d', false), cand('e', true), cand('f', false), cand('g', false)];
    const view = ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((id) => ({ id, slots: 2, active_jobs: id === 'e' ? 2 : 0 }));
    expect(wakeNodesFor({ queueInfo: klass, candidates }, view, 0)).toEqual(['b', 'a', 'd', 'f']);
  });
  it('leaves the choice to the worker processes when the view shows no free slot (undefined: wake everyone)', () => {
    const view = [{ id: 'a', slots: 1, active_jobs: 1 }];
    expect(wakeNodesFor({ queueInfo: klass, candidates: [cand('a', true)] }, view, 0)).toBeUndefined();
    expect(wakeNodesFor({ queueInfo: { kind: 'workflow', name: 'wf' }, candidates: [] }, [], 0)).toBeUndefined();
  });
});
