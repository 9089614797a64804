import { describe, expect, it } from 'vitest';
import { compileWorkflow } from '../workflow/compile.js';
import type { WorkflowDefinition } from '../workflow/definition.js';
import type { SerializedFleetError } from '../errors.js';
import { decide, initialRunState } from './decide.js';
import type { RunState, SchedulerAction, SchedulerEvent } from './types.js';

const usage = { input_tokens: 10, output_tokens: 5 };
const transient: SerializedFleetError = { code: 'PROVIDER_OVERLOADED', message: 'overloaded', category: 'provider', retryable: true };
const permanent: SerializedFleetError = { code: 'PROVIDER_BAD_REQUEST', message: 'bad request', category: 'provider', retryable: false };

function workflow(phases: Array<{ name: string; depends_on?: string[]; retries?: number; continue_on_error?: boolean }>, extra: Record<string, unknown> = {}): WorkflowDefinition {
  return compileWorkflow({
    name: 'wf',
    agents: ['worker'],
    phases: phases.map((p) => ({ agent: 'worker', ...p })),
    ...extra,
  });
}

/** Feed events one by one, collecting every action; returns the final state and the actions. */
function run(def: WorkflowDefinition, events: SchedulerEvent[]): { state: RunState; actions: SchedulerAction[]; accepted: boolean[] } {
  let state = initialRunState(def, 0);
  const actions: SchedulerAction[] = [];
  const accepted: boolean[] = [];
  for (const event of events) {
    const d = decide(def, state, event);
    accepted.push(d.accepted);
    state = d.state;
    actions.push(...d.actions);
  }
  return { state, actions, accepted };
}

const started = (phase: string, at = 1, attempt = 1, iteration = 1): SchedulerEvent => ({ type: 'phase_started', at, phase, iteration, attempt });
const done = (phase: string, at = 2, attempt = 1, iteration = 1): SchedulerEvent => ({ type: 'phase_completed', at, phase, iteration, attempt, usage, model: 'm' });
const failed = (phase: string, error = permanent, willRetry = false, attempt = 1, at = 2): SchedulerEvent => ({
  type: 'phase_attempt_failed', at, phase, iteration: 1, attempt, error, willRetry, usage,
});
const enqueued = (actions: SchedulerAction[]) => actions.filter((a) => a.type === 'enqueue_phase').map((a) => (a as { phase: string }).phase);

describe('decide: dependencies', () => {
  it('queues a chain one phase at a time, in dependency order, and completes the run', () => {
    const def = workflow([{ name: 'a' }, { name: 'b', depends_on: ['a'] }, { name: 'c', depends_on: ['b'] }]);
    const r = run(def, [{ type: 'run_started', at: 0 }, done('a'), done('b'), done('c')]);
    expect(enqueued(r.actions)).toEqual(['a', 'b', 'c']);
    expect(r.state.status).toBe('completed');
    expect(r.actions.at(-1)).toEqual({ type: 'finish_run', status: 'completed' });
    expect(r.state.usage).toEqual({ input_tokens: 30, output_tokens: 15 });
  });

  it('queues independent phases together and waits for every dependency of a fan-in', () => {
    const def = workflow([{ name: 'a' }, { name: 'b' }, { name: 'join', depends_on: ['a', 'b'] }]);
    const first = run(def, [{ type: 'run_started', at: 0 }]);
    expect(enqueued(first.actions)).toEqual(['a', 'b']);
    const half = run(def, [{ type: 'run_started', at: 0 }, done('a')]);
    expect(enqueued(half.actions)).toEqual(['a', 'b']);
    const all = run(def, [{ type: 'run_started', at: 0 }, done('a'), done('b')]);
    expect(enqueued(all.actions)).toEqual(['a', 'b', 'join']);
  });
});

describe('decide: retries', () => {
  it('retries a transient failure and then completes', () => {
    const def = workflow([{ name: 'a', retries: 2 }]);
    const r = run(def, [{ type: 'run_started', at: 0 }, started('a'), failed('a', transient, true, 1), started('a', 3, 2), done('a', 4, 2)]);
    expect(r.state.phases.a).toMatchObject({ status: 'completed', attempts: 2 });
    expect(r.state.totalRetries).toBe(1);
    expect(r.state.status).toBe('completed');
  });

  it('fails the phase at once on a permanent error', () => {
    const def = workflow([{ name: 'a', retries: 5 }]);
    const r = run(def, [{ type: 'run_started', at: 0 }, failed('a', permanent, false)]);
    expect(r.state.phases.a?.status).toBe('failed');
    expect(r.state.status).toBe('failed');
  });

  it('stops retrying when the run used max_total_retries', () => {
    const def = workflow([{ name: 'a', retries: 5 }], { error_handling: { max_total_retries: 1 } });
    const r = run(def, [{ type: 'run_started', at: 0 }, failed('a', transient, true, 1), failed('a', transient, true, 2)]);
    expect(r.state.phases.a?.status).toBe('failed');
    expect(r.state.phases.a?.error?.code).toBe('RETRIES_EXHAUSTED');
  });
});

