// A node list cached for a moment: routing at submit does not need fresher than heartbeats, and a burst of submits
// must not read the whole registry once each.
import type { NodeRegistry, NodeView } from './index.js';

export interface NodeList {
  /** Registered nodes, at most `ttlMs` old. */
  (): Promise<NodeView[]>;
}

export function cachedNodeList(registry: NodeRegistry, ttlMs = 250): NodeList {
  let cached: { at: number; nodes: Promise<NodeView[]> } | null = null;
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
