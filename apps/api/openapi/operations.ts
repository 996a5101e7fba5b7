// The table of Hydra's own operations: path, method, parameters, request body and every status each can answer, with
// the component (requests.ts / responses.ts) that describes its body. document.ts turns it into OpenAPI 3.1.

/** A component of the document by name, a union of them, or a non-JSON body. */
export type Body = string | { anyOf: string[] } | { text: 'text/event-stream' | 'application/x-ndjson' | 'text/plain' | 'text/html' };

interface Param {
  name: string;
  in: 'path' | 'query' | 'header';
  description: string;
  schema: Record<string, unknown>;
  required?: boolean;
}

export interface Operation {
  method: 'get' | 'post' | 'delete';
  path: string;
  tag: string;
  id: string;
  summary: string;
  description?: string;
  params?: Param[];
  /** Request body component, and an example of it. */
  body?: { schema: string; example: unknown };
  /** Status → [description, body]. */
  responses: Record<number, [string, Body?]>;
  /** false: no API key needed (probes, the document itself). */
  secured?: boolean;
}

const ERR = 'ErrorBody';
const idParam = (what: string): Param => ({ name: 'id', in: 'path', required: true, description: `the ${what}'s id`, schema: { type: 'string' } });
const idempotency: Param = {
  name: 'Idempotency-Key',
  in: 'header',
  description: 'a retry of the same request with the same key answers with the original job or workflow (Idempotent-Replayed: true) instead of making a second one; 1-255 visible ASCII characters, kept IDEMPOTENCY_TTL_S',
  schema: { type: 'string', minLength: 1, maxLength: 255 },
};
const lastEventId: Param[] = [
  { name: 'Last-Event-ID', in: 'header', description: 'resume after this event (SSE reconnect)', schema: { type: 'string' } },
  { name: 'last_event_id', in: 'query', description: 'resume after this event (for clients that cannot set headers)', schema: { type: 'string' } },
];
const since: Param = { name: 'since', in: 'query', description: 'from: ms since epoch, an ISO date, or an age such as 24h or 7d', schema: { type: 'string' } };
const until: Param = { name: 'until', in: 'query', description: 'until: ms since epoch, an ISO date, or an age', schema: { type: 'string' } };
const text = (name: string, description: string): Param => ({ name, in: 'query', description, schema: { type: 'string' } });

/** A job submit that waited and failed answers the failed job's view with its error's status; a refusal the error body. */
const jobFail = { anyOf: [ERR, 'JobView'] };
const workflowFail = { anyOf: [ERR, 'WorkflowView'] };

const jobSubmitResponses: Operation['responses'] = {
  200: ['completed (wait: true), or answered from the cache', { anyOf: ['JobView', 'CachedJobView'] }],
  202: ['accepted: poll status_url or read stream_url (also: still running past the wait limit, or a replay without wait)', 'JobLinks'],
  400: ['invalid body (details.fields names each bad field), a refused callback_url, or a failed job whose error is bad_request', jobFail],
  404: ['model not found on any node, or the job of a replayed Idempotency-Key is no longer kept', jobFail],
  409: ['cancelled while waited for, or the first request with this Idempotency-Key is still adding its job', ERR],
  422: ['unsatisfiable (no node can ever run it), Idempotency-Key reused for a different request, or a bad model file', jobFail],
  500: ['internal error, or a job failed as a poison pill', jobFail],
  502: ['the backend failed the job', jobFail],
  503: ['queue full (MAX_QUEUE_DEPTH), Redis away, replica draining, or the backend unavailable', jobFail],
  504: ['the job timed out', jobFail],
  507: ['the node ran out of memory', jobFail],
};

const workflowSubmitResponses = (ok: Body): Operation['responses'] => ({
  200: ['completed (wait: true)', ok],
  202: ['accepted: poll status_url or read stream_url (also: still running past the wait limit)', 'WorkflowLinks'],
  400: ['invalid body (details.fields names each bad field), or a failed step whose error is bad_request', workflowFail],
  404: ['a model no node has', workflowFail],
  409: ['cancelled while waited for (the view), or the first request with this Idempotency-Key is still adding it', workflowFail],
  422: ['unsatisfiable step, or Idempotency-Key reused for a different request', workflowFail],
  500: ['internal error, or a step failed as a poison pill', workflowFail],
  502: ['a required step failed in its backend', workflowFail],
  503: ['Redis away, replica draining, a backend unavailable', workflowFail],
  504: ['a required step timed out', workflowFail],
  507: ['a node ran out of memory', workflowFail],
});

