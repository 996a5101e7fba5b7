// Wake fan-out: a few agents with a free slot, warm first, in turns; everyone when there are few.
import { describe, expect, it } from 'vitest';
import { wakeTargets, type WakeCandidate } from './wake-fanout.js';

const c = (warm: boolean, free: number): WakeCandidate => ({ warm, free });

describe('wakeTargets', () => {
  it('wakes every candidate when there are no more than the fan-out', () => {
    expect(wakeTargets([c(false, 0), c(true, 1), c(false, 2)], 4, 7)).toEqual([0, 1, 2]);
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
