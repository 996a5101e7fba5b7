// Workflow and fan-out bodies: validation that names the problem, templates, cycles, step plans. Table-driven.
import { describe, expect, it } from 'vitest';
import { findCycle } from './dag.js';
import { distributeSteps, parseDistributeRequest, parseWorkflowRequest, stepDefOf } from './spec.js';
import { renderTemplate, templateRefs } from './template.js';

const s = (id: string, deps: string[] = [], prompt = 'x') => ({ id, model: 'm', prompt, depends_on: deps });

describe('templates', () => {
  it('finds input and step references, and anything else as unknown', () => {
    expect(templateRefs('a {{input.x}} b {{ steps.plan.output }} {{steps.plan}} {{env.HOME}}')).toEqual({
      refs: [
        { kind: 'input', name: 'x', text: '{{input.x}}' },
        { kind: 'step', step: 'plan', text: '{{ steps.plan.output }}' },
      ],
      unknown: ['{{steps.plan}}', '{{env.HOME}}'],
    });
  });
  it('renders values and outputs; leaves unknown forms alone', () => {
    expect(renderTemplate('{{input.n}}+{{steps.a.output}}={{steps.b.output}}{{x}}', { input: { n: 2 }, outputs: { a: 'A' } })).toBe('2+A={{x}}');
  });
});

describe('cycles', () => {
  const rows: [string, { id: string; depends_on: string[] }[], string[] | null][] = [
    ['none in a diamond', [s('a'), s('b', ['a']), s('c', ['a']), s('d', ['b', 'c'])], null],
    ['two steps', [s('a', ['b']), s('b', ['a'])], ['a', 'b', 'a']],
    ['three steps, in execution order', [s('a', ['c']), s('b', ['a']), s('c', ['b'])], ['a', 'b', 'c', 'a']],
    ['behind a valid prefix', [s('root'), s('x', ['root', 'y']), s('y', ['x'])], ['x', 'y', 'x']],
  ];
  it.each(rows)('%s', (_why, nodes, cycle) => expect(findCycle(nodes)).toEqual(cycle));
});

describe('POST /v1/workflows body', () => {
  const problems = (body: unknown) => {
    const r = parseWorkflowRequest(body);
    return r.ok ? [] : r.problems.map((p) => `${p.field}: ${p.problem}`);
  };
  const rows: [string, unknown, RegExp][] = [
    ['not an object', [], /\(body\): must be a JSON object/],
    ['no steps', {}, /steps: is required/],
    ['a cycle', { steps: [s('a', ['b']), s('b', ['a'])] }, /steps: dependency cycle: a → b → a/],
    ['an unknown dependency', { steps: [s('a', ['ghost'])] }, /steps\.0\.depends_on: unknown step "ghost"/],
    ['a duplicate id', { steps: [s('a'), s('a')] }, /steps\.1\.id: duplicate step id "a" \(also steps\.0\)/],
    ['an unknown input', { steps: [s('a', [], '{{input.who}}')] }, /steps\.0\.prompt: unknown template variable \{\{input\.who\}\}: input has no values/],
    ['a step that does not run before', { steps: [s('a'), s('b', [], '{{steps.a.output}}')] }, /step "b" does not depend on "a"/],
    ['a missing step in a template', { steps: [s('a', [], '{{steps.zz.output}}')] }, /names an unknown step "zz"/],
    ['chat without messages', { steps: [{ id: 'a', type: 'chat', model: 'm' }] }, /steps\.0\.messages: is required for a chat step/],
    ['a prompt on a chat step', { steps: [{ id: 'a', type: 'chat', model: 'm', prompt: 'x', messages: [{ role: 'user', content: 'y' }] }] }, /steps\.0\.prompt: is for generate steps/],
    ['a bad template in a message', { steps: [{ id: 'a', type: 'chat', model: 'm', messages: [{ role: 'user', content: '{{nope}}' }] }] }, /steps\.0\.messages\.0\.content: unknown template variable \{\{nope\}\}/],
    ['a bad priority', { steps: [s('a')], priority: 11 }, /priority: must be at most 10/],
  ];
  it.each(rows)('rejects %s', (_why, body, re) => expect(problems(body).join('\n')).toMatch(re));

  it('accepts a DAG whose templates reference transitive ancestors, and stores each step’s call', () => {
    const r = parseWorkflowRequest({ input: { t: 'x' }, steps: [s('a', [], '{{input.t}}'), s('b', ['a']), s('c', ['b'], '{{steps.a.output}} {{steps.b.output}}')] });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.steps.map(stepDefOf)[2]).toEqual({ id: 'c', call: { type: 'generate', model: 'm', prompt: '{{steps.a.output}} {{steps.b.output}}' }, depends_on: ['b'], optional: false, routing: {} });
  });
});

describe('POST /v1/distribute body', () => {
  it('pairs prompts and models (cross or zip) as optional steps', () => {
    const cross = parseDistributeRequest({ prompts: ['p', 'q'], models: ['a', 'b', 'c'], options: { temperature: 0 } });
    expect(cross.ok && distributeSteps(cross.value).map((x) => `${x.id}:${x.call.type === 'generate' ? x.call.prompt : ''}@${x.call.model}:${x.optional}`)).toEqual([
      'p0-m0:p@a:true',
      'p0-m1:p@b:true',
      'p0-m2:p@c:true',
      'p1-m0:q@a:true',
      'p1-m1:q@b:true',
      'p1-m2:q@c:true',
    ]);
    const chat = parseDistributeRequest({ prompts: ['p'], models: ['a'], type: 'chat', system: 'sys', pairing: 'zip' });
    expect(chat.ok && distributeSteps(chat.value)[0]!.call).toEqual({ type: 'chat', model: 'a', messages: [{ role: 'system', content: 'sys' }, { role: 'user', content: 'p' }] });
  });
  it('names what is wrong', () => {
    const r = parseDistributeRequest({ prompts: ['p'], models: ['a', 'b'], pairing: 'zip' });
    expect(!r.ok && r.problems[0]).toEqual({ field: 'models', problem: expect.stringMatching(/needs as many models as prompts \(1 prompts, 2 models\)/) });
    const big = parseDistributeRequest({ prompts: Array(30).fill('p'), models: Array(10).fill('m') });
    expect(!big.ok && big.problems[0]!.problem).toMatch(/300 prompt × model pairs; at most 200/);
  });
});
