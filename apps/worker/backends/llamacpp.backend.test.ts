// The llamacpp backend against real llama.cpp: the toy model's exact greedy text, streaming, cancel, options, broken files, an Ollama store.
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HydraError, type ChatMessage } from '../../../libs/core/index.js';
import { createLogger } from '../../../libs/logger/index.js';
import {
  TINY_CHAT_REPLY,
  TINY_MODEL_NAME,
  chatMLPrompt,
  countTinyTokens,
  expectedGreedyOutput,
  writeTinyModel,
} from '../../../libs/tiny-model/index.js';
import type { CallHooks, InferenceBackend } from './backend.js';
import { createLlamaCppBackend, type LlamaCppBackendOptions } from './llamacpp.backend.js';

/** A pino logger whose lines the test can read. */
function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: createLogger({ name: 'llamacpp-test', level: 'debug', destination }), lines };
}

/** Hooks that record streamed text; `abortAfter` aborts once that many pieces arrived. */
function hooks(opts: { abortAfter?: number; signal?: AbortSignal } = {}) {
  const ac = new AbortController();
  const pieces: string[] = [];
  const h: CallHooks = {
    signal: opts.signal ?? ac.signal,
    onToken: (t) => {
      pieces.push(t);
      if (opts.abortAfter !== undefined && pieces.length === opts.abortAfter) ac.abort(new Error('user cancelled'));
    },
  };
  return { hooks: h, pieces, text: () => pieces.join('') };
}

async function rejection(p: Promise<unknown>): Promise<HydraError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(HydraError);
  return e as HydraError;
}

let root: string;
let modelsDir: string;
let tinyPath: string;
let backend: InferenceBackend;
let captured: ReturnType<typeof capturingLogger>;
const greedy = { temperature: 0 };

async function backendWith(extra: Partial<LlamaCppBackendOptions> = {}): Promise<InferenceBackend> {
  return createLlamaCppBackend({ threads: 1, contextSize: 512, ollamaModelsDir: false, logger: capturingLogger().logger, ...extra });
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'llamacpp-backend-'));
  modelsDir = join(root, 'models');
  tinyPath = (await writeTinyModel(join(modelsDir, `${TINY_MODEL_NAME}.gguf`))).path;
  const bytes = await readFile(tinyPath);
  await writeFile(join(modelsDir, 'broken-truncated.gguf'), bytes.subarray(0, Math.floor(bytes.length * 0.6)));
  await writeTinyModel(join(modelsDir, 'broken-shape.gguf'), { wrongShape: true });
  await writeFile(join(modelsDir, 'not-a-model.gguf'), 'this is a text file, not GGUF\n');
  captured = capturingLogger();
  // ollamaModelsDir false: a developer's own ~/.ollama/models must not leak into the assertions.
  backend = await createLlamaCppBackend({ modelsDir, ollamaModelsDir: false, threads: 1, contextSize: 512, logger: captured.logger });
});

afterAll(async () => {
  await backend?.close();
  await rm(root, { recursive: true, force: true });
});

