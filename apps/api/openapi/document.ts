// The OpenAPI 3.1 document of Hydra's own API, built from the zod schemas: request bodies from the ones the routes
// validate with (zod 4's z.toJSONSchema, io "input": defaults make fields optional), responses from responses.ts (io
// "output": objects closed with additionalProperties false, so a field a route adds undocumented fails the drift check).
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { CallbackUrlSchema, JobRequestSchema } from '../../../libs/core/index.js';
import { DistributeRequestSchema, OrchestrateRequestSchema, WorkflowRequestSchema } from '../../../libs/workflows/index.js';
import { SearchSchema } from '../routes/memory.route.js';
import { BODY_RESPONSES, GUARD_RESPONSES, OPERATIONS, type Body, type Operation } from './operations.js';
import * as R from './responses.js';

type Json = Record<string, unknown>;

/** Most requests one batch may hold (BATCH_MAX_REQUESTS' default; the route enforces the configured value). */
const BATCH_MAX = 1000;

const REQUESTS: Record<string, z.ZodType> = {
  JobRequest: JobRequestSchema,
  BatchRequest: z
    .strictObject({
      requests: z.array(JobRequestSchema).min(1).max(BATCH_MAX).describe('each what POST /v1/jobs takes, without `wait`, `memory` or `cache: "semantic"`; at most BATCH_MAX_REQUESTS (default 1000)'),
      callback_url: CallbackUrlSchema.optional().describe('POSTed the batch view when every job has ended'),
    })
    .describe('the body of POST /v1/batches'),
  WorkflowRequest: WorkflowRequestSchema,
  DistributeRequest: DistributeRequestSchema,
  OrchestrateRequest: OrchestrateRequestSchema,
  MemorySearchRequest: SearchSchema,
};

const RESPONSES: Record<string, z.ZodType> = {
  ErrorBody: R.ErrorBodySchema,
  InferResult: R.InferResultSchema,
  JobView: R.JobViewSchema,
  JobCancelled: R.JobCancelledSchema,
  AdminJobView: R.AdminJobViewSchema,
  CachedJobView: R.CachedJobViewSchema,
  JobLinks: R.JobLinksSchema,
  JobCancel: R.JobCancelSchema,
  JobList: R.JobListSchema,
  BatchView: R.BatchViewSchema,
  BatchResult: R.BatchResultSchema,
  BatchPage: R.BatchPageSchema,
  WorkflowView: R.WorkflowViewSchema,
  WorkflowLinks: R.WorkflowLinksSchema,
  OrchestrateCached: R.OrchestrateCachedSchema,
  Node: R.NodeSchema,
  NodeList: R.NodeListSchema,
  ClusterStats: R.ClusterStatsSchema,
  HistoryPage: R.HistoryPageSchema,
  HistoryStats: R.HistoryStatsSchema,
  MemorySearchResult: R.MemorySearchResultSchema,
  Livez: R.LivezSchema,
  Readyz: R.ReadyzSchema,
};

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** One registry's schemas as components: shared ones become $refs; zod's per-schema $schema / $id are dropped. */
function componentsOf(named: Record<string, z.ZodType>, io: 'input' | 'output'): Record<string, Json> {
  const reg = z.registry<{ id: string }>();
  for (const [id, s] of Object.entries(named)) reg.add(s, { id });
  const out = z.toJSONSchema(reg, { target: 'draft-2020-12', io, unrepresentable: 'any', uri: (id) => `#/components/schemas/${id}` }) as { schemas: Record<string, Json> };
  return Object.fromEntries(Object.entries(out.schemas).map(([k, { $schema: _s, $id: _i, ...rest }]) => [k, rest]));
}

function content(body: Body): Json {
  if (typeof body === 'string') return { 'application/json': { schema: ref(body) } };
  if ('anyOf' in body) return { 'application/json': { schema: { anyOf: body.anyOf.map(ref) } } };
  return { [body.text]: { schema: { type: 'string' } } };
}

const ERROR_HEADERS = {
  'Retry-After': { description: 'seconds to wait before retrying (rate limits, a full queue, Redis away, draining)', schema: { type: 'integer' } },
};

function operationOf(op: Operation): Json {
  const guarded = op.path.startsWith('/v1/');
  const responses: Record<string, Json> = {};
  const statuses = new Set([...Object.keys(op.responses), ...(guarded ? [...Object.keys(GUARD_RESPONSES), ...Object.keys(BODY_RESPONSES)] : [])].map(Number));
  for (const status of [...statuses].sort((a, b) => a - b)) {
    const own = op.responses[status];
    const description = own?.[0] ?? GUARD_RESPONSES[status] ?? BODY_RESPONSES[status] ?? '';
    const body = own ? own[1] : 'ErrorBody';
    responses[String(status)] = {
      description,
      ...(body ? { content: content(body) } : {}),
      ...(status >= 400 ? { headers: ERROR_HEADERS } : {}),
    };
  }
  const parameters = [...(op.params ?? []).map((p) => ({ ...p, ...(p.in === 'path' ? { required: true } : {}) })), ...(guarded ? [{ $ref: '#/components/parameters/RequestId' }] : [])];
  return {
    operationId: op.id,
    tags: [op.tag],
    summary: op.summary,
    ...(op.description ? { description: op.description } : {}),
    ...(parameters.length ? { parameters } : {}),
    ...(op.body ? { requestBody: { required: true, content: { 'application/json': { schema: ref(op.body.schema), example: op.body.example } } } } : {}),
    responses,
    ...(op.secured === false ? { security: [] } : {}),
  };
}

function build(version: string): Json {
  const paths: Record<string, Json> = {};
  for (const op of OPERATIONS) paths[op.path] = { ...(paths[op.path] ?? {}), [op.method]: operationOf(op) };
  const schemas = {
    ...componentsOf(REQUESTS, 'input'),
    ...componentsOf(RESPONSES, 'output'),
    OpenApiDocument: { type: 'object', required: ['openapi', 'info', 'paths'], properties: { openapi: { type: 'string' }, info: { type: 'object' }, paths: { type: 'object' } } },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'Hydra API',
      version,
      description:
        "Hydra's own REST API: jobs, batches, workflows, nodes, cluster, history and memory. The OpenAI-compatible surface (/v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models) and the Ollama API (/api/*) speak those projects' protocols and are documented by them (docs/ollama-openai.md); they are not described here.",
      license: { name: 'MIT', identifier: 'MIT' },
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    tags: [...new Set(OPERATIONS.map((o) => o.tag))].map((name) => ({ name })),
    paths,
    components: {
      schemas,
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'one of API_KEYS; without API_KEYS the API is open (and binds loopback only)' } },
      parameters: {
        RequestId: { name: 'X-Request-Id', in: 'header', description: 'a request id to log and echo (made when absent); the answer carries it', schema: { type: 'string' } },
      },
    },
  };
}

const VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
let cached: Json | undefined;

/** The document, built once per process (zod → JSON Schema is not free) and shared by /openapi.json, /docs/api and tests. */
export const openApiDocument = (): Json => (cached ??= build(VERSION));
