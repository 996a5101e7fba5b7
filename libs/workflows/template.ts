// Step prompt templates: `{{input.<name>}}` and `{{steps.<id>.output}}`, parsed (for validation at submit) and rendered. Pure.

const TEMPLATE = /\{\{([^{}]*)\}\}/g;
const INPUT_REF = /^input\.([A-Za-z_][A-Za-z0-9_]*)$/;
const STEP_REF = /^steps\.([A-Za-z][A-Za-z0-9_-]*)\.output$/;

export type TemplateRef = { kind: 'input'; name: string; text: string } | { kind: 'step'; step: string; text: string };

/** Every `{{...}}` in `text`, and the ones that are neither an input nor a step output reference. */
export function templateRefs(text: string): { refs: TemplateRef[]; unknown: string[] } {
  const refs: TemplateRef[] = [];
  const unknown: string[] = [];
  for (const m of text.matchAll(TEMPLATE)) {
    const inner = (m[1] ?? '').trim();
    const input = INPUT_REF.exec(inner);
    const step = STEP_REF.exec(inner);
    if (input) refs.push({ kind: 'input', name: input[1]!, text: m[0] });
    else if (step) refs.push({ kind: 'step', step: step[1]!, text: m[0] });
    else unknown.push(m[0]);
  }
  return { refs, unknown };
}

export interface TemplateValues {
  input: Readonly<Record<string, string | number | boolean>>;
  /** Step id → output text. A dependency that failed (optional) renders as an empty string. */
  outputs: Readonly<Record<string, string>>;
}

/** Replace every reference; validation at submit guarantees each one resolves. */
export function renderTemplate(text: string, values: TemplateValues): string {
  return text.replace(TEMPLATE, (whole, raw: string) => {
    const inner = raw.trim();
    const input = INPUT_REF.exec(inner);
    if (input) return String(values.input[input[1]!] ?? '');
    const step = STEP_REF.exec(inner);
    if (step) return values.outputs[step[1]!] ?? '';
    return whole;
  });
}
