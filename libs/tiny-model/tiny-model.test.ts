// The toy model: its rule, its file, and that real llama.cpp decodes it exactly as the rule predicts.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  TINY_CHAT_REPLY,
  TINY_DIMS,
  TINY_MODEL_NAME,
  chatMLPrompt,
  countTinyTokens,
  encodeGguf,
  expectedGreedyContinuation,
  expectedGreedyOutput,
  nextTinyChar,
  tinyModelGguf,
  writeTinyModel,
} from './index.js';

describe('the successor rule', () => {
  it.each([
    ['a', 'b'],
    ['y', 'z'],
    ['z', null],
    ['A', 'B'],
    ['Z', null],
    ['0', '1'],
    ['9', '0'],
    ['\n', 'a'],
    [' ', null],
    ['!', null],
    ['é', null],
    ['', null],
  ])('%j → %j', (c, next) => {
    expect(nextTinyChar(c)).toBe(next);
  });

  it('predicts whole outputs and why they end', () => {
    expect(expectedGreedyOutput('Hello w')).toEqual({ text: 'xyz', done_reason: 'stop' });
    expect(expectedGreedyOutput('count: 7', 5)).toEqual({ text: '89012', done_reason: 'length' });
    expect(expectedGreedyOutput('x', 2)).toEqual({ text: 'yz', done_reason: 'length' });
    expect(expectedGreedyOutput('ends with a space ')).toEqual({ text: '', done_reason: 'stop' });
    expect(expectedGreedyContinuation('W')).toBe('XYZ');
    expect(TINY_CHAT_REPLY).toBe('abcdefghijklmnopqrstuvwxyz');
  });

  it('counts tokens the way the toy tokenizer splits text', () => {
    expect(countTinyTokens('Hi there')).toBe(8);
    expect(countTinyTokens('a\nb')).toBe(3);
    expect(countTinyTokens('é')).toBe(2);
    const prompt = chatMLPrompt([{ role: 'user', content: 'Hi' }]);
    expect(prompt).toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
    expect(countTinyTokens(prompt, { special: true })).toBe(1 + 4 + 1 + 2 + 1 + 1 + 1 + 9 + 1);
  });
});

describe('the GGUF file', () => {
  it('is deterministic, small, and a GGUF v3', () => {
    const a = encodeGguf(tinyModelGguf());
    const b = encodeGguf(tinyModelGguf());
    expect(a.equals(b)).toBe(true);
    expect(a.length).toBeLessThan(5 * 1024 * 1024);
    expect(a.subarray(0, 4).toString('ascii')).toBe('GGUF');
    expect(a.readUInt32LE(4)).toBe(3);
  });

  it('refuses a tensor whose data does not match its dims', () => {
    expect(() => encodeGguf({ metadata: [], tensors: [{ name: 't', dims: [2, 2], data: new Float32Array(3) }] })).toThrow(/hold 4 values/);
  });
});

describe('decoded by real llama.cpp', () => {
  let dir: string;
  let path: string;
  let nlc: typeof import('node-llama-cpp');
  let llama: import('node-llama-cpp').Llama;
  let model: import('node-llama-cpp').LlamaModel;
  let context: import('node-llama-cpp').LlamaContext;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tiny-model-'));
    path = (await writeTinyModel(join(dir, `${TINY_MODEL_NAME}.gguf`))).path;
    nlc = await import('node-llama-cpp');
    llama = await nlc.getLlama({ gpu: false, build: 'never', maxThreads: 1 });
    model = await llama.loadModel({ modelPath: path });
    context = await model.createContext({ contextSize: 512, threads: 1 });
  });
  afterAll(async () => {
    await model?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('reads back the metadata an independent parser expects', async () => {
    const info = await nlc.readGgufFileInfo(path, { logWarnings: false });
    expect(info.metadata.general.architecture).toBe('llama');
    expect(info.metadata.general.name).toBe(TINY_MODEL_NAME);
    expect(info.architectureMetadata.embedding_length).toBe(TINY_DIMS.embedding_length);
    expect(info.architectureMetadata.block_count).toBe(TINY_DIMS.block_count);
    expect(info.metadata.tokenizer.chat_template).toContain('<|im_start|>');
    expect((await readFile(path)).length).toBe((await writeTinyModel(join(dir, 'again.gguf'))).bytes);
  });

  it.each(['Hello w', 'ABC', 'count 0', 'alpha\n', 'z', 'x y', 'café'])('greedy completion of %j follows the rule', async (prompt) => {
    const completion = new nlc.LlamaCompletion({ contextSequence: context.getSequence(), autoDisposeSequence: true });
    try {
      const res = await completion.generateCompletionWithMeta(prompt, { maxTokens: 40, temperature: 0 });
      const expected = expectedGreedyOutput(prompt, 40);
      expect(res.response).toBe(expected.text);
      expect(res.metadata.stopReason).toBe(expected.done_reason === 'stop' ? 'eogToken' : 'maxTokens');
    } finally {
      completion.dispose();
    }
  });

  it('answers any chat with the alphabet through its ChatML template', async () => {
    const chat = new nlc.LlamaChat({ contextSequence: context.getSequence(), autoDisposeSequence: true });
    try {
      expect(chat.chatWrapper.wrapperName).toBe('ChatML');
      const res = await chat.generateResponse([{ type: 'user', text: 'Say something' }, { type: 'model', response: [] }], { temperature: 0 });
      expect(res.response).toBe(TINY_CHAT_REPLY);
    } finally {
      chat.dispose();
    }
  });

  it('produces 64-wide embeddings that depend on the text', async () => {
    const embedding = await model.createEmbeddingContext({ contextSize: 512, threads: 1 });
    try {
      const a = await embedding.getEmbeddingFor('hello');
      const b = await embedding.getEmbeddingFor('hello world');
      expect(a.vector).toHaveLength(64);
      expect(a.calculateCosineSimilarity(b)).toBeLessThan(0.99);
    } finally {
      await embedding.dispose();
    }
  });
});
