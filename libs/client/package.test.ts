// `import { Hydra } from 'hydra/client'` as users write it: from this checkout (the package's self-reference), and from
// the tarball `npm pack` makes, unpacked into a fresh project whose dependencies are this checkout's installed ones
// (offline: no registry). Plain Node runs it, and a TypeScript project type-checks against its types.
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as source from './index.js';

const ROOT = join(import.meta.dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; dependencies: Record<string, string> };

/** A consumer script: the entry's exports, and one real request to `url` (GET /v1/nodes) through the client. */
const consumer = (url: string) => `
import * as m from 'hydra/client';
const { Hydra, NotFoundError } = m;
const h = new Hydra({ url: ${JSON.stringify(url)} });
const nodes = await h.nodes();
let notFound = null;
try { await h.job('nope'); } catch (e) { notFound = { cls: e instanceof NotFoundError, code: e.code, status: e.status }; }
const version = (await import('hydra/package.json', { with: { type: 'json' } })).default.version;
console.log(JSON.stringify({ exports: Object.keys(m).sort(), nodes, notFound, version }));
`;

const run = promisify(execFile);

/** Run a script with plain Node (asynchronously: the fake API answers from this process). */
async function node(cwd: string, file: string): Promise<{ exports: string[]; nodes: unknown; notFound: unknown; version: string }> {
  const r = await run(process.execPath, [file], { cwd, encoding: 'utf8', timeout: 60_000, env: { ...process.env, NODE_OPTIONS: '' } });
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
}

/** tsc on the consumer project; its exit status and output. */
async function tsc(app: string, compiler: string): Promise<{ status: number; out: string }> {
  try {
    const r = await run(process.execPath, [compiler, '-p', app], { cwd: app, encoding: 'utf8', timeout: 90_000 });
    return { status: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { status: x.code ?? 1, out: `${x.stdout ?? ''}${x.stderr ?? ''}` };
  }
}

describe('the hydra/client package entry', () => {
  let server: Server;
  let url: string;
  const tmp = mkdtempSync(join(tmpdir(), 'hydra-client-pkg-'));
  const runtimeExports = Object.keys(source).sort();

  beforeAll(async () => {
    server = createServer((req, res) => {
      res.writeHead(req.url === '/v1/nodes' ? 200 : 404, { 'content-type': 'application/json' });
      res.end(JSON.stringify(req.url === '/v1/nodes' ? { nodes: [{ id: 'n1' }] } : { error: { code: 'not_found', message: 'no job with id nope', retryable: false } }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const a = server.address();
    url = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(tmp, { recursive: true, force: true });
  });

  it('resolves from a checkout (self-reference) to the same exports as the sources, and works', async () => {
    const dir = join(ROOT, 'tmp');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `client-entry-${process.pid}.mjs`);
    writeFileSync(file, consumer(url));
    try {
      const out = await node(ROOT, file);
      expect(out.exports).toEqual(runtimeExports);
      expect(out.nodes).toEqual([{ id: 'n1' }]);
      expect(out.notFound).toEqual({ cls: true, code: 'not_found', status: 404 });
    } finally {
      rmSync(file, { force: true });
    }
  });

  it('works from the npm pack tarball in a fresh project, for plain Node and for TypeScript', { timeout: 120_000 }, async () => {
    const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', tmp], { cwd: ROOT, encoding: 'utf8' })) as { filename: string; files: { path: string }[] }[];
    const files = packed[0]!.files.map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(['libs/client/entry.mjs', 'libs/client/index.ts', 'libs/client/hydra.ts', 'libs/core/index.ts', 'bin/hydra.mjs']));
    // A project that installed the tarball: the package unpacked under node_modules, its dependencies beside it.
    const app = join(tmp, 'app');
    const mods = join(app, 'node_modules');
    mkdirSync(join(mods, pkg.name), { recursive: true });
    execFileSync('tar', ['-xzf', join(tmp, packed[0]!.filename), '-C', join(mods, pkg.name), '--strip-components=1']);
    for (const dep of [...Object.keys(pkg.dependencies), '@types/node', 'typescript']) {
      const from = join(ROOT, 'node_modules', dep);
      if (!existsSync(from)) continue;
      mkdirSync(join(mods, dep, '..'), { recursive: true });
      symlinkSync(from, join(mods, dep));
    }
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', type: 'module', private: true }));
    writeFileSync(join(app, 'main.mjs'), consumer(url));
    const out = await node(app, 'main.mjs');
    expect(out.exports).toEqual(runtimeExports);
    expect(out).toMatchObject({ nodes: [{ id: 'n1' }], notFound: { cls: true, code: 'not_found', status: 404 }, version: expect.any(String) });

    // TypeScript: the "types" condition gives the client's own types (a wrong call does not compile).
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, types: ['node'], skipLibCheck: true }, files: ['main.ts'] }));
    const ts = (body: string) => {
      writeFileSync(join(app, 'main.ts'), `import { Hydra, type JobView, type JobStreamEvent } from 'hydra/client';\nconst h = new Hydra();\n${body}\n`);
      return tsc(app, join(mods, 'typescript', 'bin', 'tsc'));
    };
    const good = await ts(`export async function f(): Promise<string> { const v: JobView = await h.run({ type: 'generate', model: 'm', prompt: 'p' }); for await (const e of h.stream(v.id)) { const x: JobStreamEvent = e; if (x.event === 'token') return x.text; } return v.state; }`);
    expect(good.out).toBe('');
    expect(good.status).toBe(0);
    const bad = await ts(`export const p = h.submit({ type: 'generate', model: 'm' });`);
    expect(bad.status).not.toBe(0);
    expect(bad.out).toContain('prompt');
  });
});
