// Body guards of job-request: promptLengthProblems (which text counts, which field is named) and nestingProblem (depth limit), iterative on deep bodies.
import { describe, expect, it } from 'vitest';
import { nestingProblem, promptLengthProblems } from './job-request.js';

const x = (n: number) => 'x'.repeat(n);

describe('promptLengthProblems', () => {
  it.each([
    ['prompt under the limit', { prompt: x(10) }, []],
    ['prompt at the limit', { prompt: x(20) }, []],
    ['prompt over', { prompt: x(21) }, ['prompt']],
    ['prompt + system over together', { prompt: x(15), system: x(15) }, ['prompt']],
    ['messages content summed', { messages: [{ content: x(11) }, { content: x(10) }] }, ['messages']],
    ['messages with odd entries ignored', { messages: [null, 3, { content: 7 }, { content: x(5) }] }, []],
    ['input string', { input: x(21) }, ['input']],
    ['input array summed', { input: [x(11), x(10), 5] }, ['input']],
    ['steps of a workflow, by path', { steps: [{ prompt: x(5) }, { prompt: x(25) }], reduce: { messages: [{ content: x(30) }] } }, ['steps.1.prompt', 'reduce.messages']],
    ['not an object', 'x'.repeat(100), []],
    ['array of jobs', [{ prompt: x(21) }], ['0.prompt']],
  ])('%s', (_name, body, fields) => {
    expect(promptLengthProblems(body, 20).map((p) => p.field).sort()).toEqual([...fields].sort());
  });

  it('names the limit and the count', () => {
    expect(promptLengthProblems({ prompt: x(21) }, 20)).toEqual([{ field: 'prompt', problem: 'holds 21 characters of prompt text; the limit is 20 (MAX_PROMPT_CHARS)' }]);
  });

  it('walks a 100 000-deep body without overflowing the stack', () => {
    let deep: unknown = { prompt: x(50) };
    for (let i = 0; i < 100_000; i++) deep = { a: deep };
    expect(promptLengthProblems(deep, 20)).toEqual([]); // too deep to be a real request: left to schema validation
    expect(promptLengthProblems({ a: { b: { prompt: x(50) } } }, 20).map((p) => p.field)).toEqual(['a.b.prompt']);
  });
});

describe('nestingProblem', () => {
  const nest = (n: number): unknown => {
    let v: unknown = 1;
    for (let i = 0; i < n; i++) v = { a: v };
    return v;
  };
  it('accepts bodies up to the limit and names where a deeper one crosses it', () => {
    expect(nestingProblem(nest(64))).toBeNull();
    expect(nestingProblem({ type: 'generate', format: { type: 'object', properties: { a: { type: 'string' } } } })).toBeNull();
    expect(nestingProblem({ format: nest(64) })).toEqual({ field: 'format.a.a.a.….a.a', problem: 'nests deeper than 64 levels; flatten the request' });
    expect(nestingProblem([[[]]], 2)).toEqual({ field: '0.0', problem: 'nests deeper than 2 levels; flatten the request' });
  });
  it('checks a 100 000-deep body without overflowing the stack', () => {
    expect(nestingProblem(nest(100_000))?.problem).toMatch(/deeper than 64/);
  });
});
