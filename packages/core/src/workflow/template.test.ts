import { describe, expect, it } from 'vitest';
import type { TemplateContext } from './context.js';
import { renderTemplate } from './template.js';

const ctx: TemplateContext = {
  requirements: 'Build a todo API',
  variables: { repo: 'acme/api', env: 'staging' },
  outputs: {
    plan: { tasks: [{ id: 'T1', title: 'Accounts' }, { id: 'T2', title: 'Reminders' }], summary: 'two tasks' },
    hostile: { text: 'costs $& and $1 and $$ then {{requirements}} and {{plan.summary}}' },
  },
  errors: [],
};

describe('renderTemplate', () => {
  it.each([
    ['{{requirements}}', 'Build a todo API'],
    ['deploy {{repo}} to {{ env }}', 'deploy acme/api to staging'],
    ['{{plan.summary}}', 'two tasks'],
    ['first: {{plan.tasks[0].title}}, second: {{plan.tasks[1].id}}', 'first: Accounts, second: T2'],
    ['{{plan.tasks[0]}}', '{"id":"T1","title":"Accounts"}'],
    ['missing: [{{plan.tasks[9].title}}] [{{nope}}] [{{plan.nope.deeper}}]', 'missing: [] [] []'],
  ])('renders %s', (template, expected) => {
    expect(renderTemplate(template, ctx)).toBe(expected);
  });

  it('inserts hostile text literally, in one pass: no $& patterns, no re-expansion', () => {
    expect(renderTemplate('<{{hostile.text}}>', ctx)).toBe('<costs $& and $1 and $$ then {{requirements}} and {{plan.summary}}>');
  });

  it('leaves text that is not a path as written', () => {
    expect(renderTemplate('{{ 1 + 1 }} and {{a b}}', ctx)).toBe('{{ 1 + 1 }} and {{a b}}');
  });
});
