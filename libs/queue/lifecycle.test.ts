// The lifecycle protocol's pure parts: the one failure codec (jobs and workflow steps read failures through it), the
// stream entry format, the done message parser, and payload validation at enqueue.
import { describe, expect, it } from 'vitest';
import { checkPayload } from './catalog.js';
import { decodeFailure, encodeFailure, isTerminal, parseDoneMessage, parseStreamEntry, streamFields } from './lifecycle.js';

describe('failure codec', () => {
  it('round-trips a Hydra failure, multi-line messages included', () => {
    const f = { code: 'backend_error', message: 'the backend said no\nsecond line' };
    expect(decodeFailure(encodeFailure(f))).toEqual(f);
  });

  it("reads BullMQ's own stalled-checker failure as a poison pill (the job view and the workflow view agree)", () => {
    const d = decodeFailure('job stalled more than allowable limit');
    expect(d.code).toBe('poison_pill');
    expect(d.message).toMatch(/crashed its worker too many times/);
  });

  it('reads anything else as internal, keeping the text', () => {
    expect(decodeFailure('boom')).toEqual({ code: 'internal', message: 'boom' });
    expect(decodeFailure(undefined)).toEqual({ code: 'internal', message: 'unknown failure' });
  });
});

describe('stream entries', () => {
  it('writes and reads the same fields; entries without an event are tokens', () => {
    expect(parseStreamEntry('1-0', streamFields('done', '{"a":1}'))).toEqual({ id: '1-0', event: 'done', data: '{"a":1}' });
    expect(parseStreamEntry('1-1', [])).toEqual({ id: '1-1', event: 'token', data: '' });
  });

  it('ends only on done and error', () => {
    expect(['token', 'retry', 'requeued', 'step', 'cancelling', 'done', 'error'].filter(isTerminal)).toEqual(['done', 'error']);
  });
});

describe('done messages', () => {
  it('parses a message and refuses junk', () => {
    expect(parseDoneMessage('{"id":"j1","state":"completed"}')).toEqual({ id: 'j1', state: 'completed' });
    expect(parseDoneMessage('not json')).toBeNull();
    expect(parseDoneMessage('{"state":"completed"}')).toBeNull();
  });
});

describe('checkPayload', () => {
  const route = { queue: 'infer.m_latest', requested_node: null, reason: 'test', candidates: [] };
  it('accepts a valid inference payload and fills defaults', () => {
    const p = checkPayload('infer', { call: { type: 'generate', model: 'm', prompt: 'hi' }, priority: 5, route, submitted_at: 1 });
    expect(p.attempts_log).toEqual([]);
  });

  it('refuses a bad payload naming each field, before it is enqueued', () => {
    expect(() => checkPayload('infer', { call: { type: 'generate', model: '', prompt: 'hi' }, priority: 11, route, submitted_at: 1 })).toThrow(
      /invalid infer job payload: .*call\.model.*priority/,
    );
    expect(() => checkPayload('gate', { workflow: '' })).toThrow(/invalid gate job payload/);
  });
});