const sse = { text: 'text/event-stream' } as const;

export const OPERATIONS: Operation[] = [
  // ---- jobs ----
  {
    method: 'post', path: '/v1/jobs', tag: 'Jobs', id: 'submitJob', summary: 'Submit an inference job',
    description: 'Routes a generate, chat or embed request to a node that can run it (VRAM-aware) and queues it at its priority. With `wait: true` the answer comes in this response (up to WAIT_MAX_MS, then 202 with the links).',
    params: [idempotency],
    body: { schema: 'JobRequest', example: { type: 'generate', model: 'qwen3:14b', prompt: 'Why is the sky blue?', priority: 7, wait: true } },
    responses: jobSubmitResponses,
  },
  {
    method: 'get', path: '/v1/jobs', tag: 'Jobs', id: 'listJobs', summary: 'Recent jobs, newest first',
    params: [
      { name: 'limit', in: 'query', description: 'jobs at most (1-200, default 20)', schema: { type: 'integer', minimum: 1, maximum: 200, default: 20 } },
      { name: 'state', in: 'query', description: 'only jobs in this state', schema: { type: 'string', enum: ['waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed'] } },
      text('model', 'only jobs of this model'),
    ],
    responses: { 200: ['the jobs', 'JobList'], 400: ['a bad query value', ERR] },
  },
  {
    method: 'get', path: '/v1/jobs/{id}', tag: 'Jobs', id: 'getJob', summary: 'A job: state, result or error, routing decision',
    params: [idParam('job')],
    responses: { 200: ['the job (or, removed by a cancel before it ran, just its id and state; or a model-management job of the Ollama surface)', { anyOf: ['JobView', 'JobCancelled', 'AdminJobView'] }], 404: ['unknown, or removed after JOB_RETENTION_S', ERR] },
  },
  {
    method: 'get', path: '/v1/jobs/{id}/stream', tag: 'Jobs', id: 'streamJob', summary: "A job's tokens as Server-Sent Events",
    description: 'Events: `token` and `thinking` (data `{"text": ...}`), `done` (data: the job view), `error` (data `{code, message}`). Resumable with Last-Event-ID.',
    params: [idParam('job'), ...lastEventId],
    responses: { 200: ['the event stream', sse], 404: ['unknown job', ERR] },
  },
  {
    method: 'delete', path: '/v1/jobs/{id}', tag: 'Jobs', id: 'cancelJob', summary: 'Cancel a job',
    params: [idParam('job')],
    responses: { 200: ['removed before it ran', 'JobCancel'], 202: ['running: its node is aborting it', 'JobCancel'], 404: ['unknown job', ERR], 409: ['already ended', ERR] },
  },
  // ---- batches ----
  {
    method: 'post', path: '/v1/batches', tag: 'Batches', id: 'submitBatch', summary: 'Submit many jobs at once',
    description: 'Each request is exactly what POST /v1/jobs takes (without `wait`); all are routed first, then added together, or none is (a request that cannot be routed is named as requests[i]).',
    params: [idempotency],
    body: { schema: 'BatchRequest', example: { requests: [{ type: 'generate', model: 'qwen3:14b', prompt: 'One' }, { type: 'generate', model: 'qwen3:14b', prompt: 'Two' }] } },
    responses: {
      202: ['accepted', 'BatchView'],
      400: ['invalid body, or a refused callback_url', ERR],
      404: ['a model no node has', ERR],
      409: ['the first request with this Idempotency-Key is still adding the batch', ERR],
      422: ['a request no node can ever run, or Idempotency-Key reused for a different request', ERR],
    },
  },
  {
    method: 'get', path: '/v1/batches/{id}', tag: 'Batches', id: 'getBatch', summary: 'A batch: counts and a page of results',
    params: [
      idParam('batch'),
      { name: 'offset', in: 'query', description: 'first result (request index), default 0', schema: { type: 'integer', minimum: 0, default: 0 } },
      { name: 'limit', in: 'query', description: 'results at most (1-1000, default 100)', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
    ],
    responses: { 200: ['the batch and results from offset, in request order', 'BatchPage'], 400: ['a bad query value', ERR], 404: ['unknown batch', ERR] },
  },
  {
    method: 'get', path: '/v1/batches/{id}/results', tag: 'Batches', id: 'getBatchResults', summary: "A batch's results as NDJSON",
    description: 'One BatchResult per line, in request order.',
    params: [idParam('batch')],
    responses: { 200: ['one BatchResult per line', { text: 'application/x-ndjson' }], 404: ['unknown batch', ERR] },
  },
  {
    method: 'post', path: '/v1/batches/{id}/cancel', tag: 'Batches', id: 'cancelBatch', summary: 'Cancel a batch',
    description: 'Waiting jobs are removed, active ones aborted.',
    params: [idParam('batch')],
    responses: { 200: ['cancelled', 'BatchView'], 404: ['unknown batch', ERR], 409: ['already ended', ERR] },
  },
  // ---- workflows ----
  {
    method: 'post', path: '/v1/workflows', tag: 'Workflows', id: 'submitWorkflow', summary: 'Submit a DAG of steps',
    description: 'Steps may depend on others and quote their outputs (`{{steps.<id>.output}}`) or the inputs (`{{input.<name>}}`); each step is routed like a job.',
    params: [idempotency],
    body: {
      schema: 'WorkflowRequest',
      example: { name: 'summarize-then-translate', input: { text: 'Hydra routes jobs.' }, steps: [{ id: 'sum', model: 'qwen3:14b', prompt: 'Summarize: {{input.text}}' }, { id: 'fr', model: 'qwen3:14b', prompt: 'Translate to French: {{steps.sum.output}}', depends_on: ['sum'] }], wait: true },
    },
    responses: workflowSubmitResponses('WorkflowView'),
  },
  {
    method: 'get', path: '/v1/workflows/{id}', tag: 'Workflows', id: 'getWorkflow', summary: 'A workflow and its steps',
    params: [idParam('workflow')],
    responses: { 200: ['the workflow', 'WorkflowView'], 404: ['unknown, or removed after JOB_RETENTION_S', ERR] },
  },
  {
    method: 'get', path: '/v1/workflows/{id}/stream', tag: 'Workflows', id: 'streamWorkflow', summary: "A workflow's step events as Server-Sent Events",
    params: [idParam('workflow'), ...lastEventId],
    responses: { 200: ['the event stream', sse], 404: ['unknown workflow', ERR] },
  },
  {
    method: 'delete', path: '/v1/workflows/{id}', tag: 'Workflows', id: 'cancelWorkflow', summary: 'Cancel a workflow',
    params: [idParam('workflow')],
    responses: { 202: ['cancelling: steps not started removed, running ones aborted', 'WorkflowLinks'], 404: ['unknown workflow', ERR], 409: ['already ended', ERR] },
  },
  {
    method: 'post', path: '/v1/distribute', tag: 'Workflows', id: 'distribute', summary: 'Fan prompts out over models',
    description: 'One optional step per (prompt, model) pair (`pairing`: cross or zip), as one workflow.',
    params: [idempotency],
    body: { schema: 'DistributeRequest', example: { prompts: ['Name a prime'], models: ['qwen3:14b', 'llama3.1:8b'], wait: true } },
    responses: workflowSubmitResponses('WorkflowView'),
  },
  {
    method: 'post', path: '/v1/orchestrate', tag: 'Workflows', id: 'orchestrate', summary: 'The Hydra pipeline: analyze, decompose, run on several models, synthesize',
    params: [idempotency],
    body: { schema: 'OrchestrateRequest', example: { prompt: 'Write and test a function that reverses a string', synthesis: 'llm', wait: true } },
    responses: workflowSubmitResponses({ anyOf: ['WorkflowView', 'OrchestrateCached'] }),
  },
  // ---- nodes and cluster ----
  { method: 'get', path: '/v1/nodes', tag: 'Nodes and cluster', id: 'listNodes', summary: 'The node registry', responses: { 200: ['every registered node', 'NodeList'] } },
  { method: 'get', path: '/v1/cluster/stats', tag: 'Nodes and cluster', id: 'clusterStats', summary: 'Node, queue and cache counts', responses: { 200: ['the counts', 'ClusterStats'] } },
  // ---- history and memory ----
  {
    method: 'get', path: '/v1/history', tag: 'History and memory', id: 'listHistory', summary: 'Finished jobs and workflows, newest first, paged',
    params: [
      { name: 'kind', in: 'query', description: 'job or workflow', schema: { type: 'string', enum: ['job', 'workflow'] } },
      text('model', 'only this model'),
      text('node', 'only this node'),
      { name: 'outcome', in: 'query', description: 'completed, failed or cancelled', schema: { type: 'string', enum: ['completed', 'failed', 'cancelled'] } },
      text('request_id', 'the X-Request-Id of the submit'),
      text('api_key_id', 'k_ + 16 hex digits of the key'),
      text('workflow_id', 'the steps of one workflow'),
      since,
      until,
      text('q', 'words the prompt or answer holds'),
      { name: 'limit', in: 'query', description: 'rows at most (1-500, default 50)', schema: { type: 'integer', minimum: 1, maximum: 500, default: 50 } },
      text('cursor', 'next_cursor of the previous page'),
    ],
    responses: { 200: ['a page', 'HistoryPage'], 400: ['a bad query value', ERR], 404: ['the history is off (MEMORY_URL=off)', ERR], 503: ['the store is not open or did not answer', ERR] },
  },
  {
    method: 'get', path: '/v1/history/stats', tag: 'History and memory', id: 'historyStats', summary: 'Aggregates per model, node or day',
    params: [{ name: 'by', in: 'query', description: 'model (default), node or day', schema: { type: 'string', enum: ['model', 'node', 'day'], default: 'model' } }, since, until],
    responses: { 200: ['the groups', 'HistoryStats'], 400: ['a bad query value', ERR], 404: ['the history is off', ERR], 503: ['the store is not open or did not answer', ERR] },
  },
  {
    method: 'post', path: '/v1/memory/search', tag: 'History and memory', id: 'memorySearch', summary: 'Stored texts nearest to a query',
    description: 'The query is embedded by the cluster with MEMORY_EMBED_MODEL, then searched exactly.',
    body: { schema: 'MemorySearchRequest', example: { query: 'sky colour', k: 5, filter: { kind: 'answer' } } },
    responses: {
      200: ['the nearest items', 'MemorySearchResult'],
      400: ['invalid body', ERR],
      404: ['search is off (no history or no MEMORY_EMBED_MODEL), or the embed model is on no node', ERR],
      422: ['the embed model cannot run on any node', ERR],
      502: ['the embedding failed in its backend', ERR],
      503: ['the vector store is not open, or the embedding backend unavailable', ERR],
      504: ['the embedding timed out', ERR],
    },
  },
  // ---- probes, metrics, this document ----
  { method: 'get', path: '/livez', tag: 'Probes', id: 'livez', summary: 'Liveness: the process serves HTTP', secured: false, responses: { 200: ['alive (also while draining)', 'Livez'] } },
  { method: 'get', path: '/readyz', tag: 'Probes', id: 'readyz', summary: 'Readiness: Redis up and not draining', secured: false, responses: { 200: ['ready', 'Readyz'], 503: ['draining or Redis down (Retry-After)', 'Readyz'] } },
  { method: 'get', path: '/healthz', tag: 'Probes', id: 'healthz', summary: 'Readiness, under the name load balancers probe', secured: false, responses: { 200: ['ready', 'Readyz'], 503: ['draining or Redis down (Retry-After)', 'Readyz'] } },
  {
    method: 'get', path: '/metrics', tag: 'Probes', id: 'metrics', summary: 'Prometheus metrics of this process and the cluster',
    params: [{ name: 'scope', in: 'query', description: 'all (default), process or cluster', schema: { type: 'string', enum: ['all', 'process', 'cluster'] } }],
    responses: { 200: ['Prometheus text exposition', { text: 'text/plain' }], 401: ['API_KEYS set and no valid key', ERR] },
  },
  { method: 'get', path: '/openapi.json', tag: 'Documentation', id: 'openapi', summary: 'This document (OpenAPI 3.1)', secured: false, responses: { 200: ['the document', 'OpenApiDocument'] } },
  { method: 'get', path: '/docs/api', tag: 'Documentation', id: 'apiReference', summary: 'This document as a readable HTML page', secured: false, responses: { 200: ['the reference page', { text: 'text/html' }] } },
];

/** What every /v1 operation may also answer, whatever the route: the guards in front of it (app.ts). */
export const GUARD_RESPONSES: Record<number, string> = {
  401: 'API_KEYS is set and the request has no valid key (Authorization: Bearer <key>)',
  429: 'RATE_LIMIT_PER_MIN exceeded (Retry-After)',
  500: 'internal error',
  503: 'this replica is draining, or Redis is unavailable (Retry-After)',
};

/** What every /v1 operation with a body or a path parameter may also answer. */
export const BODY_RESPONSES: Record<number, string> = {
  400: 'malformed JSON, a body nested too deep, prompt text over MAX_PROMPT_CHARS, or a path parameter that is not valid percent-encoding',
  413: 'body larger than BODY_LIMIT_BYTES',
};
