// The session affinity key: explicit ids, a chat's opening messages, and no key for single-turn calls.
import { describe, expect, it } from 'vitest';
import type { InferenceCall } from '../core/index.js';
import { sessionKeyOf } from './submit.js';

const chat = (model: string, ...messages: [string, string][]): InferenceCall => ({ type: 'chat', model, messages: messages.map(([role, content]) => ({ role, content })) }) as InferenceCall;

describe('sessionKeyOf', () => {
  it('hashes an explicit session id (the same id, the same key, whatever the call)', () => {
    const a = sessionKeyOf({ type: 'generate', model: 'm', prompt: 'x' } as InferenceCall, 'conv-1');
    expect(a).toMatch(/^[0-9a-f]{32}$/);
    expect(sessionKeyOf(chat('other', ['user', 'hi']), 'conv-1')).toBe(a);
    expect(sessionKeyOf(chat('m', ['user', 'hi']), 'conv-2')).not.toBe(a);
  });

  it('derives one key for every later turn of a conversation from its opening messages and model', () => {
    const t2 = chat('llama3', ['system', 'be terse'], ['user', 'hi'], ['assistant', 'hello'], ['user', 'more']);
    const t3 = chat('llama3:latest', ['system', 'be terse'], ['user', 'hi'], ['assistant', 'hello'], ['user', 'more'], ['assistant', 'ok'], ['user', 'again']);
    expect(sessionKeyOf(t2, undefined)).toBeDefined();
    expect(sessionKeyOf(t3, undefined)).toBe(sessionKeyOf(t2, undefined));
    // Another conversation (other opening user message) or model: another key.
    expect(sessionKeyOf(chat('llama3', ['system', 'be terse'], ['user', 'yo'], ['assistant', 'hello'], ['user', 'more']), undefined)).not.toBe(sessionKeyOf(t2, undefined));
    expect(sessionKeyOf(chat('qwen3', ['system', 'be terse'], ['user', 'hi'], ['assistant', 'hello'], ['user', 'more']), undefined)).not.toBe(sessionKeyOf(t2, undefined));
  });

  it('gives a single-turn call no key (a shared system prompt alone must not pin an app to one node)', () => {
    expect(sessionKeyOf(chat('m', ['system', 'be terse'], ['user', 'hi']), undefined)).toBeUndefined();
    expect(sessionKeyOf({ type: 'generate', model: 'm', prompt: 'x' } as InferenceCall, undefined)).toBeUndefined();
  });
});
