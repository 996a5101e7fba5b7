// Graph checks on step dependencies: a cycle (as a path), ancestors, a topological order. Pure.

export interface DagNode {
  id: string;
  depends_on: readonly string[];
}

/** One dependency cycle as a path that starts and ends on the same id (e.g. a → b → a), or null. */
export function findCycle(nodes: readonly DagNode[]): string[] | null {
  const deps = new Map(nodes.map((n) => [n.id, n.depends_on]));
  const state = new Map<string, 'visiting' | 'done'>();
  const path: string[] = [];
  const visit = (id: string): string[] | null => {
    const s = state.get(id);
    if (s === 'done') return null;
    if (s === 'visiting') return [...path.slice(path.indexOf(id)), id];
    state.set(id, 'visiting');
    path.push(id);
    for (const d of deps.get(id) ?? []) {
      if (!deps.has(d)) continue;
      const c = visit(d);
      if (c) return c;
    }
    path.pop();
    state.set(id, 'done');
    return null;
  };
  for (const n of nodes) {
    const c = visit(n.id);
    if (c) return c.reverse(); // read in the direction of execution: a → b means b depends on a
  }
  return null;
}

/** Every step `id` transitively depends on. Assumes no cycle. */
export function ancestors(nodes: readonly DagNode[], id: string): Set<string> {
  const deps = new Map(nodes.map((n) => [n.id, n.depends_on]));
  const out = new Set<string>();
  const stack = [...(deps.get(id) ?? [])];
  while (stack.length > 0) {
    const d = stack.pop()!;
    if (out.has(d)) continue;
    out.add(d);
    stack.push(...(deps.get(d) ?? []));
  }
  return out;
}
