// A short chaos run in CI (the long one: npm run bench:chaos): nothing lost, nothing completed twice, clear failures.
import { expect, it } from 'vitest';
import { runChaos } from '../bench/chaos.js';

it('keeps every accepted job through random SIGKILLs and backend faults', async () => {
  const report = await runChaos({ jobs: 150, seconds: 20, nodes: 3, seed: 11 });
  // Every submission is accepted; a 503 under load is retried by the client like any queue client would.
  expect(report.rejections).toEqual([]);
  expect(report.accepted).toBe(150);
  expect(report.lost).toEqual([]);
  expect(report.completed_twice).toEqual([]);
  expect(report.unclear_failures).toEqual([]);
  expect(report.kills + report.faults).toBeGreaterThan(3);
  expect(report.completed + Object.values(report.failed).reduce((a, b) => a + b, 0)).toBe(report.accepted);
}, 240_000);
