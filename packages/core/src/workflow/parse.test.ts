import { describe, expect, it } from 'vitest';
import { FleetError } from '../errors.js';
import { compileWorkflow } from './compile.js';
import { parseWorkflowText } from './parse.js';

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FleetError);
    return (err as FleetError).message;
  }
  throw new Error('expected a FleetError');
}

/** A 101 KB YAML workflow whose 99 aliases of one 100 KB anchor expand to 10 MB of variables. */
function aliasBomb(): string {
  const vars = Array.from({ length: 99 }, (_, i) => `  v${i}: *big`).join('\n');
  return `name: bomb\nagents: [planner]\nanchor: &big "${'x'.repeat(100_000)}"\nvariables:\n${vars}\nphases:\n  - name: p\n    agent: planner\n`;
}

describe('a YAML alias bomb', () => {
  it('a 101 KB file that expands to 10 MB is refused naming the limit, before it is compiled', () => {
    const text = aliasBomb();
    expect(Buffer.byteLength(text)).toBeGreaterThan(100_000);
    expect(Buffer.byteLength(text)).toBeLessThan(102_000);
    const message = messageOf(() => parseWorkflowText(text, 'bomb.yaml'));
    expect(message).toMatch(/^bomb\.yaml: expands to 100\d{5} bytes of JSON once its YAML aliases are resolved \(10\d{4} bytes of text\); the limit for a workflow is 1048576 bytes \(1 MiB\)/);
    // The yaml library's own bound: a hundredth alias is refused.
    const hundred = text.replace('phases:', '  v99: *big\nphases:');
    expect(messageOf(() => parseWorkflowText(hundred, 'bomb.yaml'))).toMatch(/^bomb\.yaml: uses more than 99 YAML aliases; the limit for a workflow is 99 alias uses: use fewer aliases/);
  });

  it("a workflow's default variables get a run's limits: 200 KB of them is refused naming the 64 KiB limit", () => {
    const variables = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`v${i}`, 'x'.repeat(10_000)]));
    const message = messageOf(() => compileWorkflow({ name: 'big-vars', agents: ['planner'], variables, phases: [{ name: 'p', agent: 'planner' }] }));
    expect(message).toMatch(/variables are 200\d{3} bytes in all; the limit is 65536 bytes \(64 KiB\)/);
  });
});

describe('workflow text a person wrote', () => {
  it('a YAML error shows the line and column, the offending line and a caret', () => {
    const message = messageOf(() => parseWorkflowText('name: y\nagents: [planner]\nphases:\n  - name: p\n    retries: [1\n', 'wf.yaml'));
    expect(message).toMatch(/^wf\.yaml: not valid YAML at line \d+, column \d+: /);
    expect(message).not.toMatch(/:\n?$/);
    expect(message).toContain('\n');
    expect(message).toMatch(/\^/);
  });

  it('a .json file is strict JSON: a trailing comma is refused with its line, column and a caret', () => {
    const text = '{\n  "name": "j",\n  "agents": ["planner"],\n  "phases": [{"name": "p", "agent": "planner"},]\n}';
    const message = messageOf(() => parseWorkflowText(text, 'wf.json'));
    expect(message).toContain('wf.json: not valid JSON at line 4, column 48');
    expect(message).toContain('no trailing commas');
    expect(message.split('\n').slice(-2)).toEqual(['  "phases": [{"name": "p", "agent": "planner"},]', `${' '.repeat(47)}^`]);
    // The same text is fine as YAML, which allows it.
    expect(parseWorkflowText(text, 'wf.yaml')).toMatchObject({ name: 'j' });
  });

  it('every schema problem at once, in plain words, with "did you mean" for unknown fields', () => {
    const message = messageOf(() => compileWorkflow({ agents: ['planner'], phases: [{ name: 'p', agent: 'planner', timout: 5, retries: 'x', depend_on: [] }] }));
    expect(message.split('\n')).toEqual([
      'workflow is not valid:',
      'name: "name" is required and missing; add it',
      'phases[0].retries: must be a number, got the string "x"',
      'phases[0].timout: unknown field "timout" (did you mean "timeout"?); remove it or check the spelling',
      'phases[0].depend_on: unknown field "depend_on" (did you mean "depends_on"?); remove it or check the spelling',
    ]);
  });

  it('a misspelt field does not hide the problems of the graph', () => {
    const message = messageOf(() =>
      compileWorkflow({
        name: 't',
        agents: ['planner'],
        phases: [
          { name: 'plan', agent: 'planner', timout: 5 },
          { name: 'code', agent: 'coder', depends_on: ['plann'] },
        ],
      }),
    );
    expect(message).toContain('phases[0].timout: unknown field "timout" (did you mean "timeout"?)');
    expect(message).toContain('phases[1].agent: phase "code": agent "coder" is not in the workflow\'s agents list');
    expect(message).toContain('phases[1].depends_on[0]: phase "code": depends_on "plann" is not a phase of this workflow');
  });

  it('an unknown top-level field is named by its path too', () => {
    const message = messageOf(() => compileWorkflow({ name: 't', agents: ['planner'], phases: [{ name: 'p', agent: 'planner' }], phase: [] }));
    expect(message.split('\n')).toContain('phase: unknown field "phase" (did you mean "phases"?); remove it or check the spelling');
  });
});
