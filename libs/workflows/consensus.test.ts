// Consensus between answers: grouping by similarity, weighted vote, syntax check. Table-driven, pure.
import { describe, expect, it } from 'vitest';
import { consensus, extractCode, similarity, syntaxOk } from './consensus.js';

const fence = (lang: string, code: string) => `Here you go:\n\`\`\`${lang}\n${code}\n\`\`\`\nDone.`;

describe('syntax check', () => {
  const rows: [string, string, string | null, boolean][] = [
    ['balanced JS that compiles', 'function f(a) { return [a, (a + 1)]; }', 'js', true],
    ['JS that does not compile', 'function f(a) { return a + ; }', 'javascript', false],
    ['an unclosed bracket', 'def f(a):\n    return [a, (a + 1]', 'python', false],
    ['brackets inside strings and comments', "s = ')' # (\nprint(s)", 'python', true],
    ['a C comment with a bracket', 'int f() { /* { */ return 1; } // }', 'c', true],
    ['ESM (bracket check only)', "import x from 'y';\nexport const z = x(", 'js', false],
    ['empty', '   ', null, false],
  ];
  it.each(rows)('%s', (_why, code, lang, ok) => expect(syntaxOk(code, lang)).toBe(ok));

  it('takes the first fenced block and its language', () => {
    expect(extractCode(fence('Python', 'x = 1'))).toEqual({ code: 'x = 1\n', lang: 'python' });
    expect(extractCode('no fence')).toEqual({ code: 'no fence', lang: null });
  });
});

describe('similarity', () => {
  it('ignores formatting, counts tokens', () => {
    expect(similarity('def f(a):\n  return a+1', 'def  f( a ):  return a + 1')).toBe(1);
    expect(similarity('a b c d', 'a b c e')).toBeCloseTo(3 / 5);
    expect(similarity('', '')).toBe(1);
  });
});

describe('vote', () => {
  const add = 'function add(a, b) { return a + b; }';
  const addSpaced = 'function add(a,b){\n  return a + b;\n}';
  const sub = 'function add(a, b) { return a - b - 0 * 1; }';
  const broken = 'function add(a, b) { return a + b; ';

  it('groups the agreeing answers and records who agreed', () => {
    const r = consensus(
      [
        { model: 'x', text: fence('js', add) },
        { model: 'y', text: fence('js', sub) },
        { model: 'z', text: fence('js', addSpaced) },
      ],
      { code: true },
    );
    expect(r.winner?.model).toBe('x');
    expect(r.agreed).toEqual(['x', 'z']);
    expect(r.groups).toEqual([
      { models: ['x', 'z'], score: 2, syntax_ok: [true, true] },
      { models: ['y'], score: 1, syntax_ok: [true] },
    ]);
  });

  it('weighs models, and counts code that fails the syntax check a quarter', () => {
    const cands = [
      { model: 'small-1', text: fence('js', broken), weight: 1 },
      { model: 'small-2', text: fence('js', broken + '\n'), weight: 1 },
      { model: 'big', text: fence('js', sub), weight: 1 },
    ];
    // Two agreeing answers that do not parse (0.25 + 0.25) lose to one that does (1).
    expect(consensus(cands, { code: true })).toMatchObject({ winner: { model: 'big' }, agreed: ['big'] });
    // As plain text (no syntax check) the two agreeing ones win; a heavy model can outvote them.
    expect(consensus(cands, { code: false }).agreed).toEqual(['small-1', 'small-2']);
    expect(consensus(cands.map((c) => (c.model === 'big' ? { ...c, weight: 3 } : c)), { code: false }).winner?.model).toBe('big');
  });

  it('prefers, inside the winning group, an answer that passes the check; ties go to the earliest', () => {
    const r = consensus(
      [
        { model: 'a', text: fence('js', broken) },
        { model: 'b', text: fence('js', add) },
      ],
      { code: true, threshold: 0.5 },
    );
    expect(r).toMatchObject({ winner: { model: 'b' }, agreed: ['a', 'b'] });
    expect(consensus([{ model: 'p', text: 'same' }, { model: 'q', text: 'same' }], { code: false }).winner?.model).toBe('p');
    expect(consensus([], { code: true })).toMatchObject({ winner: null, agreed: [] });
  });
});
