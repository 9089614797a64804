import { describe, expect, it } from 'vitest';
import type { SerializedFleetError } from '../errors.js';
import { compileWorkflow } from '../workflow/compile.js';
import type { WorkflowDefinition } from '../workflow/definition.js';
import { decide, initialRunState } from './decide.js';
import { decideBatch, type BatchEntry } from './decide-batch.js';
import type { RunState, SchedulerEvent } from './types.js';

const usage = { input_tokens: 1, output_tokens: 1 };
const permanent: SerializedFleetError = { code: 'PROVIDER_AUTH', message: 'bad key', category: 'provider', retryable: false };
const context = { requirements: 'r', variables: {}, outputs: {} };

function workflow(phases: Array<Record<string, unknown>>, extra: Record<string, unknown> = {}): WorkflowDefinition {
  return compileWorkflow({ name: 'wf', agents: ['worker'], phases: phases.map((p) => ({ agent: 'worker', ...p })), ...extra });
}

const done = (phase: string, iteration = 1): SchedulerEvent => ({ type: 'phase_completed', at: 5, phase, iteration, attempt: 1, usage, model: 'm', startedAt: 4 });
const failed = (phase: string): SchedulerEvent => ({ type: 'phase_attempt_failed', at: 6, phase, iteration: 1, attempt: 1, error: permanent, willRetry: false, usage, startedAt: 4 });

/** The run after `events`, decided one at a time. */
function after(def: WorkflowDefinition, events: SchedulerEvent[]): RunState {
  let state = initialRunState(def, 0);
  for (const event of events) state = decide(def, state, event).state;
  return state;
}

const entry = (event: SchedulerEvent, output?: unknown): BatchEntry => ({ events: [event], ...(output !== undefined && 'phase' in event ? { output: { phase: event.phase, value: output } } : {}) });

describe('decideBatch: the group commit merge rule', () => {
  const branches = ['b1', 'b2', 'b3'];
  const fanIn = workflow([{ name: 'plan' }, ...branches.map((name) => ({ name, depends_on: ['plan'] })), { name: 'review', depends_on: branches }]);

  it('a fan-in arriving together is one decision: the join is queued once, and a zombie repeat is refused with its output dropped', () => {
    const state = after(fanIn, [{ type: 'run_started', at: 0 }, done('plan')]);
    const d = decideBatch(fanIn, state, [...branches.map((b) => entry(done(b), { by: b })), entry(done('b1'), { by: 'zombie' })], context);
    expect(d.accepted).toBe(true);
    expect(d.entries).toEqual([true, true, true, false]);
    expect(d.actions).toEqual([{ type: 'enqueue_phase', phase: 'review', iteration: 1, agent: 'worker' }]);
    expect(d.outputs).toEqual({ b1: { by: 'b1' }, b2: { by: 'b2' }, b3: { by: 'b3' } });
    expect(d.events.filter((e) => e.type === 'phase_completed').map((e) => ('phase' in e ? e.phase : ''))).toEqual(branches);
    expect(d.state.version).toBe(state.version + 3);
  });

  it('a failure that stops the run drops the enqueue an earlier completion of the batch asked for, and the cancel of that never-added job', () => {
    const def = workflow([{ name: 'a' }, { name: 'b' }, { name: 'x', depends_on: ['a'] }]);
    const state = after(def, [{ type: 'run_started', at: 0 }]);
    // Decided one at a time, a's completion queues x and b's failure then cancels it.
    const one = decide(def, state, done('a'));
    expect(one.actions).toEqual([{ type: 'enqueue_phase', phase: 'x', iteration: 1, agent: 'worker' }]);
    expect(decide(def, one.state, failed('b')).actions).toContainEqual({ type: 'cancel_phase', phase: 'x', iteration: 1 });

    const d = decideBatch(def, state, [entry(done('a'), {}), entry(failed('b'))], context);
    expect(d.entries).toEqual([true, true]);
    expect(d.state.status).toBe('failed');
    expect(d.state.phases.x?.status).toBe('cancelled');
    expect(d.actions.filter((a) => 'phase' in a && a.phase === 'x')).toEqual([]);
    expect(d.actions).toContainEqual({ type: 'finish_run', status: 'failed' });
  });

  it('keeps the cancel of a job added before the batch', () => {
    const def = workflow([{ name: 'a' }, { name: 'b' }, { name: 'c' }]);
    const state = after(def, [{ type: 'run_started', at: 0 }]);
    const d = decideBatch(def, state, [entry(done('a'), {}), entry(failed('b'))], context);
    expect(d.actions.filter((a) => a.type === 'cancel_phase')).toEqual([{ type: 'cancel_phase', phase: 'c', iteration: 1 }]);
  });

  it("an entry's output is in the context its own events and later entries see, a refused entry's in none", () => {
    const def = workflow([{ name: 'a' }, { name: 'b' }, { name: 'go', depends_on: ['a', 'b'], condition: '{{a.verdict}} == "yes"' }]);
    const state = after(def, [{ type: 'run_started', at: 0 }, done('a')]);
    // a's zombie repeat (refused) says "no"; its output must not reach b's decision, which readies `go`.
    const d = decideBatch(def, state, [entry(done('a'), { verdict: 'no' }), entry(done('b'), {})], { ...context, outputs: { a: { verdict: 'yes' } } });
    expect(d.entries).toEqual([false, true]);
    expect(d.outputs).toEqual({ b: {} });
    expect(d.actions).toEqual([{ type: 'enqueue_phase', phase: 'go', iteration: 1, agent: 'worker' }]);
  });

  it('an entry of several events (a start and its outcome) is accepted when any is; nothing accepted leaves the state as it was', () => {
    const def = workflow([{ name: 'a' }]);
    const state = after(def, [{ type: 'run_started', at: 0 }]);
    const started: SchedulerEvent = { type: 'phase_started', at: 3, phase: 'a', iteration: 1, attempt: 1 };
    const d = decideBatch(def, state, [{ events: [started, done('a')], output: { phase: 'a', value: 1 } }], context);
    expect(d.entries).toEqual([true]);
    expect(d.state.status).toBe('completed');
    expect(d.actions).toEqual([{ type: 'finish_run', status: 'completed' }]);

    const none = decideBatch(def, d.state, [entry(done('a'), 2)], context);
    expect(none).toMatchObject({ accepted: false, entries: [false], actions: [], events: [], outputs: {} });
    expect(none.state).toBe(d.state);
  });
});
