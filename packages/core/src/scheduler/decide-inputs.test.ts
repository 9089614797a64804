/**
 * The inputs the shell reads before deciding: queue depths for `load_balanced` role choice (recorded
 * in the phase state and carried by the enqueue), and deadlines given as durations.
 */
import { describe, expect, it } from 'vitest';
import type { SerializedFleetError } from '../errors.js';
import { compileWorkflow } from '../workflow/compile.js';
import type { WorkflowDefinition } from '../workflow/definition.js';
import { decide, initialRunState } from './decide.js';
import { decideBatch, type BatchEntry } from './decide-batch.js';
import { DEFAULT_DEADLINE_GRACE_MS, phaseDeadlineAfterMs } from './deadlines.js';
import type { RunState, SchedulerEvent } from './types.js';

const usage = { input_tokens: 1, output_tokens: 1 };
const permanent: SerializedFleetError = { code: 'PROVIDER_AUTH', message: 'bad key', category: 'provider', retryable: false };
const ctx = { requirements: 'r', variables: {}, outputs: {}, errors: [] };

function workflow(phases: Array<Record<string, unknown>>): WorkflowDefinition {
  return compileWorkflow({ name: 'wf', agents: ['worker', 'a', 'b', 'c'], phases: phases.map((p) => ({ agent: 'worker', ...p })) });
}

const balanced = (name: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  name,
  agent: undefined,
  agent_select: { type: 'load_balanced', agents: ['a', 'b', 'c'] },
  ...extra,
});
const start: SchedulerEvent = { type: 'run_started', at: 0 };
const done = (phase: string): SchedulerEvent => ({ type: 'phase_completed', at: 5, phase, iteration: 1, attempt: 1, usage, model: 'm', startedAt: 4 });
const failed = (phase: string): SchedulerEvent => ({ type: 'phase_attempt_failed', at: 6, phase, iteration: 1, attempt: 1, error: permanent, willRetry: false, usage, startedAt: 4 });
const entry = (event: SchedulerEvent): BatchEntry => ({ events: [event] });

function after(def: WorkflowDefinition, events: SchedulerEvent[]): RunState {
  let state = initialRunState(def, 0);
  for (const event of events) state = decide(def, state, event).state;
  return state;
}

describe('load_balanced: the role is decided from the queue depths the shell read', () => {
  const def = workflow([balanced('test')]);

  it('picks the least loaded candidate, records it in the phase state and carries it on the enqueue', () => {
    const d = decide(def, initialRunState(def, 0), start, { ...ctx, queueDepths: { a: 5, b: 1, c: 3 } });
    expect(d.actions).toEqual([{ type: 'enqueue_phase', phase: 'test', iteration: 1, agent: 'b' }]);
    expect(d.state.phases.test?.agent).toBe('b');
    expect(d.events).toContainEqual({ type: 'phase_queued', at: 0, phase: 'test', agent: 'b', iteration: 1 });
  });

  it('ties go to the first listed; a role without a depth counts as empty', () => {
    expect(decide(def, initialRunState(def, 0), start, { ...ctx, queueDepths: { a: 2, b: 2, c: 2 } }).state.phases.test?.agent).toBe('a');
    expect(decide(def, initialRunState(def, 0), start, { ...ctx, queueDepths: { a: 2, b: 0 } }).state.phases.test?.agent).toBe('b');
    expect(decide(def, initialRunState(def, 0), start, { ...ctx, queueDepths: { a: 2, b: 1 } }).state.phases.test?.agent).toBe('c');
  });

  it('is deterministic and leaves the input depths as they were', () => {
    const depths = { a: 4, b: 4, c: 1 };
    const one = decide(def, initialRunState(def, 0), start, { ...ctx, queueDepths: depths });
    const two = decide(def, initialRunState(def, 0), start, { ...ctx, queueDepths: depths });
    expect(one).toEqual(two);
    expect(depths).toEqual({ a: 4, b: 4, c: 1 });
  });

  it('phases queued together count the jobs queued before them', () => {
    const wide = workflow([balanced('t1'), balanced('t2'), balanced('t3')]);
    const d = decide(wide, initialRunState(wide, 0), start, { ...ctx, queueDepths: { a: 1, b: 0, c: 0 } });
    expect(d.actions.map((a) => (a.type === 'enqueue_phase' ? a.agent : undefined))).toEqual(['b', 'c', 'a']);
  });

  it('without depths the enqueue names no role (the shell picks it)', () => {
    const d = decide(def, initialRunState(def, 0), start, ctx);
    expect(d.actions).toEqual([{ type: 'enqueue_phase', phase: 'test', iteration: 1 }]);
    expect(d.state.phases.test?.agent).toBeUndefined();
  });

  it('a batch passes the depths to each event, counting what earlier events of the batch queued', () => {
    const fan = workflow([{ name: 'p1' }, { name: 'p2' }, balanced('t1', { depends_on: ['p1'] }), balanced('t2', { depends_on: ['p2'] })]);
    const state = after(fan, [start]);
    const d = decideBatch(fan, state, [entry(done('p1')), entry(done('p2'))], { ...ctx, queueDepths: { a: 0, b: 0, c: 0 } });
    expect(d.actions).toEqual([
      { type: 'enqueue_phase', phase: 't1', iteration: 1, agent: 'a' },
      { type: 'enqueue_phase', phase: 't2', iteration: 1, agent: 'b' },
    ]);
    expect(d.state.phases.t1?.agent).toBe('a');
    expect(d.state.phases.t2?.agent).toBe('b');
  });

  it('the recorded role is kept when the iteration starts and is cancelled', () => {
    const state = decide(def, initialRunState(def, 0), start, { ...ctx, queueDepths: { a: 3, b: 3, c: 0 } }).state;
    const cancelled = decide(def, state, { type: 'cancel_requested', at: 2, reason: 'stop' }, ctx);
    expect(cancelled.actions).toContainEqual({ type: 'cancel_phase', phase: 'test', iteration: 1 });
    expect(cancelled.state.phases.test?.agent).toBe('c');
  });
});

