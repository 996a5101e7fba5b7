// The drift check: every answer the test cluster gets from a documented path must be one the OpenAPI document
// describes (its status documented for that operation, its JSON body valid against that status's schema, by ajv), and
// a Hydra-native /v1 route that answers without being documented fails. The OpenAI and Ollama surfaces are skipped.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { openApiDocument } from '../../apps/api/openapi/document.js';
import { surfaceOf } from '../../apps/api/errors.js';

type Json = Record<string, any>;

const COMPONENTS = '#/components/schemas/';
const ROOT_ID = 'hydra-openapi';

/** The document's schemas with their $refs pointed at one ajv schema holding them all as $defs. */
function rewriteRefs(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(rewriteRefs);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, k === '$ref' && typeof x === 'string' && x.startsWith(COMPONENTS) ? `${ROOT_ID}#/$defs/${x.slice(COMPONENTS.length)}` : rewriteRefs(x)]));
  }
  return v;
}

interface DocumentedOperation {
  method: string;
  path: string;
  regex: RegExp;
  /** Literal segments: the more, the more specific (/v1/history/stats before a /v1/history/{x}). */
  literals: number;
  op: Json;
}

export class OpenApiCheck {
  readonly doc: Json;
  readonly ajv: Ajv2020;
  readonly operations: DocumentedOperation[] = [];
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(doc: Json = openApiDocument()) {
    // A copy: the app serves the original; a test may change this one (to see the check fail) without touching it.
    this.doc = structuredClone(doc);
    this.ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false, strictTuples: false, strictRequired: false });
    this.ajv.addSchema({ $id: ROOT_ID, $defs: rewriteRefs(this.doc.components?.schemas ?? {}) as Json });
    for (const [path, item] of Object.entries(this.doc.paths as Json)) {
      const segments = path.split('/');
      const regex = new RegExp(`^${segments.map((s) => (/^\{.+\}$/.test(s) ? '[^/]+' : s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/')}$`);
      for (const [method, op] of Object.entries(item as Json)) {
        this.operations.push({ method, path, regex, literals: segments.filter((s) => !s.startsWith('{')).length, op: op as Json });
      }
    }
    this.operations.sort((a, b) => b.literals - a.literals);
  }

  /** The documented operation a request hits, or undefined. */
  find(method: string, path: string): DocumentedOperation | undefined {
    const m = method.toLowerCase();
    return this.operations.find((o) => o.method === m && o.regex.test(path));
  }

  /** A compiled validator for a schema of the document (refs already pointing at #/components/schemas/...). */
  compile(schema: unknown, key: string): ValidateFunction {
    let v = this.validators.get(key);
    if (!v) {
      v = this.ajv.compile(rewriteRefs(schema) as Json);
      this.validators.set(key, v);
    }
    return v;
  }

  /**
   * Throws when the answer drifts from the document: an undocumented status, a JSON body its schema refuses, a
   * content type the operation does not list, or a Hydra-native /v1 route that is not documented at all.
   */
  check(method: string, rawPath: string, status: number, contentType: string | null, body: unknown): void {
    const path = rawPath.split('?')[0] ?? rawPath;
    const found = this.find(method, path);
    const where = `${method} ${rawPath} → ${status}`;
    if (!found) {
      if (!path.startsWith('/v1/') || surfaceOf(path) !== 'hydra') return;
      // The fallback 404 of an unknown route is fine (tests ask for unknown routes); anything else is a route.
      const fallback = status === 404 && typeof (body as Json)?.error?.message === 'string' && (body as Json).error.message.startsWith('no route ');
      if (fallback) return;
      throw new Error(`OpenAPI drift: ${where}: this route is not in the OpenAPI document (apps/api/openapi/operations.ts)`);
    }
    const response = (found.op.responses as Json)[String(status)];
    if (!response) throw new Error(`OpenAPI drift: ${where}: status ${status} is not documented for ${found.method.toUpperCase()} ${found.path} (documented: ${Object.keys(found.op.responses).join(', ')})`);
    const media = (response.content ?? {}) as Json;
    const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
    if (Object.keys(media).length === 0) return;
    if (!media[type]) throw new Error(`OpenAPI drift: ${where}: content type ${type || '(none)'} is not documented (documented: ${Object.keys(media).join(', ')})`);
    if (type !== 'application/json') return;
    const validate = this.compile(media[type].schema, `${found.method} ${found.path} ${status}`);
    if (!validate(body)) {
      const errors = this.ajv.errorsText(validate.errors, { separator: '\n  ' });
      throw new Error(`OpenAPI drift: ${where}: the body does not match ${found.method.toUpperCase()} ${found.path} ${status} in the OpenAPI document:\n  ${errors}\nbody: ${JSON.stringify(body).slice(0, 2000)}`);
    }
  }
}

let shared: OpenApiCheck | undefined;
/** One checker per test process (compiling the document's schemas is the expensive part). */
export const openApiCheck = (): OpenApiCheck => (shared ??= new OpenApiCheck());

/** application/json and its +json kin; not NDJSON (one document per line) nor SSE. */
const isJson = (type: unknown): boolean => /^application\/([\w.-]+\+)?json(;|$)/i.test(String(type ?? ''));

/** Marks a request whose answer the harness's req() checks itself: the server-side watch leaves it alone. */
export const CHECKED_HEADER = 'x-openapi-checked';

/** JSON answers above this size are not buffered for the check (a big embeddings answer, say). */
const WATCH_MAX_BYTES = 4 * 1024 * 1024;

/**
 * The same check on the server side, for answers to clients other than the harness's req() (plain fetch, SDKs): wraps
 * `handler` so every finished answer of this server is checked, and what drifts is pushed to `drift` (the harness
 * fails the file with it at stop()). SSE and other non-JSON bodies are not buffered: their status and type are checked.
 */
export function watchAnswers(handler: (req: IncomingMessage, res: ServerResponse) => void, drift: string[]): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (req.headers[CHECKED_HEADER]) return handler(req, res);
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const chunks: Buffer[] = [];
    let size = 0;
    let keep = true;
    const hold = (chunk: unknown, encoding: unknown) => {
      if (!keep || chunk === undefined || chunk === null || typeof chunk === 'function') return;
      if (!isJson(res.getHeader('content-type'))) return void (keep = false);
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
      size += b.length;
      if (size > WATCH_MAX_BYTES) keep = false;
      else chunks.push(b);
    };
    const write = res.write.bind(res) as (...a: unknown[]) => boolean;
    const end = res.end.bind(res) as (...a: unknown[]) => ServerResponse;
    res.write = ((...a: unknown[]) => (hold(a[0], a[1]), write(...a))) as typeof res.write;
    res.end = ((...a: unknown[]) => (hold(a[0], a[1]), end(...a))) as typeof res.end;
    res.once('finish', () => {
      const type = res.getHeader('content-type');
      const json = isJson(type);
      if (json && !keep) return;
      let body: unknown;
      if (json) {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
      }
      try {
        openApiCheck().check(method, url, res.statusCode, type === undefined ? null : String(type), body);
      } catch (e) {
        drift.push((e as Error).message);
      }
    });
    handler(req, res);
  };
}