describe('decide: continue_on_error', () => {
  const branchy = (continueOnError: boolean) =>
    workflow(
      [{ name: 'a' }, { name: 'b', depends_on: ['a'] }, { name: 'independent' }],
      { error_handling: { continue_on_error: continueOnError } },
    );

  it('false: the first permanent failure fails the run and cancels phases in flight', () => {
    const r = run(branchy(false), [{ type: 'run_started', at: 0 }, started('independent'), failed('a')]);
    expect(r.state.status).toBe('failed');
    expect(r.state.phases.independent?.status).toBe('cancelled');
    expect(r.state.phases.b?.status).toBe('skipped');
    expect(r.actions).toContainEqual({ type: 'cancel_phase', phase: 'independent', iteration: 1 });
  });

  it('true: the error is recorded, dependents are skipped with the reason, the rest goes on', () => {
    const r = run(branchy(true), [{ type: 'run_started', at: 0 }, failed('a'), done('independent')]);
    expect(r.state.status).toBe('completed');
    expect(r.state.phases.b).toMatchObject({ status: 'skipped', reason: 'dependency "a" failed' });
    expect(r.state.phases.independent?.status).toBe('completed');
    expect(r.state.errors).toEqual([{ phase: 'a', error: permanent }]);
  });
});

describe('decide: fencing', () => {
  it('refuses a second completion of the same iteration (a zombie attempt) and keeps the first', () => {
    const def = workflow([{ name: 'a' }, { name: 'b' }]);
    const r = run(def, [{ type: 'run_started', at: 0 }, done('a', 5, 2), done('a', 9, 1)]);
    expect(r.accepted).toEqual([true, true, false]);
    expect(r.state.phases.a).toMatchObject({ status: 'completed', attempts: 2, finishedAt: 5 });
  });

  it('ignores every event once the run ended', () => {
    const def = workflow([{ name: 'a' }]);
    const r = run(def, [{ type: 'run_started', at: 0 }, done('a'), started('a')]);
    expect(r.accepted).toEqual([true, true, false]);
  });

  it('fails a phase whose deadline passed and cancels its job', () => {
    const def = workflow([{ name: 'a' }]);
    const r = run(def, [{ type: 'run_started', at: 0 }, started('a'), { type: 'phase_deadline', at: 99, phase: 'a', iteration: 1 }]);
    expect(r.state.phases.a?.error?.code).toBe('PHASE_TIMEOUT');
    expect(r.actions).toContainEqual({ type: 'cancel_phase', phase: 'a', iteration: 1 });
    expect(r.state.status).toBe('failed');
  });
});

describe('decide: cancellation', () => {
  it('cancels phases in flight and pending ones, and finishes cancelled', () => {
    const def = workflow([{ name: 'a' }, { name: 'b', depends_on: ['a'] }]);
    const r = run(def, [{ type: 'run_started', at: 0 }, started('a'), { type: 'cancel_requested', at: 3, reason: 'user asked' }]);
    expect(r.state.status).toBe('cancelled');
    expect(r.state.phases.a?.status).toBe('cancelled');
    expect(r.state.phases.b?.status).toBe('cancelled');
  });
});

describe('decide: a rerun seeded with reused outputs', () => {
  const def = workflow([{ name: 'a' }, { name: 'b', depends_on: ['a'] }, { name: 'c', depends_on: ['b'] }]);

  it('starts the reused phases completed and queues nothing until the run starts; the start then queues what follows them', () => {
    const seeded = decide(def, initialRunState(def, 0), { type: 'outputs_reused', at: 0, phases: ['a', 'no-such-phase'] });
    expect(seeded.accepted).toBe(true);
    expect(seeded.actions).toEqual([]);
    expect(seeded.events).toEqual([]);
    expect(seeded.state.status).toBe('created');
    expect(seeded.state.phases.a).toMatchObject({ status: 'completed', iteration: 1, attempts: 0, durationMs: 0, reason: 'output reused from an earlier run' });
    expect(seeded.state.phases.b?.status).toBe('pending');

    const started = decide(def, seeded.state, { type: 'run_started', at: 1 });
    expect(enqueued(started.actions)).toEqual(['b']);
  });

  it('is refused once the run has started', () => {
    const started = decide(def, initialRunState(def, 0), { type: 'run_started', at: 0 });
    expect(decide(def, started.state, { type: 'outputs_reused', at: 1, phases: ['a'] }).accepted).toBe(false);
  });
});
