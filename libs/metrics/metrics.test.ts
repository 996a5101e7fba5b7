// The text format, the hash-field encoding of stored metrics and what a finished job adds: pure, no Redis.
import { describe, expect, it } from 'vitest';
import { bucketIndex, renderFamilies } from './exposition.js';
import { cancelledWaitingIncrements, finishedJobIncrements, type FinishedJob } from './finished-job.js';
import { familyOf, fieldOf, STORED } from './stored.js';

const job = (over: Partial<FinishedJob> = {}): FinishedJob => ({
  type: 'generate',
  node: 'n1',
  state: 'completed',
  submittedAt: 1000,
  startedAt: 1200,
  finishedAt: 2000,
  attemptsMade: 1,
  stalls: 0,
  warm: true,
  result: { prompt_tokens: 5, completion_tokens: 16, eval_duration_ms: 400, load_duration_ms: 0 },
  ...over,
});

describe('exposition', () => {
  it('writes HELP, TYPE and escaped samples; empty labels are left out', () => {
    const text = renderFamilies([
      { name: 'x_total', help: 'a \\ help\nline', type: 'counter', samples: [{ labels: { model: 'q"3\\b\n', node: '' }, value: 2 }] },
      { name: 'y', help: 'h', type: 'gauge', samples: [{ labels: {}, value: Infinity }] },
    ]);
    expect(text).toBe('# HELP x_total a \\\\ help\\nline\n# TYPE x_total counter\nx_total{model="q\\"3\\\\b\\n"} 2\n# HELP y h\n# TYPE y gauge\ny +Inf\n');
  });

  it('turns per-bucket counts into cumulative buckets, sum and count', () => {
    const text = renderFamilies([{ name: 'h_seconds', help: 'h', type: 'histogram', samples: [], histograms: { bounds: [1, 5], series: [{ labels: { a: 'b' }, counts: [2, 0, 1], sum: 9.5 }] } }]);
    expect(text.split('\n').slice(2)).toEqual(['h_seconds_bucket{a="b",le="1"} 2', 'h_seconds_bucket{a="b",le="5"} 2', 'h_seconds_bucket{a="b",le="+Inf"} 3', 'h_seconds_sum{a="b"} 9.5', 'h_seconds_count{a="b"} 3', '']);
    expect([0, 1, 1.01, 5, 6].map((v) => bucketIndex([1, 5], v))).toEqual([0, 0, 1, 1, 2]);
  });

  it('keeps the line starts of frozen label sets across renders, never their numbers', () => {
    const labels = Object.freeze({ a: 'b' });
    const render = (value: number, counts: number[], name = 'x_total') =>
      renderFamilies([
        { name, help: 'h', type: 'counter', samples: [{ labels, value }] },
        { name: 'h_seconds', help: 'h', type: 'histogram', samples: [], histograms: { bounds: [1], series: [{ labels: Object.freeze({ a: 'b' }), counts, sum: 1 }] } },
      ]);
    expect(render(1, [1, 0])).toContain('x_total{a="b"} 1\n');
    const again = render(2, [1, 3]);
    expect(again).toContain('x_total{a="b"} 2\n');
    expect(again).toContain('h_seconds_bucket{a="b",le="+Inf"} 4\n');
    // The same set under another name gets that name.
    expect(render(3, [0, 0], 'y_total')).toContain('\ny_total{a="b"} 3\n');
  });
});

describe('stored metrics', () => {
  it('encodes label values in the metric’s order with a slot for the model, and reads them back', () => {
    expect(fieldOf({ metric: STORED.jobsFinished, labels: { type: 'chat', node: 'a|b', outcome: 'completed' }, amount: 1 })).toBe('chat|\u0000|a_b|completed');
    expect(fieldOf({ metric: STORED.duration, labels: { type: 'chat' }, part: 'sum', amount: 1 })).toBe('chat|\u0000|sum');
    const f = familyOf(STORED.duration, { 'chat|m1|0': '2', 'chat|m1|13': '1', 'chat|m1|sum': '700.5', bad: '9' });
    expect(f.histograms?.series).toEqual([{ labels: { type: 'chat', model: 'm1' }, counts: [2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], sum: 700.5 }]);
    expect(familyOf(STORED.jobRetries, { 'chat|m1': '4' }).samples).toEqual([{ labels: { type: 'chat', model: 'm1' }, value: 4 }]);
  });
});

describe('a finished job', () => {
  const names = (j: FinishedJob) => finishedJobIncrements(j).map((i) => `${i.metric.key}:${i.part ?? ''}`);

  it('completed: outcome, tokens, decode time, end-to-end and queue wait; token timing when it streamed', () => {
    expect(names(job())).toEqual(['jobs:', 'prompt-tokens:', 'completion-tokens:', 'decode-seconds:', 'duration:4', 'duration:sum', 'queue-wait:5', 'queue-wait:sum']);
    const timed = finishedJobIncrements(job({ timing: { firstAt: 1300, gapCounts: [0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 1], gapSum: 2.006, gaps: 4 } }));
    expect(timed.filter((i) => i.metric.key === 'ttft')).toEqual([
      { metric: STORED.ttft, labels: { type: 'generate' }, part: 5, amount: 1 },
      { metric: STORED.ttft, labels: { type: 'generate' }, part: 'sum', amount: 0.3 },
    ]);
    expect(timed.filter((i) => i.metric.key === 'itl').map((i) => [i.part, i.amount])).toEqual([
      [1, 3],
      [10, 1],
      ['sum', 2.006],
    ]);
  });

  it('counts retries, stalls and a cold load', () => {
    const incs = finishedJobIncrements(job({ attemptsMade: 3, stalls: 1, warm: false, result: { prompt_tokens: 1, completion_tokens: 1, eval_duration_ms: 1, load_duration_ms: 1500 } }));
    expect(incs.find((i) => i.metric.key === 'retries')?.amount).toBe(2);
    expect(incs.find((i) => i.metric.key === 'stalls')?.amount).toBe(1);
    expect(incs.find((i) => i.metric.key === 'load-duration' && i.part === 'sum')).toMatchObject({ labels: { node: 'n1' }, amount: 1.5 });
  });

  it('failed and cancelled: outcome and code, no latency or tokens', () => {
    expect(finishedJobIncrements(job({ state: 'failed', code: 'poison_pill' })).map((i) => [i.metric.key, i.labels])).toEqual([
      ['jobs', { type: 'generate', node: 'n1', outcome: 'failed' }],
      ['failures', { type: 'generate', code: 'poison_pill' }],
    ]);
    expect(finishedJobIncrements(job({ state: 'failed', code: 'cancelled' }))[0]?.labels.outcome).toBe('cancelled');
    expect(cancelledWaitingIncrements('chat').map((i) => i.labels)).toEqual([
      { type: 'chat', node: '', outcome: 'cancelled' },
      { type: 'chat', code: 'cancelled' },
    ]);
  });
});
