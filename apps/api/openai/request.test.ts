// OpenAI bodies → Hydra job requests: field mapping, tool-call conversion and the refusals, by table.
import { describe, expect, it } from 'vitest';
import { chatJobRequest, completionJobRequest, parseChatCompletion, parseCompletion, parseEmbedding, toChatMessages } from './request.js';

const hints = { priority: 5 };
const user = { role: 'user', content: 'hi' };

function chat(body: Record<string, unknown>) {
  const p = parseChatCompletion({ model: 'm:1b', messages: [user], ...body });
  if (!p.ok) throw new Error(JSON.stringify(p.problems));
  const m = toChatMessages(p.value.messages);
  if (!m.ok) throw new Error(JSON.stringify(m.problems));
  return chatJobRequest(p.value, m.value, hints);
}

describe('chat completion bodies', () => {
  it.each([
    ['max_completion_tokens over max_tokens', { max_tokens: 9, max_completion_tokens: 4 }, { options: { num_predict: 4 } }],
    ['a stop string becomes a list', { stop: 'END', temperature: 0, seed: 7 }, { options: { stop: ['END'], temperature: 0, seed: 7 } }],
    ['penalties pass through', { frequency_penalty: 0.5, presence_penalty: -1 }, { options: { frequency_penalty: 0.5, presence_penalty: -1 } }],
    ['json_object is format json', { response_format: { type: 'json_object' } }, { format: 'json' }],
    ['json_schema is its schema', { response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object' } } } }, { format: { type: 'object' } }],
    ['reasoning_effort none turns thinking off', { reasoning_effort: 'none' }, { think: false }],
    ['reasoning_effort minimal is low', { reasoning_effort: 'minimal' }, { think: 'low' }],
    ['nulls are absent', { temperature: null, stop: null, response_format: null, n: null, logprobs: null }, {}],
  ])('%s', (_name, body, expected) => {
    const r = chat(body);
    expect(r).toMatchObject({ type: 'chat', model: 'm:1b', priority: 5, ...expected });
    if (Object.keys(expected).length === 0) expect(r).not.toHaveProperty('options');
  });

  it('drops the tools for tool_choice none and keeps them for auto', () => {
    const tools = [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }];
    expect(chat({ tools, tool_choice: 'none' })).not.toHaveProperty('tools');
    expect(chat({ tools, tool_choice: 'auto' })).toMatchObject({ tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }] });
  });

  it('turns JSON-string arguments into objects and names the tool of a tool result', () => {
    const r = chat({
      messages: [
        user,
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: [{ type: 'text', text: 'sunny' }] },
        { role: 'developer', content: 'be brief' },
      ],
    });
    expect(r.type === 'chat' && r.messages).toEqual([
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: '', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
      { role: 'tool', content: 'sunny', tool_call_id: 'call_1', tool_name: 'get_weather' },
      { role: 'system', content: 'be brief' },
    ]);
  });

  it('takes data: URL images as base64', () => {
    const r = chat({ messages: [{ role: 'user', content: [{ type: 'text', text: 'what is it' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,QUJD' } }] }] });
    expect(r.type === 'chat' && r.messages[0]).toEqual({ role: 'user', content: 'what is it', images: ['QUJD'] });
  });

  it.each([
    [{ n: 3 }, 'n'],
    [{ logprobs: true }, 'logprobs'],
    [{ top_logprobs: 1 }, 'top_logprobs'],
    [{ logit_bias: { '50256': -100 } }, 'logit_bias'],
    [{ functions: [{ name: 'f' }] }, 'functions'],
    [{ modalities: ['text', 'audio'] }, 'modalities'],
    [{ tools: [{ type: 'function', function: { name: 'f' } }], tool_choice: { type: 'function', function: { name: 'f' } } }, 'tool_choice'],
    [{ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://x/y.png' } }] }] }, 'messages[0].content[0].image_url.url'],
    [{ messages: [{ role: 'function', content: 'x' }] }, 'messages.0.role'],
    [{ top_p: 2 }, 'top_p'],
  ])('refuses %j naming %s', (body, field) => {
    const p = parseChatCompletion({ model: 'm:1b', messages: [user], ...body });
    expect(p.ok).toBe(false);
    if (!p.ok) expect(p.problems[0]?.field).toBe(field);
  });

  it('refuses tool arguments that are not a JSON object', () => {
    const p = parseChatCompletion({ model: 'm', messages: [{ role: 'assistant', content: '', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '[1' } }] }] });
    if (!p.ok) throw new Error('should parse');
    const m = toChatMessages(p.value.messages);
    expect(m.ok === false && m.problems[0]?.field).toBe('messages[0].tool_calls[0].function.arguments');
  });
});

describe('legacy completion and embedding bodies', () => {
  it('takes a one-string prompt array and a suffix', () => {
    const p = parseCompletion({ model: 'm', prompt: ['def f():'], suffix: '\n', max_tokens: 8 });
    if (!p.ok) throw new Error(JSON.stringify(p.problems));
    expect(completionJobRequest(p.value, hints)).toMatchObject({ type: 'generate', prompt: 'def f():', suffix: '\n', options: { num_predict: 8 } });
  });

  it.each([
    [{ prompt: [1, 2, 3] }, 'prompt'],
    [{ prompt: ['a', 'b'] }, 'prompt'],
    [{ prompt: 'x', echo: true }, 'echo'],
    [{ prompt: 'x', best_of: 2 }, 'best_of'],
    [{ prompt: 'x', logprobs: 2 }, 'logprobs'],
  ])('refuses %j naming %s', (body, field) => {
    const p = parseCompletion({ model: 'm', ...body });
    expect(p.ok === false && p.problems[0]?.field).toBe(field);
  });

  it('refuses token-id embedding inputs and unknown encodings', () => {
    expect(parseEmbedding({ model: 'm', input: [[1, 2]] })).toMatchObject({ ok: false, problems: [{ field: 'input' }] });
    expect(parseEmbedding({ model: 'm', input: 'x', encoding_format: 'int8' })).toMatchObject({ ok: false, problems: [{ field: 'encoding_format' }] });
    expect(parseEmbedding({ model: 'm', input: ['a', 'b'], encoding_format: 'base64' }).ok).toBe(true);
  });
});
