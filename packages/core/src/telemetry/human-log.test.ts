import { afterEach, describe, expect, it } from 'vitest';
import { OnceWriter, evictionPolicyWarning, humanLogLine, routeConsoleWarnings } from './human-log.js';

describe('humanLogLine', () => {
  it('renders a pino line as one short line with the run, phase, attempt and error', () => {
    const line = JSON.stringify({ level: 'warn', name: 'agents', run_id: 'r1', phase: 'plan', attempt: 2, msg: 'phase attempt failed', error: { code: 'PROVIDER_OVERLOADED', message: 'Overloaded' } });
    expect(humanLogLine(line)).toBe('warning: phase attempt failed (run r1, phase plan, attempt 2): PROVIDER_OVERLOADED: Overloaded');
    expect(humanLogLine(JSON.stringify({ level: 'error', name: 'agents', msg: 'connect ECONNREFUSED', err: { message: 'connect ECONNREFUSED' } }))).toBe('error: connect ECONNREFUSED');
    expect(humanLogLine(JSON.stringify({ level: 'info', name: 'manager', msg: 'manager started' }))).toBe('manager: manager started');
    expect(humanLogLine('not json\n')).toBe('not json');
  });
});

describe('OnceWriter', () => {
  it('prints each distinct line once', () => {
    const out: string[] = [];
    const w = new OnceWriter((l) => out.push(l));
    expect([w.print('a'), w.print('b'), w.print('a')]).toEqual([true, true, false]);
    expect(out).toEqual(['a', 'b']);
    const live: string[] = [];
    w.redirect((l) => live.push(l));
    w.print('c');
    w.redirect(undefined);
    w.print('d');
    expect([out, live]).toEqual([['a', 'b', 'd'], ['c']]);
  });
});

describe('routeConsoleWarnings', () => {
  let restore: (() => void) | undefined;
  afterEach(() => restore?.());

  it("says BullMQ's eviction warning (one per connection) once, in the manager's words", () => {
    const got: string[] = [];
    restore = routeConsoleWarnings((m) => got.push(m));
    for (let i = 0; i < 9; i++) console.warn('IMPORTANT! Eviction policy is allkeys-lru. It should be "noeviction"');
    console.warn('something else %d', 7);
    expect(got).toEqual([evictionPolicyWarning('allkeys-lru'), 'something else 7']);
  });
});