describe('deadlines: durations from the commit', () => {
  const def = workflow([{ name: 'plan', timeout: 10, retries: 2, retry_delay: 1 }, { name: 'ok', type: 'approval', agent: undefined, timeout: 60, depends_on: ['plan'] }]);

  it('phaseDeadlineAfterMs: timeout × attempts + retry_delay × (2^attempts − 1) + grace, or one attempt and grace', () => {
    const plan = def.phases[0]!;
    expect(phaseDeadlineAfterMs(plan, 500)).toBe(10_000 * 3 + 1_000 * 7 + 500);
    expect(phaseDeadlineAfterMs(plan, 500, 'attempt')).toBe(10_500);
    expect(phaseDeadlineAfterMs({ timeoutMs: 1_000, retries: 0, retryDelayMs: 0 }, 0)).toBe(1_000);
  });

  it('an enqueue sets its iteration deadline with the shell grace (the default grace when none is given)', () => {
    const plan = def.phases[0]!;
    expect(decide(def, initialRunState(def, 0), start, { ...ctx, deadlineGraceMs: 250 }).deadlines).toEqual([
      { phase: 'plan', iteration: 1, after_ms: phaseDeadlineAfterMs(plan, 250) },
    ]);
    expect(decide(def, initialRunState(def, 0), start, ctx).deadlines).toEqual([
      { phase: 'plan', iteration: 1, after_ms: phaseDeadlineAfterMs(plan, DEFAULT_DEADLINE_GRACE_MS) },
    ]);
  });

  it('an approval wait sets its timeout, without grace', () => {
    const state = after(def, [start]);
    const d = decide(def, state, done('plan'), { ...ctx, deadlineGraceMs: 250 });
    expect(d.actions).toContainEqual({ type: 'await_event', phase: 'ok', iteration: 1, event: 'approval', timeoutMs: 60_000 });
    expect(d.deadlines).toEqual([{ phase: 'ok', iteration: 1, after_ms: 60_000 }]);
  });

  it('a decision that queues nothing sets no deadline', () => {
    const state = after(def, [start]);
    expect(decide(def, state, { type: 'phase_started', at: 1, phase: 'plan', iteration: 1, attempt: 1 }, ctx).deadlines).toBeUndefined();
  });

  it('a batch drops the deadline of an iteration a later event stopped, with its enqueue', () => {
    const two = workflow([{ name: 'a' }, { name: 'b', depends_on: ['a'] }, { name: 'c' }]);
    const state = after(two, [start]);
    const d = decideBatch(two, state, [entry(done('a')), entry(failed('c'))], { ...ctx, deadlineGraceMs: 0 });
    expect(d.actions.some((a) => a.type === 'enqueue_phase')).toBe(false);
    expect(d.deadlines).toBeUndefined();
    const kept = decideBatch(two, state, [entry(done('a')), entry({ type: 'phase_started', at: 7, phase: 'c', iteration: 1, attempt: 1 })], { ...ctx, deadlineGraceMs: 0 });
    expect(kept.deadlines).toEqual([{ phase: 'b', iteration: 1, after_ms: phaseDeadlineAfterMs(two.phases[1]!, 0) }]);
  });
});
