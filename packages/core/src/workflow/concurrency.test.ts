import { describe, expect, it } from 'vitest';
import { FleetError } from '../errors.js';
import { compileWorkflow } from './compile.js';
import { resolveConcurrency, validatePriority } from './concurrency.js';

const base = { name: 'wf', agents: ['planner'], phases: [{ name: 'plan', agent: 'planner' }] };

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof FleetError) return err.message;
    throw err;
  }
  throw new Error('expected a FleetError');
}

describe('concurrency and priority in a workflow', () => {
  it('compiles `concurrency` and `priority` as written; leaves them out when absent', () => {
    const def = compileWorkflow({ ...base, concurrency: { key: '{{tenant}}', limit: 2 }, priority: 8 });
    expect(def.concurrency).toEqual({ key: '{{tenant}}', limit: 2 });
    expect(def.priority).toBe(8);
    const keyOnly = compileWorkflow({ ...base, concurrency: { key: 'all' } });
    expect(keyOnly.concurrency).toEqual({ key: 'all' });
    const plain = compileWorkflow(base);
    expect('concurrency' in plain).toBe(false);
    expect('priority' in plain).toBe(false);
  });

  it('rejects a bad limit, a bad priority and unknown fields, naming each', () => {
    expect(messageOf(() => compileWorkflow({ ...base, concurrency: { key: '{{tenant}}', limit: 0 } }))).toMatch(/concurrency\.limit.*at least 1/);
    expect(messageOf(() => compileWorkflow({ ...base, concurrency: { key: '{{tenant}}', limit: 1.5 } }))).toMatch(/concurrency\.limit.*whole number/);
    expect(messageOf(() => compileWorkflow({ ...base, concurrency: { limit: 2 } }))).toMatch(/concurrency\.key/);
    expect(messageOf(() => compileWorkflow({ ...base, concurrency: { key: 'k', max: 2 } }))).toMatch(/max/);
    expect(messageOf(() => compileWorkflow({ ...base, priority: 11 }))).toMatch(/priority.*at most 10/);
    expect(messageOf(() => compileWorkflow({ ...base, priority: 0 }))).toMatch(/priority.*at least 1/);
  });
});

describe('resolveConcurrency', () => {
  it("renders the key from the run's variables and keeps the limit", () => {
    expect(resolveConcurrency({ key: 'tenant-{{tenant}}', limit: 3 }, { tenant: 'acme' }, 'reqs')).toEqual({ key: 'tenant-acme', limit: 3 });
    expect(resolveConcurrency({ key: 'fixed' }, {}, 'reqs')).toEqual({ key: 'fixed' });
  });

  it('names the missing variable when the key renders empty', () => {
    expect(messageOf(() => resolveConcurrency({ key: '{{tenant}}', limit: 1 }, {}, 'reqs'))).toBe(
      'concurrency.key "{{tenant}}" renders to an empty key for this run; set the variable "tenant" (--var tenant=...)',
    );
  });

  it('rejects keys that are too long or hold control characters', () => {
    expect(messageOf(() => resolveConcurrency({ key: '{{t}}' }, { t: 'x'.repeat(300) }, 'r'))).toMatch(/300 characters; the limit is 256/);
    expect(messageOf(() => resolveConcurrency({ key: '{{t}}' }, { t: 'a\nb' }, 'r'))).toMatch(/control characters/);
  });
});

describe('validatePriority', () => {
  it('accepts 1..10 and rejects the rest with the range in the message', () => {
    expect(() => validatePriority(1)).not.toThrow();
    expect(() => validatePriority(10)).not.toThrow();
    expect(messageOf(() => validatePriority(11))).toMatch(/at most 10/);
    expect(messageOf(() => validatePriority(2.5))).toMatch(/whole number from 1/);
    expect(messageOf(() => validatePriority('5'))).toMatch(/whole number from 1/);
  });
});
