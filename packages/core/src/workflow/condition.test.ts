import { describe, expect, it } from 'vitest';
import { ConditionSyntaxError, evaluateCondition, parseExpression } from './condition.js';
import type { TemplateContext } from './context.js';

const ctx: TemplateContext = {
  requirements: 'Build an API',
  variables: { env: 'staging', count: '3' },
  outputs: { review: { verdict: 'changes_requested', findings: [{ severity: 'major' }], score: 7 }, plan: { open_questions: [] } },
  errors: [{ phase: 'x', error: { code: 'INTERNAL', message: 'boom' } }],
};
const holds = (source: string) => evaluateCondition(parseExpression(source), ctx);

describe('condition expressions', () => {
  it.each([
    ["{{review.verdict}} == 'changes_requested'", true],
    ['{{review.verdict}} == "approve"', false],
    ["{{review.verdict}} != 'approve'", true],
    ['{{review.score}} > 5 and {{review.score}} <= 7', true],
    ['{{review.score}} >= 8 or {{env}} == "staging"', true],
    ['not {{plan.open_questions}}', true],
    ['!({{review.score}} < 3) && true', true],
    ['{{review.findings[0].severity}} == "major"', true],
    ['{{count}} == 3', true],
    ['True and not False', true],
    ['{{missing.path}} == None', true],
    ['{{missing.path}} == "x"', false],
  ])('%s → %s', (source, expected) => {
    expect(holds(source)).toBe(expected);
  });

  it.each([
    ['review.verdict == "x"', /paths into the context go in braces/],
    ['verdict == "x"', /bare name "verdict"/],
    ['{{review.verdict}}.constructor', /paths into the context go in braces/],
    ['alert(1)', /not supported/],
    ['{{review.verdict}} ==', /cannot parse/],
    ['{{ 1+1 }} == 2', /not a path/],
  ])('rejects %s', (source, message) => {
    expect(() => parseExpression(source)).toThrow(ConditionSyntaxError);
    expect(() => parseExpression(source)).toThrow(message);
  });

  it('evaluates structured tests', () => {
    expect(evaluateCondition({ kind: 'result_contains', phase: 'review', value: 'changes_requested' }, ctx)).toBe(true);
    expect(evaluateCondition({ kind: 'result_contains', phase: 'plan', value: 'nothing' }, ctx)).toBe(false);
    expect(evaluateCondition({ kind: 'error_count', maxErrors: 2 }, ctx)).toBe(true);
    expect(evaluateCondition({ kind: 'error_count', maxErrors: 1 }, ctx)).toBe(false);
  });
});
