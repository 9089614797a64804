import { describe, expect, it } from 'vitest';
import { FleetError } from '../errors.js';
import { compileWorkflow } from './compile.js';
import { loadBuiltinWorkflow } from '../registry/workflow-files.js';

function errorOf(raw: unknown): FleetError {
  try {
    compileWorkflow(raw);
  } catch (err) {
    if (err instanceof FleetError) return err;
    throw err;
  }
  throw new Error('expected compileWorkflow to throw');
}

const base = { name: 'wf', agents: ['planner_agent', 'coder'] };

describe('compileWorkflow', () => {
  it('accepts planner and planner_agent, fills defaults and converts seconds to ms', () => {
    const def = compileWorkflow({ ...base, phases: [{ name: 'plan', agent: 'planner_agent', timeout: 2.5 }, { name: 'code', agent: 'coder', depends_on: ['plan'] }] });
    expect(def.agents).toEqual(['planner', 'coder']);
    expect(def.phases[0]).toMatchObject({ name: 'plan', agent: 'planner', timeoutMs: 2500, retries: 2, continueOnError: false });
    expect(def.phases[1]?.dependsOn).toEqual([{ phase: 'plan', optional: false }]);
  });

  it('orders phases so dependencies come first', () => {
    const def = compileWorkflow({ ...base, phases: [{ name: 'code', agent: 'coder', depends_on: ['plan'] }, { name: 'plan', agent: 'planner' }] });
    expect(def.phases.map((p) => p.name)).toEqual(['plan', 'code']);
  });

  it.each([
    ['a cycle', [{ name: 'a', agent: 'coder', depends_on: ['b'] }, { name: 'b', agent: 'coder', depends_on: ['a'] }], /dependency cycle: a -> b -> a/],
    ['an unknown dependency', [{ name: 'a', agent: 'coder', depends_on: ['nope'] }], /phases\[0\]\.depends_on\[0\]: phase "a": depends_on "nope" is not a phase/],
    ['a self dependency', [{ name: 'a', agent: 'coder', depends_on: ['a'] }], /phase "a" depends on itself/],
    ['an unknown agent', [{ name: 'a', agent: 'tester' }], /phases\[0\]\.agent: phase "a": agent "tester" is not in the workflow's agents list/],
    ['a duplicate phase', [{ name: 'a', agent: 'coder' }, { name: 'a', agent: 'coder' }], /phases\[1\]\.name: duplicate phase name "a"/],
    ['an unknown field', [{ name: 'a', agent: 'coder', timout: 3 }], /phases\[0\]\.timout: unknown field "timout"/],
    ['a wrong type', [{ name: 'a', agent: 'coder', retries: 'two' }], /phases\[0\]\.retries/],
  ])('rejects %s, naming the phase or path', (_label, phases, message) => {
    const err = errorOf({ ...base, phases });
    expect(err.code).toBe('INVALID_WORKFLOW');
    expect(err.message).toMatch(message);
  });

  it('loads the built-in software-delivery workflow', async () => {
    const def = await loadBuiltinWorkflow('software-delivery');
    expect(def.phases.map((p) => `${p.name}:${p.agent}`)).toEqual(['planning:planner', 'design:designer', 'implementation:coder', 'review:reviewer']);
  });
});
