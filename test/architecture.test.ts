// Import boundaries from STYLE.md: ranks (core → config/logger/scheduling → queue/registry/cache/backends → workflows →
// apps), apps never import each other, cross-lib imports go through index.ts, and no import cycles, dynamic imports included.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');

/** Ranks of STYLE.md: a module imports only from its own rank or lower. Units not listed are apps (rank 4). */
const APP_RANK = 4;
const RANK: Record<string, number> = {
  'libs/core': 0,
  'libs/config': 1,
  'libs/logger': 1,
  'libs/scheduling': 1,
  'libs/tiny-model': 1,
  // The typed HTTP client: only libs/core's types (no I/O of its own beyond fetch), so the CLI, tests and users share it.
  'libs/client': 1,
  'libs/queue': 2,
  'libs/registry': 2,
  'libs/cache': 2,
  'libs/activity': 2,
  // The worker's inference backends sit beside the libs of rank 2: they know nothing of the node agent.
  'apps/worker/backends': 2,
  'libs/workflows': 3,
  // The results history: a record built from a job, a Redis stream, and its SQLite/PostgreSQL store.
  'libs/memory': 3,
  // Metrics read the queues, the registry and the cache counters; apps record and serve them.
  'libs/metrics': 3,
  // Entry points like the apps (the cli runs make-tiny-model); benchmarks and test support drive the apps from outside.
  scripts: APP_RANK,
  bench: 5,
  'test/support': 5,
};

function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return files(p);
    return p.endsWith('.ts') && !p.endsWith('.test.ts') ? [p] : [];
  });
}

const sources = ['apps', 'libs', 'scripts', 'bench', 'test/support'].flatMap((d) => files(join(ROOT, d))).map((p) => relative(ROOT, p));

interface Edge {
  target: string;
  dynamic: boolean;
}
// An import or export clause holds no quote, semicolon, parenthesis or "=" before its `from`; this keeps a match
// inside one statement.
const STATIC = /(?:^|\n)\s*(?:import|export)\s(?:[^'";()=]*?\sfrom\s*)?['"](\.{1,2}\/[^'"]+)['"]/g;
const DYNAMIC = /\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

/** Static and dynamic relative imports of a file, resolved to repo paths (.js → .ts). */
function importsOf(file: string): Edge[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const edge = (spec: string, dynamic: boolean): Edge => ({ target: relative(ROOT, resolve(ROOT, dirname(file), spec)).replace(/\.js$/, '.ts'), dynamic });
  return [...[...text.matchAll(STATIC)].map((m) => edge(m[1]!, false)), ...[...text.matchAll(DYNAMIC)].map((m) => edge(m[1]!, true))];
}

/** The unit a file belongs to (a lib, the worker's backends, an app, a tool folder) and its rank. */
function unitOf(p: string): { unit: string; rank: number } {
  const [top, name] = p.split('/');
  if (p.startsWith('apps/worker/backends/')) return { unit: 'apps/worker/backends', rank: RANK['apps/worker/backends']! };
  if (p.startsWith('test/support/')) return { unit: 'test/support', rank: RANK['test/support']! };
  if (top === 'libs' || top === 'apps') {
    const unit = `${top}/${name}`;
    return { unit, rank: RANK[unit] ?? (top === 'apps' ? APP_RANK : Number.NaN) };
  }
  return { unit: top!, rank: RANK[top!] ?? Number.NaN };
}
const appOf = (p: string): string | undefined => (p.startsWith('apps/') ? p.split('/')[1] : undefined);

const graph = new Map(sources.map((f) => [f, importsOf(f)]));

describe('architecture', () => {
  it('finds the imports it checks, dynamic ones included', () => {
    expect(graph.get('apps/worker/backends/index.ts')).toContainEqual({ target: 'apps/worker/backends/llamacpp.backend.ts', dynamic: true });
    expect(graph.get('apps/cli/up.ts')).toContainEqual({ target: 'libs/config/index.ts', dynamic: false });
  });

  it('holds the ranks: a module imports only from its own rank or lower', () => {
    const problems: string[] = [];
    for (const [file, deps] of graph) {
      const from = unitOf(file);
      for (const { target } of deps) {
        const to = unitOf(target);
        if (to.unit === from.unit) continue;
        if (!(to.rank <= from.rank)) problems.push(`${file} → ${target}: ${from.unit} (rank ${from.rank}) may not import ${to.unit} (rank ${to.rank})`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('keeps apps apart and enters libs through index.ts', () => {
    const problems: string[] = [];
    for (const [file, deps] of graph) {
      const app = appOf(file);
      for (const { target } of deps) {
        const tapp = appOf(target);
        if (app && tapp && tapp !== app && !(app === 'cli' && target === `apps/${tapp}/main.ts`)) {
          problems.push(`${file} → ${target}: apps never import each other (the cli may start an app's main)`);
        }
        if (file.startsWith('libs/') && !target.startsWith('libs/')) problems.push(`${file} → ${target}: libs import only libs`);
        const [ttop, tname] = target.split('/');
        if (ttop === 'libs' && unitOf(file).unit !== `libs/${tname}` && target !== `libs/${tname}/index.ts`) {
          problems.push(`${file} → ${target}: import another lib through its index.ts`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('has no import cycles, counting dynamic imports (⇢)', () => {
    const state = new Map<string, 'visiting' | 'done'>();
    const cycles: string[] = [];
    const visit = (f: string, path: { file: string; via: string }[]) => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'visiting') {
        const loop = path.slice(path.findIndex((s) => s.file === f));
        cycles.push(`${loop.map((s) => `${s.file} ${s.via}`).join(' ')} ${f}`);
        return;
      }
      state.set(f, 'visiting');
      for (const d of graph.get(f) ?? []) if (graph.has(d.target)) visit(d.target, [...path, { file: f, via: d.dynamic ? '⇢' : '→' }]);
      state.set(f, 'done');
    };
    for (const f of graph.keys()) visit(f, []);
    expect(cycles).toEqual([]);
  });

  it('knows every lib’s rank', () => {
    const libs = readdirSync(join(ROOT, 'libs')).filter((l) => statSync(join(ROOT, 'libs', l)).isDirectory());
    expect(libs.filter((l) => RANK[`libs/${l}`] === undefined)).toEqual([]);
  });
});
