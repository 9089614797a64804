import { describe, expect, it } from 'vitest';
import { compileWorkflow } from '../workflow/compile.js';
import type { WorkflowDefinition } from '../workflow/definition.js';
import type { SerializedFleetError } from '../errors.js';
import { decide, initialRunState } from './decide.js';
import type { Decision, RunState, SchedulerEvent } from './types.js';

const usage = { input_tokens: 7, output_tokens: 3 };
const childError: SerializedFleetError = { code: 'CHILD_RUN_FAILED', message: 'child run r.sub.1.run (quick-fix) failed: boom', category: 'system', retryable: false };

function workflow(sub: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): WorkflowDefinition {
  return compileWorkflow({
    name: 'wf',
    agents: ['worker'],
    phases: [
      { name: 'sub', workflow: 'quick-fix', retries: 2, ...sub },
      { name: 'after', agent: 'worker', depends_on: [{ phase: 'sub', optional: true }] },
    ],
    ...extra,
  });
}

/** Feed events in order; the last decision and every acceptance. */
function feed(def: WorkflowDefinition, events: SchedulerEvent[]): { state: RunState; last: Decision; accepted: boolean[] } {
  let state = initialRunState(def, 0);
  let last: Decision | undefined;
  const accepted: boolean[] = [];
  for (const event of events) {
    last = decide(def, state, event);
    accepted.push(last.accepted);
    state = last.state;
  }
  return { state, last: last as Decision, accepted };
}

const finished = (status: 'completed' | 'failed' | 'cancelled', iteration = 1, at = 5, phase = 'sub'): SchedulerEvent => ({
  type: 'child_run_finished',
  at,
  phase,
  iteration,
  childRunId: `r.sub.${iteration}.run`,
  status,
  usage,
  ...(status === 'completed' ? { model: 'm1' } : { error: childError }),
});

describe('decide: child_run_finished', () => {
  it('completes the phase iteration in flight as a child run (attempt 1, the child usage and model) and goes on', () => {
    const r = feed(workflow(), [{ type: 'run_started', at: 0 }, finished('completed')]);
    expect(r.accepted).toEqual([true, true]);
    expect(r.state.phases.sub).toMatchObject({ status: 'completed', iteration: 1, attempts: 1, usage, model: 'm1', durationMs: 0 });
    expect(r.state.usage).toEqual(usage);
    expect(r.state.model).toBe('m1');
    expect(r.last.events.map((e) => e.type)).toEqual(['phase_started', 'phase_completed', 'phase_queued']);
    expect(r.last.actions).toContainEqual({ type: 'enqueue_phase', phase: 'after', iteration: 1, agent: 'worker' });
  });

  it('a child without a model call leaves the run model alone', () => {
    const def = workflow();
    const r = feed(def, [{ type: 'run_started', at: 0 }, { type: 'child_run_finished', at: 5, phase: 'sub', iteration: 1, childRunId: 'r.sub.1.run', status: 'completed', usage }]);
    expect(r.state.phases.sub?.status).toBe('completed');
    expect(r.state.model).toBeUndefined();
  });

  it('is refused as stale once the iteration ended, for another iteration, and for a phase that is no child run', () => {
    const def = workflow();
    const twice = feed(def, [{ type: 'run_started', at: 0 }, finished('completed'), finished('completed', 1, 6)]);
    expect(twice.accepted).toEqual([true, true, false]);
    expect(twice.state.usage).toEqual(usage);
    const otherIteration = feed(def, [{ type: 'run_started', at: 0 }, finished('completed', 2)]);
    expect(otherIteration.accepted).toEqual([true, false]);
    const agentPhase = feed(def, [{ type: 'run_started', at: 0 }, finished('completed'), finished('failed', 1, 6, 'after')]);
    expect(agentPhase.accepted).toEqual([true, true, false]);
    expect(agentPhase.state.phases.after?.status).toBe('queued');
  });

  it('a failed child fails the phase with its error, without a retry, and fails the run', () => {
    const r = feed(workflow(), [{ type: 'run_started', at: 0 }, finished('failed')]);
    expect(r.accepted).toEqual([true, true]);
    expect(r.state.phases.sub).toMatchObject({ status: 'failed', attempts: 1, error: childError, usage });
    expect(r.state.totalRetries).toBe(0);
    expect(r.state.status).toBe('failed');
    expect(r.state.errors).toEqual([{ phase: 'sub', error: childError }]);
    expect(r.last.actions).toContainEqual({ type: 'finish_run', status: 'failed' });
  });

  it('a cancelled child under continue_on_error fails only its phase; the run goes on', () => {
    const r = feed(workflow({ continue_on_error: true }), [{ type: 'run_started', at: 0 }, finished('cancelled')]);
    expect(r.state.phases.sub?.status).toBe('failed');
    expect(r.state.status).toBe('active');
    expect(r.last.actions).toContainEqual({ type: 'enqueue_phase', phase: 'after', iteration: 1, agent: 'worker' });
  });

  it('decides as the phase_completed and phase_attempt_failed a child phase took before', () => {
    const def = workflow();
    const start: SchedulerEvent = { type: 'run_started', at: 0 };
    const viaNew = feed(def, [start, finished('completed')]).state;
    const viaOld = feed(def, [start, { type: 'phase_completed', at: 5, phase: 'sub', iteration: 1, attempt: 1, usage, model: 'm1' }]).state;
    expect(viaNew).toEqual(viaOld);
    const failNew = feed(def, [start, finished('failed')]).state;
    const failOld = feed(def, [start, { type: 'phase_attempt_failed', at: 5, phase: 'sub', iteration: 1, attempt: 1, error: childError, willRetry: false, usage }]).state;
    expect(failNew).toEqual(failOld);
  });
});
