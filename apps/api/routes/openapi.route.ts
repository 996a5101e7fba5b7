// GET /openapi.json and GET /docs/api: the OpenAPI 3.1 document of Hydra's own API and its HTML reference page. No key:
// they describe the API, they hold no data. Both are built once per process.
import { Router } from 'express';
import { openApiDocument } from '../openapi/document.js';
import { renderReferencePage } from '../openapi/reference-page.js';

export function openApiRouter(): Router {
  const r = Router();
  let json: string | undefined;
  let html: string | undefined;
  r.get('/openapi.json', (_req, res) => void res.type('application/json').send((json ??= JSON.stringify(openApiDocument()))));
  r.get('/docs/api', (_req, res) => {
    // Self-contained: inline styles only, nothing loaded from elsewhere.
    res.setHeader('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:");
    res.type('text/html').send((html ??= renderReferencePage(openApiDocument())));
  });
  return r;
}