describe('probe', () => {
  it('lists readable models with GGUF facts, without loading them, and leaves out unreadable files with a logged reason', async () => {
    const p = await backend.probe();
    expect(p.healthy).toBe(true);
    expect(backend.kind).toBe('llamacpp');
    expect(backend.url).toBe(`llamacpp://${modelsDir}`);
    expect(p.version).toMatch(/node-llama-cpp 3\.\d+\.\d+ \(llama\.cpp /);
    const tiny = p.models_available.find((m) => m.name === TINY_MODEL_NAME);
    expect(tiny).toMatchObject({
      size_bytes: (await stat(tinyPath)).size,
      family: 'llama',
      quantization: 'F32',
      embedding_length: 64,
      arch: { block_count: 2, head_count: 4, head_count_kv: 4, embedding_length: 64, context_length: 4096 },
    });
    // The memory estimate's inputs: the vocabulary (llama.vocab_size) and the KV cache type contexts really get.
    expect(tiny?.arch?.vocab_size).toBeGreaterThan(300);
    expect(p.kv_cache_type).toBe('f16');
    // What Ollama's /api/tags shows: the file's time and an identity digest (not epoch 0 and "").
    expect(tiny!.modified_at).toBe((await stat(tinyPath)).mtime.toISOString());
    expect(tiny!.digest).toMatch(/^[0-9a-f]{64}$/);
    // Wrong tensor shapes are only found by llama.cpp at load time; a header-only read cannot see them.
    expect(p.models_available.map((m) => m.name).sort()).toEqual(['broken-shape', TINY_MODEL_NAME]);
    expect(p.models_loaded).toEqual([]);
    // ChatML has node-llama-cpp's function-call syntax but no thought segments; never vision: images are refused at submit.
    expect(tiny?.capabilities).toEqual(['completion', 'tools']);
    expect(p.memory?.ram_total).toBeGreaterThan(0);
    const leftOut = captured.lines.filter((l) => l.msg === 'model file left out');
    expect(leftOut.map((l) => l.model).sort()).toEqual(['broken-truncated', 'not-a-model']);
    expect(leftOut.find((l) => l.model === 'broken-truncated')?.reason).toMatch(/file is truncated/);
    // Probes run every heartbeat: the same problem is logged once, and the answer stays the same.
    expect((await backend.probe()).models_available).toEqual(p.models_available);
    expect(captured.lines.filter((l) => l.msg === 'model file left out')).toHaveLength(2);
  });
});

describe('fit estimate', () => {
  it('reports the memory llama.cpp itself computes for the model and a context of NUM_CTX, which grows with the context', async () => {
    const nlc = await import('node-llama-cpp');
    const info = await nlc.readGgufFileInfo(tinyPath);
    const insights = await nlc.GgufInsights.from(info);
    const own = async (contextSize: number) => {
      const m = await insights.estimateModelResourceRequirementsV2({ gpuLayers: 0 });
      const c = await insights.estimateContextResourceRequirementsV2({ contextSize, modelGpuLayers: 0, sequences: 1 });
      return m.cpuRam + m.gpuVram + c.cpuRam + c.gpuVram;
    };
    const need = (await backend.probe()).models_available.find((m) => m.name === TINY_MODEL_NAME)?.need_bytes;
    expect(need).toBe(await own(512));
    const wide = await createLlamaCppBackend({ modelsDir, ollamaModelsDir: false, threads: 1, contextSize: 4096, logger: capturingLogger().logger });
    try {
      const wideNeed = (await wide.probe()).models_available.find((m) => m.name === TINY_MODEL_NAME)?.need_bytes;
      expect(wideNeed).toBe(await own(4096));
      expect(wideNeed).toBeGreaterThan(need!);
    } finally {
      await wide.close();
    }
  });
});

describe('generate', () => {
  it('completes the prompt with the exact greedy text, streaming every piece in order', async () => {
    const h = hooks();
    const out = await backend.generate({ type: 'generate', model: TINY_MODEL_NAME, prompt: 'Hello w', options: greedy }, h.hooks);
    expect(out.response).toBe('xyz');
    expect(expectedGreedyOutput('Hello w')).toEqual({ text: 'xyz', done_reason: 'stop' });
    expect(h.text()).toBe(out.response);
    expect(out).toMatchObject({ model: TINY_MODEL_NAME, done_reason: 'stop', completion_tokens: 3, prompt_tokens: 1 + countTinyTokens('Hello w') });
    expect(out.load_duration_ms).toBeGreaterThan(0);
    expect(out.total_duration_ms).toBeGreaterThanOrEqual(out.prompt_eval_duration_ms + out.eval_duration_ms);

    const loaded = (await backend.probe()).models_loaded;
    expect(loaded).toHaveLength(1);
    expect(loaded[0]).toMatchObject({ name: TINY_MODEL_NAME, vram_bytes: 0 });
    expect(loaded[0]?.size_bytes).toBeGreaterThan(500_000);
  });

  it('reuses the loaded model, accepts name:latest, and keeps the rule under Ollama default sampling', async () => {
    const h = hooks();
    const out = await backend.generate({ type: 'generate', model: `${TINY_MODEL_NAME}:latest`, prompt: 'The alphabet:\n' }, h.hooks);
    expect(out.response).toBe('abcdefghijklmnopqrstuvwxyz');
    expect(out.load_duration_ms).toBe(0);
    expect(h.pieces.length).toBeGreaterThan(1);
    expect(h.text()).toBe(out.response);
  });

  it('num_predict caps the reply (done_reason length); stop strings end it without the stop text', async () => {
    const capped = await backend.generate({ type: 'generate', model: TINY_MODEL_NAME, prompt: '0', options: { ...greedy, num_predict: 7 } }, hooks().hooks);
    expect(capped).toMatchObject({ response: '1234567', done_reason: 'length', completion_tokens: 7 });
    expect(expectedGreedyOutput('0', 7)).toEqual({ text: '1234567', done_reason: 'length' });

    const h = hooks();
    const stopped = await backend.generate({ type: 'generate', model: TINY_MODEL_NAME, prompt: '0', options: { ...greedy, num_predict: 30, stop: ['56'] } }, h.hooks);
    expect(stopped).toMatchObject({ response: '1234', done_reason: 'stop' });
    expect(h.text()).toBe('1234');
  });

  it('format (a JSON schema) constrains the output to matching JSON with a llama.cpp grammar', async () => {
    const format = { type: 'object', properties: { word: { type: 'string', enum: ['abc', 'xyz'] } }, required: ['word'] };
    const out = await backend.generate({ type: 'generate', model: TINY_MODEL_NAME, prompt: 'x', format, options: { ...greedy, num_predict: 60 } }, hooks().hooks);
    expect(out.done_reason).toBe('stop');
    expect(['abc', 'xyz']).toContain((JSON.parse(out.response ?? '') as { word: string }).word);
  });

  it('without num_predict an endless reply stops at a full context window (num_ctx)', async () => {
    const out = await backend.generate({ type: 'generate', model: TINY_MODEL_NAME, prompt: '0', options: { ...greedy, num_ctx: 256 } }, hooks().hooks);
    expect(out.done_reason).toBe('length');
    expect(out.prompt_tokens + out.completion_tokens).toBeGreaterThan(240);
    expect(out.prompt_tokens + out.completion_tokens).toBeLessThanOrEqual(256);
    expect(out.response).toBe(expectedGreedyOutput('0', out.completion_tokens).text);
  });

  it('refuses a prompt longer than the context with a message that says what to do', async () => {
    const e = await rejection(backend.generate({ type: 'generate', model: TINY_MODEL_NAME, prompt: 'a'.repeat(300), options: { num_ctx: 256 } }, hooks().hooks));
    expect(e.code).toBe('bad_request');
    expect(e.message).toMatch(/raise num_ctx/);
  });

  it('cancelling mid-way stops decoding: the call rejects promptly with cancelled and far fewer tokens than asked', async () => {
    const requested = 200_000;
    const h = hooks({ abortAfter: 20 });
    const started = performance.now();
    const e = await rejection(backend.generate({ type: 'generate', model: TINY_MODEL_NAME, prompt: '0', options: { ...greedy, num_predict: requested } }, h.hooks));
    const ms = performance.now() - started;
    expect(e.code).toBe('cancelled');
    expect(e.retryable).toBe(false);
    expect(ms).toBeLessThan(2000); // 200k tokens at ~1.3k tokens/s would take minutes
    const atReject = h.pieces.length;
    expect(atReject).toBeLessThan(40);
    // The model's one sequence is free again (a new call completes) and the cancelled decode produced nothing more.
    const next = await backend.generate({ type: 'generate', model: TINY_MODEL_NAME, prompt: 'u', options: greedy }, hooks().hooks);
    expect(next.response).toBe('vwxyz');
    expect(h.pieces.length).toBe(atReject);
  });

  it('a call whose signal is already aborted is cancelled before any work', async () => {
    const e = await rejection(backend.generate({ type: 'generate', model: TINY_MODEL_NAME, prompt: 'a' }, hooks({ signal: AbortSignal.abort() }).hooks));
    expect(e.code).toBe('cancelled');
  });

  it('serves concurrent calls to one model one after the other, each with its own exact text', async () => {
    const prompts = ['q', 'K', '5', 'w'];
    const outs = await Promise.all(
      prompts.map((prompt) => backend.generate({ type: 'generate', model: TINY_MODEL_NAME, prompt, options: { ...greedy, num_predict: 8 } }, hooks().hooks)),
    );
    expect(outs.map((o) => o.response)).toEqual(prompts.map((p) => expectedGreedyOutput(p, 8).text));
  });

  it('an unknown model is model_not_found and names what the node has', async () => {
    const e = await rejection(backend.generate({ type: 'generate', model: 'llama3:8b', prompt: 'hi' }, hooks().hooks));
    expect(e.code).toBe('model_not_found');
    expect(e.message).toContain(TINY_MODEL_NAME);
  });
});

describe('chat', () => {
  const conversation: ChatMessage[] = [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: 'Hello.' },
    { role: 'user', content: 'Recite something.' },
  ];

  it('renders the history (system included) through the model ChatML template and answers with the exact greedy text', async () => {
    const h = hooks();
    const out = await backend.chat({ type: 'chat', model: TINY_MODEL_NAME, messages: conversation, options: greedy }, h.hooks);
    expect(out.message).toEqual({ role: 'assistant', content: TINY_CHAT_REPLY });
    expect(TINY_CHAT_REPLY).toBe('abcdefghijklmnopqrstuvwxyz');
    expect(h.text()).toBe(TINY_CHAT_REPLY);
    expect(out.done_reason).toBe('stop');
    expect(out.completion_tokens).toBe(26);
    // BOS + the ChatML rendering of every message: proves system and history reached the model.
    expect(out.prompt_tokens).toBe(1 + countTinyTokens(chatMLPrompt(conversation), { special: true }));
  });

  it('continues a trailing assistant message (prefill)', async () => {
    const out = await backend.chat(
      { type: 'chat', model: TINY_MODEL_NAME, messages: [{ role: 'user', content: 'Go on' }, { role: 'assistant', content: 'abc' }], options: greedy },
      hooks().hooks,
    );
    expect(out.message?.content).toBe('defghijklmnopqrstuvwxyz');
  });

  it('num_predict caps a chat reply', async () => {
    const out = await backend.chat({ type: 'chat', model: TINY_MODEL_NAME, messages: [{ role: 'user', content: 'x' }], options: { ...greedy, num_predict: 5 } }, hooks().hooks);
    expect(out).toMatchObject({ message: { role: 'assistant', content: 'abcde' }, done_reason: 'length', completion_tokens: 5 });
  });
});

