// The orchestrator's parsing and defaults: complexity, decomposition validation with safe fallbacks, model resolution.
import { describe, expect, it } from 'vitest';
import { catalogPools, decomposePrompt, decompositionSchema, parseComplexity, parseDecomposition, parseOrchestrateRequest, subtaskPrompt } from './orchestrator.js';

describe('complexity', () => {
  const rows: [string | undefined, string | null][] = [
    ['COMPLEX', 'COMPLEX'],
    ['This is a simple one.', 'SIMPLE'],
    ['moderate, I think', 'MODERATE'],
    ['It is hard to say', null],
    ['SIMPLEX', null],
    [undefined, null],
  ];
  it.each(rows)('%j → %s', (text, level) => expect(parseComplexity(text)).toBe(level));
});

describe('decomposition', () => {
  const task = 'the task';
  const json = (v: unknown) => JSON.stringify(v);
  it('takes a valid DAG, numbering subtasks t1.. and turning numbers into ids', () => {
    const d = parseDecomposition(json({ subtasks: [{ subtask: 'a', type: 'code', depends_on: [] }, { subtask: 'b', type: 'reasoning', depends_on: [1] }] }), task, 5);
    expect(d).toEqual({
      source: 'model',
      subtasks: [
        { id: 't1', subtask: 'a', type: 'code', depends_on: [] },
        { id: 't2', subtask: 'b', type: 'reasoning', depends_on: ['t1'] },
      ],
    });
  });
  const fallbacks: [string, string | undefined, RegExp][] = [
    ['the step failed', undefined, /the decomposition step failed/],
    ['not JSON', '{"subtasks": [', /not valid JSON/],
    ['a wrong shape', json({ subtasks: [{ subtask: 'a', type: 'poetry', depends_on: [] }] }), /subtasks\.0\.type/],
    ['no subtasks', json({ subtasks: [] }), /subtasks/],
    ['a dependency out of range', json({ subtasks: [{ subtask: 'a', type: 'code', depends_on: [3] }] }), /depends on 3, which does not exist/],
    ['a cycle', json({ subtasks: [{ subtask: 'a', type: 'code', depends_on: [2] }, { subtask: 'b', type: 'code', depends_on: [1] }] }), /dependency cycle/],
  ];
  it.each(fallbacks)('falls back to the whole task as one subtask when %s', (_why, text, problem) => {
    const d = parseDecomposition(text, task, 5);
    expect(d.source).toBe('fallback');
    expect(d.problem).toMatch(problem);
    expect(d.subtasks).toEqual([{ id: 't1', subtask: task, type: 'general', depends_on: [] }]);
  });
  it('drops self-dependencies and cuts extra subtasks, saying so', () => {
    const many = Array.from({ length: 4 }, (_, i) => ({ subtask: `s${i}`, type: 'general', depends_on: [i + 1] }));
    const d = parseDecomposition(json({ subtasks: many }), task, 3);
    expect(d.subtasks.map((s) => `${s.id}<${s.depends_on.join(',')}`)).toEqual(['t1<', 't2<', 't3<']);
    expect(d.problem).toMatch(/cut 1 subtasks beyond max_subtasks 3.*t1 depended on itself/);
  });
  it('asks for what it validates', () => {
    const schema = decompositionSchema(4) as any;
    expect(schema.properties.subtasks).toMatchObject({ minItems: 2, maxItems: 4 });
    expect(schema.properties.subtasks.items.properties.type.enum).toEqual(['code', 'math', 'reasoning', 'general']);
  });
  it('puts the subtask last in its prompt, after earlier results', () => {
    const p = subtaskPrompt('T', { id: 't2', subtask: 'do b', type: 'code', depends_on: ['t1'] }, [{ subtask: { id: 't1', subtask: 'do a', type: 'general', depends_on: [] }, answer: 'A' }]);
    expect(p).toBe('You are solving one part of a larger task.\nOverall task: T\nResults of earlier parts:\n- t1 (do a): A\nYour part (code): do b');
  });
});

