// The OpenAPI document: valid OpenAPI 3.1 in structure (every operation answers something, every $ref resolves, ajv
// compiles every schema), every Hydra-native route of the app is in it, it is served without a key at /openapi.json
// with its reference page at /docs/api (self-contained, also in headless Chromium), and the drift check catches drift.
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../apps/api/app.js';
import { surfaceOf } from '../apps/api/errors.js';
import { openApiDocument } from '../apps/api/openapi/document.js';
import { OPERATIONS } from '../apps/api/openapi/operations.js';
import { parseJobRequest } from '../libs/core/index.js';
import { DistributeRequestSchema, OrchestrateRequestSchema, WorkflowRequestSchema } from '../libs/workflows/index.js';
import { hasChromium, launchChromium, NO_CHROMIUM, openPage, screenshot } from './support/browser.js';
import { startCluster, type TestCluster } from './support/cluster.js';
import { OpenApiCheck, openApiCheck } from './support/openapi-check.js';

type Json = Record<string, any>;
const KEY = 'openapi-key-0123456789abcdef';
const bearer = { authorization: `Bearer ${KEY}` };
const METHODS = ['get', 'post', 'put', 'delete', 'patch'];

/** Every route an express app (and the routers it mounts without a path) answers: [method, path] with {param}s. */
function routesOf(stack: Json[]): [string, string][] {
  const out: [string, string][] = [];
  for (const layer of stack) {
    if (layer.route) {
      const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
      for (const p of paths) for (const m of Object.keys(layer.route.methods)) out.push([m, String(p).replace(/:(\w+)/g, '{$1}')]);
    } else if (Array.isArray(layer.handle?.stack) && layer.slash === true) {
      // A router mounted without a path (app.use(router)); ones under a path (Bull Board, the dashboard) are pages.
      out.push(...routesOf(layer.handle.stack));
    }
  }
  return out;
}

