// A node list cached for a moment: routing at submit does not need fresher than heartbeats, and a burst of submits
// must not read the whole registry once each.

export type NodeList<T> = () => Promise<T[]>;

/** `list` (the registry's) called at most once per `ttlMs`; a failed read is not cached. */
export function cachedNodeList<T>(registry: { list(now: number): Promise<T[]> }, ttlMs = 250): NodeList<T> {
  let cached: { at: number; nodes: Promise<T[]> } | null = null;
  return () => {
    const now = Date.now();
    if (!cached || now - cached.at > ttlMs) {
      const nodes = registry.list(now);
      cached = { at: now, nodes };
      nodes.catch(() => (cached = null));
    }
    return cached.nodes;
  };
}
