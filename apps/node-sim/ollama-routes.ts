// Ollama's native model and embedding API on the simulated node: version, tags, ps, show, embed (field names from Ollama's docs/api.md).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { elapsedNs, type SimCore } from './sim-core.js';
import { SimHttpError, isRecord, parseRequest, readJsonBody, sendJson, type Route } from './sim-http.js';
import { parseKeepAlive } from './sim-memory.js';
import { modelDetails, modelDigest, showBody, tagsEntry } from './sim-models.js';

const SIM_VERSION = '0.12.0-simulated';
/** What /api/ps shows as `expires_at` for a model kept loaded for good (Ollama shows a far-future time too). */
const NEVER = '2318-01-01T00:00:00.000Z';
const KeepAliveField = z.union([z.string(), z.number()]).optional();
const OptionsField = z.object({ num_ctx: z.number().int().optional() }).loose().optional();

const EmbedBodySchema = z
  .object({
    model: z.string(),
    input: z.union([z.string(), z.array(z.string())]),
    dimensions: z.number().int().positive().optional(),
    keep_alive: KeepAliveField,
    options: OptionsField,
  })
  .loose();

const LegacyEmbeddingsBodySchema = z.object({ model: z.string(), prompt: z.string(), keep_alive: KeepAliveField, options: OptionsField }).loose();

export function ollamaRoutes(core: SimCore): Array<[string, Route]> {
  return [
    ['GET /', async (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('Ollama is running (simulated)');
    }],
    ['GET /api/version', async (_req, res) => sendJson(res, 200, { version: SIM_VERSION })],
    ['GET /api/tags', async (_req, res) => sendJson(res, 200, { models: core.catalog.list().map((i) => tagsEntry(i.spec, i.modifiedAt)) })],
    ['GET /api/ps', async (_req, res) => sendJson(res, 200, { models: psEntries(core) })],
    ['POST /api/show', async (req, res) => {
      const body = await readJsonBody(req);
      const name = isRecord(body) ? (typeof body.model === 'string' && body.model ? body.model : body.name) : undefined;
      if (typeof name !== 'string' || name === '') throw new SimHttpError(400, 'model is required');
      const m = core.model(name);
      sendJson(res, 200, showBody(m, core.catalog.modifiedAt(m)));
    }],
    ['POST /api/embed', (req, res) => embed(core, req, res)],
    ['POST /api/embeddings', (req, res) => legacyEmbeddings(core, req, res)],
  ];
}

function psEntries(core: SimCore): Array<Record<string, unknown>> {
  return core.memory.loaded().map((l) => {
    // A model deleted while busy stays loaded until its requests end: its spec comes from memory, not the catalog.
    const m = core.memory.specOf(l.name) ?? core.model(l.name);
    return {
      name: m.name,
      model: m.name,
      size: l.size_bytes,
      digest: modelDigest(m),
      details: modelDetails(m),
      expires_at: l.expires_at ?? NEVER,
      size_vram: l.size_vram,
      context_length: l.num_ctx,
    };
  });
}

async function embed(core: SimCore, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const b = parseRequest(EmbedBodySchema, await readJsonBody(req));
  const keepAliveMs = parseKeepAlive(b.keep_alive);
  const inputs = typeof b.input === 'string' ? [b.input] : b.input;
  const rc = core.open(res);
  await core.run(rc, 'ollama', async () => {
    const m = core.model(b.model);
    const out = await core.embed(rc, m, inputs, b.dimensions, keepAliveMs, b.options?.num_ctx);
    sendJson(res, 200, { model: m.name, embeddings: out.embeddings, total_duration: elapsedNs(rc), load_duration: out.loadNs, prompt_eval_count: out.promptTokens });
  });
}

async function legacyEmbeddings(core: SimCore, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const b = parseRequest(LegacyEmbeddingsBodySchema, await readJsonBody(req));
  const keepAliveMs = parseKeepAlive(b.keep_alive);
  const rc = core.open(res);
  await core.run(rc, 'ollama', async () => {
    const out = await core.embed(rc, core.model(b.model), [b.prompt], undefined, keepAliveMs, b.options?.num_ctx);
    sendJson(res, 200, { embedding: out.embeddings[0] ?? [] });
  });
}