/** Every $ref string in a document. */
function refsIn(v: unknown, out: string[] = []): string[] {
  if (Array.isArray(v)) v.forEach((x) => refsIn(x, out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) k === '$ref' && typeof x === 'string' ? out.push(x) : refsIn(x, out);
  return out;
}

const resolve = (doc: Json, ref: string): unknown => ref.slice(2).split('/').reduce<any>((o, k) => (o === undefined ? undefined : o[k.replace(/~1/g, '/').replace(/~0/g, '~')]), doc);

describe('the OpenAPI document', () => {
  const doc = openApiDocument() as Json;
  const check = new OpenApiCheck(doc);

  it('is OpenAPI 3.1 in structure: operations with ids and responses, path parameters declared, bearer security', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.title).toBe('Hydra API');
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    const ids = new Set<string>();
    for (const [path, item] of Object.entries(doc.paths as Json)) {
      expect(path.startsWith('/'), path).toBe(true);
      for (const [method, op] of Object.entries(item as Json)) {
        expect(METHODS, `${method} ${path}`).toContain(method);
        expect(ids.has(op.operationId), `duplicate operationId ${op.operationId}`).toBe(false);
        ids.add(op.operationId);
        expect(Object.keys(op.responses).length, `${method} ${path} has no responses`).toBeGreaterThan(0);
        for (const [status, r] of Object.entries(op.responses as Json)) {
          expect(status, `${method} ${path}`).toMatch(/^[1-5]\d\d$/);
          expect(typeof (r as Json).description, `${method} ${path} ${status}`).toBe('string');
        }
        // Each {param} of the path is a declared, required path parameter.
        const declared = (op.parameters ?? []).filter((p: Json) => p.in === 'path' && p.required).map((p: Json) => p.name);
        for (const m of path.matchAll(/\{(\w+)\}/g)) expect(declared, `${method} ${path}`).toContain(m[1]);
      }
    }
    expect(ids.size).toBe(OPERATIONS.length);
  });

  it('resolves every $ref and ajv (JSON Schema 2020-12) compiles every schema', () => {
    const refs = refsIn(doc);
    expect(refs.length).toBeGreaterThan(50);
    for (const r of new Set(refs)) expect(resolve(doc, r), r).toBeDefined();
    for (const [name, schema] of Object.entries(doc.components.schemas as Json)) expect(() => check.compile(schema, `component ${name}`), name).not.toThrow();
    for (const o of check.operations) {
      const media = [...Object.values(o.op.responses as Json).flatMap((r: Json) => Object.values(r.content ?? {})), ...Object.values(o.op.requestBody?.content ?? {})] as Json[];
      for (const m of media) expect(() => check.compile(m.schema, JSON.stringify(m.schema)), `${o.method} ${o.path}`).not.toThrow();
    }
  });

  it('gives request examples that the routes accept (zod) and that the document accepts (ajv)', () => {
    const parsers: Record<string, (b: unknown) => boolean> = {
      JobRequest: (b) => parseJobRequest(b).ok,
      WorkflowRequest: (b) => WorkflowRequestSchema.safeParse(b).success,
      DistributeRequest: (b) => DistributeRequestSchema.safeParse(b).success,
      OrchestrateRequest: (b) => OrchestrateRequestSchema.safeParse(b).success,
    };
    for (const o of OPERATIONS.filter((x) => x.body)) {
      const { schema, example } = o.body!;
      const v = check.compile({ $ref: `#/components/schemas/${schema}` }, `request ${schema}`);
      expect(v(example), `${o.path}: ${check.ajv.errorsText(v.errors)}`).toBe(true);
      if (parsers[schema]) expect(parsers[schema](example), o.path).toBe(true);
    }
    // The request schemas are the routes' own: an unknown field is refused by both.
    const job = check.compile({ $ref: '#/components/schemas/JobRequest' }, 'request JobRequest');
    expect(job({ type: 'generate', model: 'm', prompt: 'p', priorty: 3 })).toBe(false);
    expect(job({ type: 'generate', model: 'm', prompt: 'p', callback_url: 'https://example.com/hook' })).toBe(true);
  });

  it('the drift check refuses an undocumented status, a wrong body, an undocumented route; skips other surfaces', () => {
    const err = { error: { code: 'not_found', message: 'no job with id x', retryable: false } };
    expect(() => check.check('GET', '/v1/jobs/x', 404, 'application/json; charset=utf-8', err)).not.toThrow();
    expect(() => check.check('GET', '/v1/jobs/x', 418, 'application/json', err)).toThrow(/status 418 is not documented for GET \/v1\/jobs\/\{id\}/);
    expect(() => check.check('GET', '/v1/jobs/x', 404, 'application/json', { error: { code: 'nope', message: 'x', retryable: false } })).toThrow(/error\/code must be equal to one of the allowed values/);
    expect(() => check.check('GET', '/v1/nodes', 200, 'application/json', { nodes: [], extra: 1 })).toThrow(/must NOT have additional properties/);
    expect(() => check.check('GET', '/v1/nodes', 200, 'text/plain', 'x')).toThrow(/content type text\/plain is not documented/);
    expect(() => check.check('GET', '/v1/secret-new-route', 200, 'application/json', {})).toThrow(/not in the OpenAPI document/);
    expect(() => check.check('GET', '/v1/secret-new-route', 404, 'application/json', { error: { code: 'not_found', message: 'no route GET /v1/secret-new-route', retryable: false } })).not.toThrow();
    expect(() => check.check('POST', '/v1/chat/completions', 200, 'application/json', { anything: true })).not.toThrow();
    expect(() => check.check('POST', '/api/generate', 200, 'application/json', { anything: true })).not.toThrow();
    expect(() => check.check('GET', '/v1/jobs?limit=5', 200, 'application/json', { jobs: [] })).not.toThrow();
  });
});

