// The routing decision is assembled in one place: before a node takes the job, and when one does (attempts appended).
import { describe, expect, it } from 'vitest';
import { routingDecision, routingFieldsOf } from './routing.js';

const route = { queue: 'infer.m_latest', requested_node: null, reason: 'queued for 2 qualifying node(s)', candidates: [{ id: 'a', healthy: true, warm: false, need_mb: 10, capacity_mb: 100 }] };

describe('routingDecision', () => {
  it('has no selected node before one takes the job, and keeps earlier attempts', () => {
    const earlier = [{ attempt: 1, node_id: 'b', error: { code: 'backend_error', message: 'x' }, at: 5 }];
    expect(routingDecision(route, earlier)).toEqual({ ...route, selected_node: null, queued_ms: 0, attempts: earlier });
  });

  it("appends the node's reason and this attempt when a node takes it", () => {
    const d = routingDecision(route, [], { node_id: 'a', reason: 'cold load of m', queued_ms: -3, attempt: 1, at: 9 });
    expect(d.selected_node).toBe('a');
    expect(d.reason).toBe('queued for 2 qualifying node(s); cold load of m');
    expect(d.queued_ms).toBe(0);
    expect(d.attempts).toEqual([{ attempt: 1, node_id: 'a', at: 9 }]);
  });
});

describe('routingFieldsOf', () => {
  it('keeps only fields that say something', () => {
    expect(routingFieldsOf({ node_id: '', min_vram_gb: 0, prefer_local: false })).toEqual({});
    expect(routingFieldsOf({ node_id: 'n', min_vram_gb: 8, prefer_local: true })).toEqual({ node_id: 'n', min_vram_gb: 8, prefer_local: true });
  });
});
