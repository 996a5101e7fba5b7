// A node list cached for a moment: routing at submit does not need fresher than heartbeats, and a burst of submits
// must not read the whole registry once each.

export type NodeList<T> = () => Promise<T[]>;

/**
 * `list` (the registry's) called at most once per `ttlMs`; a failed read is not cached. A list older than `ttlMs` but
 * younger than twice that is still answered at once while a fresh one is read behind it (stale while revalidating):
 * a request that comes after a quiet moment does not wait for a registry read before it is routed (#14: it was the
 * round trip before a streamed chat's job existed). Older than that, the caller waits for the fresh list.
 */
export function cachedNodeList<T>(registry: { list(now: number): Promise<T[]> }, ttlMs = 250): NodeList<T> {
  let cached: { at: number; nodes: Promise<T[]>; ok: boolean } | null = null;
  let refreshing = false;
  const read = (now: number) => {
    const entry = { at: now, nodes: registry.list(now), ok: false };
    entry.nodes.then(
      () => (entry.ok = true),
      () => {
        if (cached === entry) cached = null;
      },
    );
    return entry;
  };
  return () => {
    const now = Date.now();
    const age = cached ? now - cached.at : Infinity;
    if (!cached || age > 2 * ttlMs || (age > ttlMs && !cached.ok)) cached = read(now);
    else if (age > ttlMs && !refreshing) {
      refreshing = true;
      const next = read(now);
      next.nodes.then(
        () => (cached = next),
        () => undefined,
      ).finally(() => (refreshing = false));
    }
    return cached.nodes;
  };
}