describe('/openapi.json and /docs/api on a running cluster', () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({ API_KEYS: KEY });
    await c.simWorker('n1', { vramGb: 16, models: [{ name: 'qwen3:4b', sizeGb: 2.5 }], tokensPerSecond: 2000, loadMsPerGb: 0 });
  });
  afterAll(async () => c?.stop());

  it('documents every Hydra-native route the app serves, and only those', () => {
    const app = buildApp(c.ctx) as unknown as { router: { stack: Json[] } };
    const served = routesOf(app.router.stack).filter(([, p]) => !p.startsWith('/api') && p !== '/' && (!p.startsWith('/v1/') || surfaceOf(p) === 'hydra'));
    const documented = openApiCheck().operations.map((o) => `${o.method} ${o.path}`).sort();
    expect(served.map(([m, p]) => `${m} ${p}`).sort()).toEqual(documented);
  });

  it('serves the document without a key, while /v1 still needs one', async () => {
    const r = await c.get('/openapi.json');
    expect(r.status).toBe(200);
    expect(r.body).toEqual(JSON.parse(JSON.stringify(openApiDocument())));
    expect((await c.get('/v1/nodes')).status).toBe(401);
    expect((await c.get('/v1/nodes', bearer)).status).toBe(200);
  });

  it('real answers pass the drift check (it runs inside every cluster.get/post/del)', async () => {
    const done = await c.post('/v1/jobs', { type: 'generate', model: 'qwen3:4b', prompt: 'hi', wait: true }, bearer);
    expect(done.status).toBe(200);
    expect((await c.get(`/v1/jobs/${done.body.id}`, bearer)).status).toBe(200);
    expect((await c.post('/v1/jobs', { type: 'generate', model: 'qwen3:4b', prompt: 'hi' }, bearer)).status).toBe(202);
    expect((await c.post('/v1/jobs', { type: 'generate', model: 'qwen3:4b', prompt: 'hi', priorty: 1 }, bearer)).status).toBe(400);
    expect((await c.post('/v1/jobs', { type: 'generate', model: 'qwen3:4b', prompt: 'hi', min_vram_gb: 900 }, bearer)).status).toBe(422);
    expect((await c.get('/v1/cluster/stats', bearer)).status).toBe(200);
    expect((await c.get('/v1/jobs?limit=5', bearer)).status).toBe(200);
    expect((await c.get('/livez')).status).toBe(200);
    expect((await c.get('/readyz')).status).toBe(200);
    expect((await c.get('/v1/workflows/nope', bearer)).status).toBe(404);
    // The shared checker is the one the harness uses: it holds the compiled validators of what was just checked.
    expect(openApiCheck().operations.length).toBe(OPERATIONS.length);
  });

  it('fails the request that drifts: the harness throws with the path, the status and why', async () => {
    const op = openApiCheck().find('get', '/v1/nodes')!.op;
    const saved = op.responses['200'];
    delete op.responses['200'];
    try {
      await expect(c.get('/v1/nodes', bearer)).rejects.toThrow(/OpenAPI drift: GET \/v1\/nodes → 200: status 200 is not documented/);
    } finally {
      op.responses['200'] = saved;
    }
    // The server-side watch saw the same answer; the check passes again now that the document is whole.
    expect((await c.get('/v1/nodes', bearer)).status).toBe(200);
  });

  it('serves a self-contained reference page naming every operation and schema', async () => {
    const r = await fetch(`${c.url}/docs/api`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await r.text();
    for (const o of OPERATIONS) expect(html, o.path).toContain(`<code>${o.path}</code>`);
    for (const name of Object.keys((openApiDocument() as Json).components.schemas)) expect(html).toContain(`id="schema-${name}"`);
    // Nothing loaded from elsewhere: no scripts, no external stylesheets, fonts or images.
    expect(html).not.toMatch(/<script|<link(?![^>]*href="data:)|@import|url\(|src="http/i);
  });

  it.skipIf(!hasChromium)(hasChromium ? 'renders in headless Chromium without errors or outside requests' : `renders in headless Chromium — ${NO_CHROMIUM}`, async () => {
    let browser: Browser | undefined;
    try {
      browser = await launchChromium();
      const w = await openPage(browser);
      const requested: string[] = [];
      w.page.on('request', (q) => requested.push(q.url()));
      const loaded = await w.page.goto(`${c.url}/docs/api`);
      expect(loaded?.status()).toBe(200);
      expect(await w.page.title()).toMatch(/^Hydra API/);
      expect(await w.page.locator('section.op').count()).toBe(OPERATIONS.length);
      // The table of contents links land on their operation; the schema links on their schema.
      await w.page.click('nav a[href="#op-submitJob"]');
      expect(await w.page.locator('#op-submitJob h3').innerText()).toContain('/v1/jobs');
      expect(await w.page.locator('#op-submitJob a[href="#schema-JobRequest"]').count()).toBeGreaterThan(0);
      expect(await w.page.locator('#schema-JobView td code', { hasText: 'routing_decision' }).count()).toBe(1);
      await screenshot(w.page, 'openapi-reference');
      expect(requested.every((u) => u.startsWith(c.url) || u.startsWith('data:')), requested.join(', ')).toBe(true);
      expect(w.errors).toEqual([]);
      await w.close();
    } finally {
      await browser?.close();
    }
  });
});
