// Capability checks at submit, by table: a request is refused only when every node that has the model says no.
import { describe, expect, it } from 'vitest';
import type { InferenceCall, ModelCapability, NodeRecord } from '../core/index.js';
import { checkCapabilities, requiredCapabilities } from './capabilities.js';

const node = (id: string, caps: ModelCapability[] | undefined): NodeRecord =>
  ({ id, models_available: [{ name: 'm:latest', size_mb: 1, need_mb: 1, ...(caps ? { capabilities: caps } : {}) }] }) as unknown as NodeRecord;

const chatWithImage: InferenceCall = { type: 'chat', model: 'm', messages: [{ role: 'user', content: 'what is this', images: ['aGk='] }] };
const chatWithTools: InferenceCall = { type: 'chat', model: 'm', messages: [{ role: 'user', content: 'weather?' }], tools: [{ type: 'function', function: { name: 'w' } }] };

describe('requiredCapabilities', () => {
  it.each([
    [{ type: 'generate', model: 'm', prompt: 'x' } as InferenceCall, []],
    [{ type: 'generate', model: 'm', prompt: 'x', images: ['a'], think: true, suffix: 'y' } as InferenceCall, ['vision', 'thinking', 'insert']],
    [chatWithImage, ['vision']],
    [chatWithTools, ['tools']],
    [{ type: 'embed', model: 'm', input: 'x' } as InferenceCall, []],
  ])('%j needs %j', (call, caps) => expect(requiredCapabilities(call)).toEqual(caps));
});

describe('checkCapabilities', () => {
  it('refuses images when every node that has the model is text-only, naming the model and what it can do', () => {
    expect(() => checkCapabilities(chatWithImage, [node('a', ['completion']), node('b', ['completion', 'tools'])])).toThrow(/model "m" does not support images \(vision\) on any node that has it \(a: completion; b: completion, tools\)/);
  });
  it('lets the request through when one node can, or when a node does not say', () => {
    expect(() => checkCapabilities(chatWithImage, [node('a', ['completion']), node('b', ['completion', 'vision'])])).not.toThrow();
    expect(() => checkCapabilities(chatWithTools, [node('a', ['completion']), node('b', undefined)])).not.toThrow();
    expect(() => checkCapabilities(chatWithTools, [])).not.toThrow();
  });
});