describe('POST /v1/orchestrate body', () => {
  const none = { pools: { code: [], math: [], reasoning: [], general: [] } };
  it('fills models from configuration, and lets the request override them', () => {
    const conf = { light_model: 'l', heavy_model: 'h', pools: { code: ['c1', 'c2'], math: [], reasoning: [], general: ['g'] } };
    const r = parseOrchestrateRequest({ prompt: 'p' }, conf);
    expect(r.ok && r.value.settings).toMatchObject({ light_model: 'l', heavy_model: 'h', pools: { code: ['c1', 'c2'], reasoning: ['h'], general: ['g'] }, synthesis: 'llm', max_subtasks: 5 });
    const o = parseOrchestrateRequest({ prompt: 'p', light_model: 'x', models: ['m1', 'm1', 'm2'] }, conf);
    expect(o.ok && o.value.settings).toMatchObject({ light_model: 'x', heavy_model: 'h', pools: { code: ['m1', 'm2'], reasoning: ['m1', 'm2'], general: ['m1', 'm2'] } });
    const only = parseOrchestrateRequest({ prompt: 'p', light_model: 'x' }, none);
    expect(only.ok && only.value.settings).toMatchObject({ light_model: 'x', heavy_model: 'x', pools: { code: ['x'] } });
  });
  it('routes each subtask type to the catalog models that have its capability, and tells the decomposition which', () => {
    const catalog = [
      { model: 'coder:7b', capabilities: ['code'] },
      { model: 'mathstral:7b', capabilities: ['math', 'reasoning'] },
      { model: 'qwen3:14b', capabilities: ['general', 'code'] },
    ];
    // ORCH_MODELS_<TYPE> wins over the catalog for its type.
    const pools = catalogPools(catalog, { code: [], math: [], reasoning: ['thinker:32b'], general: [] });
    expect(pools).toEqual({ code: ['coder:7b', 'qwen3:14b'], math: ['mathstral:7b'], reasoning: ['thinker:32b'], general: ['qwen3:14b'] });
    const r = parseOrchestrateRequest({ prompt: 'p' }, { light_model: 'l', heavy_model: 'h', pools: { ...pools, general: [] } });
    expect(r.ok && r.value.settings.pools).toEqual({ code: ['coder:7b', 'qwen3:14b'], math: ['mathstral:7b'], reasoning: ['thinker:32b'], general: ['h'] });
    const specialists = r.ok ? r.value.settings.specialists : undefined;
    expect(specialists).toEqual({ code: ['coder:7b', 'qwen3:14b'], math: ['mathstral:7b'], reasoning: ['thinker:32b'] });
    const prompt = decomposePrompt('prove it and code it', 4, specialists);
    expect(prompt).toContain('("code", "math", "reasoning" or "general")');
    expect(prompt).toContain('Each type runs on models suited to it (code: coder:7b, qwen3:14b; math: mathstral:7b; reasoning: thinker:32b).');
    // Without configured pools (or with request models) the prompt names no specialists.
    expect(decomposePrompt('t', 4)).not.toContain('models suited');
    const o = parseOrchestrateRequest({ prompt: 'p', models: ['m'] }, { light_model: 'l', pools });
    expect(o.ok && o.value.settings.specialists).toBeUndefined();
    // A math subtask of the decomposition is a valid type.
    expect(parseDecomposition(JSON.stringify({ subtasks: [{ subtask: 'solve x^2 = 4', type: 'math', depends_on: [] }, { subtask: 'explain', type: 'general', depends_on: [1] }] }), 'task', 4)).toMatchObject({ source: 'model', subtasks: [{ type: 'math' }, { type: 'general' }] });
  });
  it('names the missing model and the variable that sets it', () => {
    const r = parseOrchestrateRequest({ prompt: 'p' }, none);
    expect(!r.ok && r.problems).toEqual([{ field: 'light_model', problem: expect.stringMatching(/set ORCH_LIGHT_MODEL/) }]);
    const bad = parseOrchestrateRequest({ prompt: 'p', light_model: 'x', max_subtasks: 50, weights: { a: -1 } }, none);
    expect(!bad.ok && bad.problems.map((p) => p.field)).toEqual(['weights.a', 'max_subtasks']);
  });
});
