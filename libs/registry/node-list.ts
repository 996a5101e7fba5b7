// A node list cached for a moment: routing at submit does not need fresher than heartbeats, and a burst of submits
// must not read the whole registry once each.

export type NodeList<T> = () => Promise<T[]>;

/** A cached node list that can be told the registry changed: the next call reads it again. */
export type CachedNodeList<T> = NodeList<T> & { invalidate(): void };

/** How long a cached node list is used without a fresh read (ms). */
export const NODE_LIST_TTL_MS = 250;

/**
 * `list` (the registry's) called at most once per `ttlMs`; a failed read is not cached. A list older than `ttlMs` but
 * younger than twice that is still answered at once while a fresh one is read behind it (stale while revalidating):
 * a request that comes after a quiet moment does not wait for a registry read before it is routed (#14: it was the
 * round trip before a streamed chat's job existed). Older than that, the caller waits for the fresh list.
 * `invalidate` (the registry changed: a join, a leave, a health or model change) drops it, and a read under way then
 * is not kept as the fresh one.
 */
export function cachedNodeList<T>(registry: { list(now: number): Promise<T[]> }, ttlMs = NODE_LIST_TTL_MS): CachedNodeList<T> {
  let cached: { at: number; nodes: Promise<T[]>; ok: boolean } | null = null;
  let refreshing = false;
  let generation = 0;
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
  const list = () => {
    const now = Date.now();
    const age = cached ? now - cached.at : Infinity;
    if (!cached || age > 2 * ttlMs || (age > ttlMs && !cached.ok)) cached = read(now);
    else if (age > ttlMs && !refreshing) {
      refreshing = true;
      const gen = generation;
      const next = read(now);
      next.nodes.then(
        () => {
          if (gen === generation) cached = next;
        },
        () => undefined,
      ).finally(() => (refreshing = false));
    }
    return cached.nodes;
  };
  return Object.assign(list, {
    invalidate() {
      generation++;
      cached = null;
    },
  });
}

/**
 * Ask `list` every `everyMs` (half its ttl or less), so a request after a quiet spell finds it under twice its ttl old
 * and never waits for a registry read (the API: ~0.4 ms of a lone chat request's time to first token, bench/README.md
 * "The hot path, sixth pass"). Idle, that is one read per ttl and a half; one ask at a time, so a read that hangs
 * (Redis away) is not piled up behind. Returns the stop.
 */
export function keepFresh<T>(list: NodeList<T>, everyMs: number): () => void {
  let asking = false;
  const t = setInterval(() => {
    if (asking) return;
    asking = true;
    list()
      .catch(() => undefined)
      .finally(() => (asking = false));
  }, everyMs);
  t.unref();
  return () => clearInterval(t);
}
