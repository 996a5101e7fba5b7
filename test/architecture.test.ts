// Import boundaries from STYLE.md: rank order between libs, libs never import apps, apps never import each other,
// cross-lib imports go through index.ts, and no import cycles.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const RANK: Record<string, number> = { core: 0, config: 1, logger: 1, scheduling: 1, 'tiny-model': 1, queue: 2, registry: 2, cache: 2, workflows: 3 };

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return files(p);
    return p.endsWith('.ts') && !p.endsWith('.test.ts') ? [p] : [];
  });
}

const sources = [...files(join(ROOT, 'apps')), ...files(join(ROOT, 'libs'))].map((p) => relative(ROOT, p));
/** Static and dynamic relative imports of a file, resolved to repo paths (.js → .ts). */
function importsOf(file: string): { target: string; dynamic: boolean }[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const out: { target: string; dynamic: boolean }[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+'(\.[^']+)'|import\('(\.[^']+)'\)/g)) {
    const spec = m[1] ?? m[2]!;
    out.push({ target: relative(ROOT, resolve(ROOT, dirname(file), spec)).replace(/\.js$/, '.ts'), dynamic: m[2] !== undefined });
  }
  return out;
}
const area = (p: string): [string, string] => {
  const [top, name] = p.split('/');
  return [top!, name!];
};

describe('architecture', () => {
  const graph = new Map(sources.map((f) => [f, importsOf(f)]));

  it('respects lib ranks, app isolation and lib entry points', () => {
    const problems: string[] = [];
    for (const [file, deps] of graph) {
      const [top, name] = area(file);
      for (const { target } of deps) {
        if (!target.startsWith('apps/') && !target.startsWith('libs/')) continue;
        const [ttop, tname] = area(target);
        if (top === 'libs' && ttop === 'apps') problems.push(`${file} → ${target}: libs never import apps`);
        if (top === 'apps' && ttop === 'apps' && tname !== name && !(name === 'cli' && target.endsWith('/main.ts'))) {
          problems.push(`${file} → ${target}: apps never import each other (the cli may start an app's main)`);
        }
        if (ttop === 'libs' && (top !== 'libs' || tname !== name) && !target.endsWith(`libs/${tname}/index.ts`)) {
          problems.push(`${file} → ${target}: import another lib through its index.ts`);
        }
        if (top === 'libs' && ttop === 'libs' && tname !== name && (RANK[tname!] ?? 9) > (RANK[name!] ?? 9)) {
          problems.push(`${file} → ${target}: lib ${name} (rank ${RANK[name!]}) may not import lib ${tname} (rank ${RANK[tname!]})`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('has no import cycles (static imports)', () => {
    const state = new Map<string, 'visiting' | 'done'>();
    const cycles: string[] = [];
    const visit = (f: string, path: string[]) => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'visiting') return void cycles.push([...path.slice(path.indexOf(f)), f].join(' → '));
      state.set(f, 'visiting');
      for (const d of graph.get(f) ?? []) if (!d.dynamic && graph.has(d.target)) visit(d.target, [...path, f]);
      state.set(f, 'done');
    };
    for (const f of graph.keys()) visit(f, []);
    expect(cycles).toEqual([]);
  });

  it('knows every lib’s rank', () => {
    const libs = readdirSync(join(ROOT, 'libs'));
    expect(libs.filter((l) => RANK[l] === undefined)).toEqual([]);
  });
});
