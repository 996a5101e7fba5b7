// A failed probe keeps the node's last known models for MODEL_GRACE_MS (so its jobs queue instead of a 422).
import { describe, expect, it } from 'vitest';
import type { BackendProbe } from '../../libs/core/index.js';
import { withLastKnownModels } from './heartbeat.js';

const model = (name: string) => ({ name, size_bytes: 1e9 });
const good: BackendProbe = { healthy: true, models_available: [model('a:7b'), model('b:1b')], models_loaded: [{ name: 'a:7b', size_bytes: 1e9, vram_bytes: 1e9 }] };
const failed: BackendProbe = { healthy: false, error: 'timed out', models_available: [], models_loaded: [] };

describe('withLastKnownModels', () => {
  const cases: { name: string; probe: BackendProbe; last: { probe: BackendProbe; atMs: number } | null; now: number; want: string[] }[] = [
    { name: 'a healthy probe is published as it is', probe: good, last: { probe: good, atMs: 0 }, now: 10, want: ['a:7b', 'b:1b'] },
    { name: 'a failed probe within the grace keeps the last models', probe: failed, last: { probe: good, atMs: 1000 }, now: 60_000, want: ['a:7b', 'b:1b'] },
    { name: 'past the grace the empty list stands', probe: failed, last: { probe: good, atMs: 1000 }, now: 61_001, want: [] },
    { name: 'never healthy: nothing to keep', probe: failed, last: null, now: 5, want: [] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const out = withLastKnownModels(c.probe, c.last, c.now, 60_000);
      expect(out.models_available.map((m) => m.name)).toEqual(c.want);
      expect(out.healthy).toBe(c.probe.healthy);
      // What the backend holds in memory is unknown while it does not answer: never carried over.
      if (!c.probe.healthy) expect(out.models_loaded).toEqual([]);
    });
  }
  it('a failed probe that still lists models (a backend answering in part) is left alone', () => {
    const partial: BackendProbe = { ...failed, models_available: [model('c:3b')] };
    expect(withLastKnownModels(partial, { probe: good, atMs: 0 }, 1, 60_000).models_available.map((m) => m.name)).toEqual(['c:3b']);
  });
});
