// GET /docs/api: the OpenAPI document as one self-contained HTML page (no scripts, CDN or web fonts): operations
// grouped by tag with their parameters, request and response schemas and examples, then every schema as a field table.
type Json = Record<string, any>;

const esc = (s: unknown): string => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
/** Prose: escaped, with `code` spans. */
const prose = (s: unknown): string => esc(s).replace(/`([^`]+)`/g, '<code>$1</code>');
const REF = '#/components/schemas/';
const refName = (r: string) => r.slice(REF.length);
const anchor = (name: string) => `schema-${name}`;

/** A schema's type in a few words, components as links. */
function typeOf(s: Json | undefined): string {
  if (!s || Object.keys(s).length === 0) return 'any';
  if (s.$ref) return `<a href="#${anchor(refName(s.$ref))}">${esc(refName(s.$ref))}</a>`;
  if ('const' in s) return `<code>${esc(JSON.stringify(s.const))}</code>`;
  if (s.enum) return s.enum.map((e: unknown) => `<code>${esc(JSON.stringify(e))}</code>`).join(' | ');
  const alts = s.anyOf ?? s.oneOf;
  if (alts) return (alts as Json[]).map(typeOf).join(' | ');
  const types: string[] = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [];
  return types
    .map((t) => {
      if (t === 'array') return `${typeOf(s.items)}[]`;
      if (t === 'object' && !s.properties && s.additionalProperties && typeof s.additionalProperties === 'object' && Object.keys(s.additionalProperties).length) return `map of ${typeOf(s.additionalProperties)}`;
      return esc(t);
    })
    .join(' | ');
}

function limits(s: Json): string {
  const out: string[] = [];
  const safe = (n: number) => Math.abs(n) < 9e15;
  if (typeof s.minimum === 'number' && safe(s.minimum)) out.push(`≥ ${s.minimum}`);
  if (typeof s.exclusiveMinimum === 'number') out.push(`> ${s.exclusiveMinimum}`);
  if (typeof s.maximum === 'number' && safe(s.maximum)) out.push(`≤ ${s.maximum}`);
  if (typeof s.minLength === 'number' && s.minLength > 0) out.push(`length ≥ ${s.minLength}`);
  if (typeof s.maxLength === 'number') out.push(`length ≤ ${s.maxLength}`);
  if (typeof s.minItems === 'number' && s.minItems > 0) out.push(`items ≥ ${s.minItems}`);
  if (typeof s.maxItems === 'number') out.push(`items ≤ ${s.maxItems}`);
  if ('default' in s) out.push(`default <code>${esc(JSON.stringify(s.default))}</code>`);
  return out.join(', ');
}

/** Rows for an object's fields, nested inline objects indented below their field. */
function fieldRows(s: Json, depth = 0): string {
  const props = (s.properties ?? {}) as Record<string, Json>;
  const required = new Set<string>(s.required ?? []);
  return Object.entries(props)
    .map(([name, p]) => {
      const inner = p.type === 'object' && p.properties ? p : p.type === 'array' && p.items?.properties ? p.items : null;
      const row = `<tr><td style="padding-left:${0.5 + depth * 1.2}em"><code>${esc(name)}</code>${required.has(name) ? ' <span class="req">required</span>' : ''}</td><td>${typeOf(p)}</td><td>${prose(p.description ?? '')}${limits(p) ? ` <span class="lim">${limits(p)}</span>` : ''}</td></tr>`;
      return inner && depth < 4 ? row + fieldRows(inner, depth + 1) : row;
    })
    .join('');
}

function schemaBlock(s: Json): string {
  if (s.properties) return `<table class="fields"><tr><th>field</th><th>type</th><th>meaning</th></tr>${fieldRows(s)}</table>`;
  const alts = (s.anyOf ?? s.oneOf) as Json[] | undefined;
  if (alts) return `<p>One of:</p>${alts.map((a, i) => `<div class="alt"><p class="alt-h">${i + 1}. ${typeOf(a)}${a.description ? ` — ${esc(a.description)}` : ''}</p>${a.properties ? schemaBlock(a) : ''}</div>`).join('')}`;
  return `<p>${typeOf(s)}</p>`;
}

/** A small example value built from a schema: required fields, first enum values, the component itself for refs. */
function exampleOf(s: Json | undefined, schemas: Record<string, Json>, depth = 0): unknown {
  if (!s || depth > 6) return null;
  if (s.$ref) return exampleOf(schemas[refName(s.$ref)], schemas, depth + 1);
  if ('const' in s) return s.const;
  if (s.enum) return s.enum[0];
  if ('default' in s) return s.default;
  const alts = (s.anyOf ?? s.oneOf) as Json[] | undefined;
  if (alts) return exampleOf(alts[0], schemas, depth + 1);
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  if (type === 'object') {
    const req = new Set<string>(s.required ?? []);
    return Object.fromEntries(Object.entries((s.properties ?? {}) as Record<string, Json>).filter(([k]) => req.has(k)).map(([k, p]) => [k, exampleOf(p, schemas, depth + 1)]));
  }
  if (type === 'array') return [exampleOf(s.items, schemas, depth + 1)];
  if (type === 'integer' || type === 'number') return typeof s.minimum === 'number' && s.minimum > 0 ? s.minimum : 0;
  if (type === 'boolean') return true;
  if (type === 'string') return s.description?.startsWith('ISO 8601') ? '2026-01-31T12:00:00.000Z' : 'string';
  return null;
}

const pre = (v: unknown) => `<pre>${esc(JSON.stringify(v, null, 2))}</pre>`;

function operationHtml(method: string, path: string, op: Json, schemas: Record<string, Json>): string {
  const params = (op.parameters ?? []) as Json[];
  const resolved = params.map((p) => (p.$ref ? { name: 'X-Request-Id', in: 'header', description: 'a request id to log and echo (made when absent)', schema: { type: 'string' } } : p));
  const body = op.requestBody?.content?.['application/json'];
  const responses = Object.entries(op.responses as Record<string, Json>)
    .map(([status, r]) => {
      const types = Object.entries((r.content ?? {}) as Record<string, Json>).map(([t, m]) => `${t === 'application/json' ? '' : `<code>${esc(t)}</code> `}${t === 'application/json' ? typeOf(m.schema) : ''}`);
      return `<tr><td class="st st${status[0]}">${esc(status)}</td><td>${esc(r.description)}</td><td>${types.join('')}</td></tr>`;
    })
    .join('');
  const ok = Object.entries(op.responses as Record<string, Json>).find(([s, r]) => s.startsWith('2') && r.content?.['application/json']);
  return `<section class="op" id="op-${esc(op.operationId)}">
