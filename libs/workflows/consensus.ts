// Consensus between several models' answers: group similar answers, weighted vote, a syntax check for code. Pure.
import vm from 'node:vm';

export interface Candidate {
  model: string;
  text: string;
  /** Vote weight of the model (default 1). */
  weight?: number;
}

export interface ConsensusGroup {
  models: string[];
  /** Sum of member weights; a member whose code fails the syntax check counts a quarter. */
  score: number;
  syntax_ok: boolean[];
}

export interface ConsensusResult {
  /** The chosen answer (its full text), or null when there was nothing to vote on. */
  winner: { model: string; text: string } | null;
  /** Models whose answers fell in the winning group. */
  agreed: string[];
  groups: ConsensusGroup[];
  method: string;
}

/** Answers at least this similar (token multiset Jaccard) count as the same answer. */
const SIMILARITY_THRESHOLD = 0.8;
const FAILED_SYNTAX_FACTOR = 0.25;

/** The first fenced code block (and its language), else the whole text. */
export function extractCode(text: string): { code: string; lang: string | null } {
  const m = /```([A-Za-z0-9_+-]*)[^\n]*\n([\s\S]*?)```/.exec(text);
  if (m) return { code: m[2]!, lang: m[1] ? m[1].toLowerCase() : null };
  return { code: text, lang: null };
}

const HASH_COMMENT_LANGS = new Set(['python', 'py', 'sh', 'bash', 'shell', 'ruby', 'rb', 'r', 'yaml', 'toml', 'perl']);
const JS_LANGS = new Set(['js', 'javascript', 'mjs', 'cjs', 'node']);

/**
 * Cheap syntax check: brackets balance outside strings and comments; JavaScript without import/export is also
 * compiled (never run) by V8. Languages Hydra cannot parse get the bracket check only.
 */
export function syntaxOk(code: string, lang: string | null): boolean {
  if (code.trim() === '') return false;
  if (!balanced(code, lang !== null && HASH_COMMENT_LANGS.has(lang))) return false;
  if (lang !== null && JS_LANGS.has(lang) && !/^\s*(import|export)\s/m.test(code)) {
    try {
      new vm.Script(code);
    } catch {
      return false;
    }
  }
  return true;
}

function balanced(code: string, hashComments: boolean): boolean {
  const close: Record<string, string> = { ')': '(', ']': '[', '}': '{' };
  const stack: string[] = [];
  for (let i = 0; i < code.length; i++) {
    const c = code[i]!;
    if (c === '"' || c === "'" || c === '`') {
      i++;
      while (i < code.length && code[i] !== c) {
        if (code[i] === '\\') i++;
        else if (code[i] === '\n' && c !== '`') break; // unterminated one-line string: stop at the line end
        i++;
      }
    } else if (hashComments && c === '#') {
      while (i < code.length && code[i] !== '\n') i++;
    } else if (!hashComments && c === '/' && code[i + 1] === '/') {
      while (i < code.length && code[i] !== '\n') i++;
    } else if (!hashComments && c === '/' && code[i + 1] === '*') {
      const end = code.indexOf('*/', i + 2);
      if (end < 0) return false;
      i = end + 1;
    } else if (c === '(' || c === '[' || c === '{') stack.push(c);
    else if (c in close) {
      if (stack.pop() !== close[c]) return false;
    }
  }
  return stack.length === 0;
}

/** Identifier, number or single punctuation tokens, so formatting differences do not matter. */
function tokens(text: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const t of text.toLowerCase().match(/[a-z_][a-z0-9_]*|\d+|[^\sa-z0-9_]/g) ?? []) counts.set(t, (counts.get(t) ?? 0) + 1);
  return counts;
}

/** Multiset Jaccard: Σ min / Σ max over token counts; 1 for two empty texts. */
export function similarity(a: string, b: string): number {
  const ta = tokens(a);
  const tb = tokens(b);
  let min = 0;
  let max = 0;
  for (const k of new Set([...ta.keys(), ...tb.keys()])) {
    const x = ta.get(k) ?? 0;
    const y = tb.get(k) ?? 0;
    min += Math.min(x, y);
    max += Math.max(x, y);
  }
  return max === 0 ? 1 : min / max;
}

/**
 * Group the answers (each joins the first group whose first member it resembles), score each group by its
 * members' weights (code failing the syntax check counts a quarter), pick the best group (ties: the group
 * holding the earliest candidate), and within it the heaviest answer that passes the check (ties: earliest).
 */
export function consensus(candidates: readonly Candidate[], opts: { code: boolean; threshold?: number }): ConsensusResult {
  const threshold = opts.threshold ?? SIMILARITY_THRESHOLD;
  const method = `${opts.code ? 'code blocks' : 'answers'} grouped at token similarity ≥ ${threshold}, weighted vote${opts.code ? ', syntax check' : ''}`;
  if (candidates.length === 0) return { winner: null, agreed: [], groups: [], method };
  const items = candidates.map((c, index) => {
    const { code, lang } = opts.code ? extractCode(c.text) : { code: c.text, lang: null };
    return { ...c, index, body: code, ok: opts.code ? syntaxOk(code, lang) : true, weight: c.weight ?? 1 };
  });
  const groups: (typeof items)[] = [];
  for (const it of items) {
    const g = groups.find((grp) => similarity(grp[0]!.body, it.body) >= threshold);
    if (g) g.push(it);
    else groups.push([it]);
  }
  const score = (g: typeof items) => g.reduce((s, it) => s + it.weight * (it.ok ? 1 : FAILED_SYNTAX_FACTOR), 0);
  const best = [...groups].sort((a, b) => score(b) - score(a) || a[0]!.index - b[0]!.index)[0]!;
  const pick = [...best].sort((a, b) => Number(b.ok) - Number(a.ok) || b.weight - a.weight || a.index - b.index)[0]!;
  return {
    winner: { model: pick.model, text: pick.text },
    agreed: best.map((it) => it.model),
    groups: groups.map((g) => ({ models: g.map((it) => it.model), score: Math.round(score(g) * 1000) / 1000, syntax_ok: g.map((it) => it.ok) })),
    method,
  };
}
