// The general DAG: each step's templates are rendered from the workflow input and its dependencies' outputs.
import { renderTemplate, templateRefs } from '../template.js';
import { stepSummary, type KindHandler } from './kind.js';

export const dagKind: KindHandler = {
  needs(def) {
    const texts = def.call.type === 'chat' ? def.call.messages.map((m) => m.content) : [def.call.prompt, def.call.system ?? ''];
    return [...new Set(texts.flatMap((t) => templateRefs(t).refs.flatMap((r) => (r.kind === 'step' ? [r.step] : []))))];
  },
  render(def, ctx) {
    const outputs: Record<string, string> = {};
    for (const [id, r] of ctx.records) outputs[id] = r.state === 'completed' ? (r.output ?? '') : '';
    const values = { input: ctx.input, outputs };
    if (def.call.type === 'chat') return { ...def.call, messages: def.call.messages.map((m) => ({ ...m, content: renderTemplate(m.content, values) })) };
    return { ...def.call, prompt: renderTemplate(def.call.prompt, values), ...(def.call.system !== undefined ? { system: renderTemplate(def.call.system, values) } : {}) };
  },
  summarize(snap) {
    const steps: Record<string, ReturnType<typeof stepSummary>> = {};
    const outputs: Record<string, string> = {};
    for (const id of snap.order) {
      const def = snap.defs.get(id);
      if (!def) continue;
      steps[id] = stepSummary(def, snap);
      const rec = snap.records.get(id);
      if (rec?.state === 'completed') outputs[id] = rec.output ?? '';
    }
    return { ok: true, result: { outputs, steps } };
  },
};