<h3><span class="m m-${method}">${method.toUpperCase()}</span> <code>${esc(path)}</code></h3>
<p class="sum">${esc(op.summary)}${op.security?.length === 0 ? ' <span class="open">no key needed</span>' : ''}</p>
${op.description ? `<p>${prose(op.description)}</p>` : ''}
${resolved.length ? `<h4>Parameters</h4><table class="fields"><tr><th>name</th><th>in</th><th>type</th><th>meaning</th></tr>${resolved.map((p) => `<tr><td><code>${esc(p.name)}</code>${p.required ? ' <span class="req">required</span>' : ''}</td><td>${esc(p.in)}</td><td>${typeOf(p.schema)}</td><td>${prose(p.description ?? '')}</td></tr>`).join('')}</table>` : ''}
${body ? `<h4>Request body: ${typeOf(body.schema)}</h4><details><summary>example</summary>${pre(body.example)}</details>` : ''}
<h4>Responses</h4><table class="fields"><tr><th>status</th><th>when</th><th>body</th></tr>${responses}</table>
${ok ? `<details><summary>example ${esc(ok[0])} body (generated from the schema)</summary>${pre(exampleOf(ok[1].content['application/json'].schema, schemas))}</details>` : ''}
</section>`;
}

const CSS = `body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;background:#fafbfc}
main{max-width:1100px;margin:auto;padding:1em 2em}nav{columns:2;font-size:14px}nav h3{margin:.6em 0 .2em}
code,pre{font:13px ui-monospace,Menlo,Consolas,monospace}pre{background:#f0f2f5;padding:.7em;overflow:auto;border-radius:4px}
.op,.schema{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:.3em 1.2em 1em;margin:1em 0}
.m{display:inline-block;min-width:4.2em;text-align:center;border-radius:3px;color:#fff;font-size:13px;padding:1px 6px}
.m-get{background:#2f7d32}.m-post{background:#1f5fa8}.m-delete{background:#b3261e}
table.fields{border-collapse:collapse;width:100%;font-size:14px}table.fields td,table.fields th{border-top:1px solid #e6e8eb;padding:3px 8px;text-align:left;vertical-align:top}
.req{color:#b3261e;font-size:12px}.lim{color:#5b6473;font-size:12px}.open{color:#2f7d32;font-size:13px}
.st{font-weight:600}.st2{color:#2f7d32}.st4{color:#a15c00}.st5{color:#b3261e}.alt{margin-left:1em}.alt-h{margin:.4em 0}
a{color:#1f5fa8}`;

export function renderReferencePage(doc: Json): string {
  const schemas = (doc.components?.schemas ?? {}) as Record<string, Json>;
  const ops: { tag: string; method: string; path: string; op: Json }[] = [];
  for (const [path, item] of Object.entries(doc.paths as Record<string, Json>)) for (const [method, op] of Object.entries(item)) ops.push({ tag: op.tags?.[0] ?? 'Other', method, path, op });
  const tags = (doc.tags as { name: string }[]).map((t) => t.name);
  const nav = tags
    .map((t) => `<h3>${esc(t)}</h3>${ops.filter((o) => o.tag === t).map((o) => `<div><a href="#op-${esc(o.op.operationId)}"><code>${o.method.toUpperCase()} ${esc(o.path)}</code></a></div>`).join('')}`)
    .join('');
  const body = tags.map((t) => `<h2 id="tag-${esc(t)}">${esc(t)}</h2>${ops.filter((o) => o.tag === t).map((o) => operationHtml(o.method, o.path, o.op, schemas)).join('')}`).join('');
  const schemaHtml = Object.entries(schemas)
    .map(([name, s]) => `<section class="schema" id="${anchor(name)}"><h3>${esc(name)}</h3>${s.description ? `<p>${esc(s.description)}</p>` : ''}${schemaBlock(s)}</section>`)
    .join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><link rel="icon" href="data:,">
<title>${esc(doc.info.title)} ${esc(doc.info.version)} — reference</title><style>${CSS}</style></head><body><main>
<h1>${esc(doc.info.title)} <small>${esc(doc.info.version)}</small></h1>
<p>${prose(doc.info.description)}</p>
<p>Authentication: <code>Authorization: Bearer &lt;key&gt;</code>, one of API_KEYS (when set). Errors are <a href="#${anchor('ErrorBody')}">ErrorBody</a>. The machine-readable document: <a href="/openapi.json">/openapi.json</a> (OpenAPI ${esc(doc.openapi)}).</p>
<nav>${nav}</nav>${body}<h2 id="schemas">Schemas</h2>${schemaHtml}</main></body></html>`;
}
