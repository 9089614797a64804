import { describe, expect, it } from 'vitest';
import { compileWorkflow } from './compile.js';

describe('tool phases in the workflow format', () => {
  it('compile to kind "tool" on the tools queue, with parameters kept as written', () => {
    const def = compileWorkflow({
      name: 'w',
      agents: ['planner'],
      variables: { base_url: 'http://127.0.0.1:8080' },
      phases: [
        { name: 'plan', agent: 'planner' },
        { name: 'fetch', tool: 'http_request', parameters: { url: '{{base_url}}/issues/{{plan.tasks[0].id}}' }, depends_on: ['plan'], timeout: 5 },
      ],
    });
    expect(def.phases[1]).toMatchObject({ kind: 'tool', agent: 'tools', tool: 'http_request', parameters: { url: '{{base_url}}/issues/{{plan.tasks[0].id}}' }, timeoutMs: 5000 });
    expect(def.phases[0]).not.toHaveProperty('tool');
  });

  it('a workflow of tool phases only needs no agents list', () => {
    expect(compileWorkflow({ name: 'w', phases: [{ name: 'a', tool: 'render_template', parameters: { template: 'x' } }] }).agents).toEqual([]);
    expect(() => compileWorkflow({ name: 'w', phases: [{ name: 'a', type: 'approval' }] })).toThrow(/agents: list at least one agent role/);
  });

  it('refuses a tool with an agent, parameters without a tool, and references to unknown phases in parameters', () => {
    expect(() => compileWorkflow({ name: 'w', agents: ['planner'], phases: [{ name: 'a', agent: 'planner', tool: 'http_request' }] })).toThrow(/use only one of "agent", "agent_select", "workflow" and "tool"/);
    expect(() => compileWorkflow({ name: 'w', agents: ['planner'], phases: [{ name: 'a', agent: 'planner', parameters: { x: 1 } }] })).toThrow(/"parameters" belong to a tool phase/);
    expect(() => compileWorkflow({ name: 'w', phases: [{ name: 'a', tool: 'http_request', parameters: { headers: { h: '{{nope.field}}' } } }] })).toThrow(
      /phases\[0\]\.parameters\.headers\.h: phase "a": \{\{nope…\}\} refers to "nope"/,
    );
  });
});
