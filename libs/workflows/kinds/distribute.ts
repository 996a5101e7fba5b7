// The fan-out: prompts × models as independent optional steps; the result lists every pair with its answer and timing.
import type { KindHandler } from './kind.js';

export const distributeKind: KindHandler = {
  needs: () => [],
  render: (def) => def.call,
  summarize(snap) {
    const pairs = snap.order.flatMap((id) => {
      const def = snap.defs.get(id);
      if (!def) return [];
      const rec = snap.records.get(id);
      const r = rec?.result;
      const prompt = def.call.type === 'chat' ? (def.call.messages.at(-1)?.content ?? '') : def.call.prompt;
      const pair = def.label?.kind === 'distribute' ? def.label : { prompt_index: 0, model_index: 0 };
      return [
        {
          step: id,
          prompt_index: pair.prompt_index,
          model_index: pair.model_index,
          prompt,
          model: def.call.model,
          state: snap.states.get(id) ?? 'waiting',
          job_id: rec?.job_id ?? null,
          node_id: rec?.node_id ?? null,
          answer: rec?.state === 'completed' ? (rec.output ?? '') : null,
          ...(rec?.cached ? { cached: true } : {}),
          ...(rec?.error ? { error: rec.error } : {}),
          queued_ms: rec?.queued_ms ?? null,
          started_at: rec?.started_at ?? null,
          finished_at: rec?.finished_at ?? null,
          total_duration_ms: r?.total_duration_ms ?? null,
          eval_duration_ms: r?.eval_duration_ms ?? null,
          completion_tokens: r?.completion_tokens ?? null,
        },
      ];
    });
    const completed = pairs.filter((p) => p.state === 'completed');
    if (completed.length === 0 && pairs.length > 0) {
      const first = pairs.find((p) => p.error)?.error ?? { code: 'internal', message: 'no pair completed' };
      return { ok: false, error: { code: first.code, message: `every prompt × model pair failed; first error: ${first.message}` } };
    }
    const byNode: Record<string, number> = {};
    for (const p of completed) if (p.node_id) byNode[p.node_id] = (byNode[p.node_id] ?? 0) + 1;
    return { ok: true, result: { pairs, summary: { pairs: pairs.length, completed: completed.length, failed: pairs.length - completed.length, by_node: byNode } } };
  },
};