describe('chat with tools, thinking, images', () => {
  const tools = [{ type: 'function' as const, function: { name: 'get_weather', description: 'weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
  // The function documentation node-llama-cpp puts in the system prompt is ~1k characters: one token each for the toy model.
  const wide = { ...greedy, num_ctx: 4096 };

  it('offers tools through function calling; the toy model spells the alphabet instead of calling one, and says so honestly', async () => {
    const out = await backend.chat({ type: 'chat', model: TINY_MODEL_NAME, messages: [{ role: 'user', content: 'weather in Paris?' }], tools, options: wide }, hooks().hooks);
    expect(out.message).toEqual({ role: 'assistant', content: TINY_CHAT_REPLY });
    expect(out.done_reason).toBe('stop');
    // The tool documentation reached the prompt.
    expect(out.prompt_tokens).toBeGreaterThan(countTinyTokens(chatMLPrompt([{ role: 'user', content: 'weather in Paris?' }]), { special: true }) + 200);
  });

  it('replays an earlier tool call and its result in the model turn, then continues the answer', async () => {
    const messages: ChatMessage[] = [
      { role: 'user', content: 'weather in Paris?' },
      { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
      { role: 'tool', content: '21 C', tool_name: 'get_weather' },
    ];
    const out = await backend.chat({ type: 'chat', model: TINY_MODEL_NAME, messages, tools, options: wide }, hooks().hooks);
    expect(out.message?.tool_calls).toBeUndefined();
    expect(typeof out.message?.content).toBe('string');
  });

  it('refuses tool definitions that do not fit the context, images, and format with tools, as bad_request', async () => {
    const small = await rejection(backend.chat({ type: 'chat', model: TINY_MODEL_NAME, messages: [{ role: 'user', content: 'x' }], tools, options: { ...greedy, num_ctx: 256 } }, hooks().hooks));
    expect(small.code).toBe('bad_request');
    expect(small.message).toMatch(/tool definitions do not fit the context of 256 tokens: raise num_ctx/);
    const img = await rejection(backend.chat({ type: 'chat', model: TINY_MODEL_NAME, messages: [{ role: 'user', content: 'x', images: ['aW1n'] }] }, hooks().hooks));
    expect(img.code).toBe('bad_request');
    expect(img.message).toMatch(/images: llama\.cpp nodes take no images/);
    const both = await rejection(backend.chat({ type: 'chat', model: TINY_MODEL_NAME, messages: [{ role: 'user', content: 'x' }], tools, format: 'json' }, hooks().hooks));
    expect(both.message).toMatch(/format/);
    const fim = await rejection(backend.generate({ type: 'generate', model: TINY_MODEL_NAME, prompt: 'a', suffix: 'z' }, hooks().hooks));
    expect(fim.message).toMatch(/suffix/);
  });

  it('ignores think on a template without thought segments: the same exact reply, no thinking', async () => {
    const thoughts: string[] = [];
    const h = hooks();
    const out = await backend.chat({ type: 'chat', model: TINY_MODEL_NAME, messages: [{ role: 'user', content: 'x' }], think: true, options: greedy }, { ...h.hooks, onThinking: (t) => thoughts.push(t) });
    expect(out.message).toEqual({ role: 'assistant', content: TINY_CHAT_REPLY });
    expect(thoughts).toEqual([]);
  });
});

describe('embed', () => {
  it('truncates an input longer than the context (Ollama default), or refuses it with truncate: false', async () => {
    const long = 'abcdefgh'.repeat(20);
    const out = await backend.embed({ type: 'embed', model: TINY_MODEL_NAME, input: long, options: { num_ctx: 64 } }, hooks().hooks);
    expect(out.embeddings?.[0]).toHaveLength(64);
    expect(out.prompt_tokens).toBe(64);
    const e = await rejection(backend.embed({ type: 'embed', model: TINY_MODEL_NAME, input: long, truncate: false, options: { num_ctx: 64 } }, hooks().hooks));
    expect(e.code).toBe('bad_request');
    expect(e.message).toMatch(/context holds 64/);
  });

  it('returns one unit-length vector of the model width (64) per input, different for different texts', async () => {
    const out = await backend.embed({ type: 'embed', model: TINY_MODEL_NAME, input: ['hello', 'hello world'] }, hooks().hooks);
    expect(out.embeddings).toHaveLength(2);
    const [a, b] = out.embeddings ?? [];
    expect(a).toHaveLength(64);
    expect(b).toHaveLength(64);
    expect(Math.hypot(...(a ?? []))).toBeCloseTo(1, 5);
    expect(a).not.toEqual(b);
    expect(out.prompt_tokens).toBeGreaterThanOrEqual(countTinyTokens('hello') + countTinyTokens('hello world'));
    expect(out.completion_tokens).toBe(0);
  });
});

describe('broken model files', () => {
  it.each([
    ['broken-truncated', /data is not within the file bounds/],
    ['broken-shape', /tensor 'blk\.0\.attn_q\.weight' has wrong shape; expected 64, 64, got 64, 32/],
  ])("%s fails as bad_model_file with llama.cpp's own reason, and the backend keeps serving", async (name, reason) => {
    const e = await rejection(backend.generate({ type: 'generate', model: name, prompt: 'a' }, hooks().hooks));
    expect(e.code).toBe('bad_model_file');
    expect(e.retryable).toBe(false);
    expect(e.message).toMatch(reason);
    expect(e.message).toContain(join(modelsDir, `${name}.gguf`));
    const ok = await backend.generate({ type: 'generate', model: TINY_MODEL_NAME, prompt: 'r', options: greedy }, hooks().hooks);
    expect(ok.response).toBe('stuvwxyz');
  });
});

describe('model lifecycle', () => {
  it('keeps at most maxLoadedModels loaded (LRU) and keep_alive 0 unloads after the call', async () => {
    const dir = join(root, 'lru');
    await mkdir(dir);
    await copyFile(tinyPath, join(dir, 'toy-a.gguf'));
    await copyFile(tinyPath, join(dir, 'toy-b.gguf'));
    const b = await backendWith({ modelsDir: dir, maxLoadedModels: 1 });
    try {
      await b.generate({ type: 'generate', model: 'toy-a', prompt: 'y', options: greedy }, hooks().hooks);
      expect((await b.probe()).models_loaded.map((m) => m.name)).toEqual(['toy-a']);
      const out = await b.generate({ type: 'generate', model: 'toy-b', prompt: 'y', options: greedy }, hooks().hooks);
      expect(out.response).toBe('z');
      expect((await b.probe()).models_loaded.map((m) => m.name)).toEqual(['toy-b']);
      await b.generate({ type: 'generate', model: 'toy-b', prompt: 'y', options: greedy, keep_alive: 0 }, hooks().hooks);
      expect((await b.probe()).models_loaded).toEqual([]);
      // The admin unload: now, by name; a model that is not loaded is already unloaded; an unknown one is not found.
      await b.generate({ type: 'generate', model: 'toy-a', prompt: 'y', options: greedy }, hooks().hooks);
      await b.unload!('toy-a:latest', { signal: new AbortController().signal });
      expect((await b.probe()).models_loaded).toEqual([]);
      await b.unload!('toy-a', { signal: new AbortController().signal });
      expect((await rejection(b.unload!('nope', { signal: new AbortController().signal }))).code).toBe('model_not_found');
      expect(b.pull).toBeUndefined();
      expect(b.delete).toBeUndefined();
    } finally {
      await b.close();
    }
  });
});

describe('Ollama model store', () => {
  it('serves blobs by Ollama names (model:tag, namespace/model:tag) and applies the params layer as defaults', async () => {
    const store = join(root, 'ollama');
    const bytes = await readFile(tinyPath);
    const blob = async (content: Buffer | string) => {
      const hex = createHash('sha256').update(content).digest('hex');
      await mkdir(join(store, 'blobs'), { recursive: true });
      await writeFile(join(store, 'blobs', `sha256-${hex}`), content);
      return { digest: `sha256:${hex}`, size: Buffer.byteLength(content) };
    };
    const weights = { mediaType: 'application/vnd.ollama.image.model', ...(await blob(bytes)) };
    const params = { mediaType: 'application/vnd.ollama.image.params', ...(await blob(JSON.stringify({ num_predict: 3, temperature: 0 }))) };
    const manifest = async (ns: string, model: string, tag: string, layers: unknown[]) => {
      const dir = join(store, 'manifests', 'registry.ollama.ai', ns, model);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, tag), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json', layers }));
    };
    await manifest('library', TINY_MODEL_NAME, 'latest', [weights]);
    await manifest('alice', 'toy', 'q8', [weights, params]);

    const b = await backendWith({ ollamaModelsDir: store });
    try {
      const p = await b.probe();
      expect(p.healthy).toBe(true);
      expect(p.models_available.map((m) => [m.name, m.size_bytes]).sort()).toEqual([
        ['alice/toy:q8', bytes.length],
        [`${TINY_MODEL_NAME}:latest`, bytes.length],
      ]);
      const plain = await b.generate({ type: 'generate', model: TINY_MODEL_NAME, prompt: 'm', options: greedy }, hooks().hooks);
      expect(plain.response).toBe('nopqrstuvwxyz');
      const tagged = await b.generate({ type: 'generate', model: 'alice/toy:q8', prompt: '0' }, hooks().hooks);
      expect(tagged).toMatchObject({ response: '123', done_reason: 'length' });
      // Both names point at one blob: it is loaded once.
      expect((await b.probe()).models_loaded).toHaveLength(1);
    } finally {
      await b.close();
    }
  });
});

describe('without node-llama-cpp', () => {
  it('refuses to start with an error that says to install it or pick another backend', async () => {
    const missing = 'node-llama-cpp-is-not-installed-here';
    const e = await rejection(createLlamaCppBackend({ logger: capturingLogger().logger, importNodeLlamaCpp: () => import(missing) as Promise<typeof import('node-llama-cpp')> }));
    expect(e.code).toBe('backend_unavailable');
    expect(e.message).toContain('npm install node-llama-cpp');
    expect(e.message).toMatch(/another BACKEND/);
  });
});
