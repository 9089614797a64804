import { describe, expect, it } from 'vitest';
import { compileWorkflow } from '../workflow/compile.js';
import type { WorkflowDefinition } from '../workflow/definition.js';
import { STATE_SCHEMA_ERROR_PHASE, decide, initialRunState, needsOutputs } from './decide.js';
import { decideBatch } from './decide-batch.js';
import type { SchedulerEvent } from './types.js';

const schema = { type: 'object', required: ['review'], properties: { review: { type: 'object', required: ['verdict'], properties: { verdict: { enum: ['approve', 'reject'] } } } } };

function workflow(extra: Record<string, unknown> = {}): WorkflowDefinition {
  return compileWorkflow({ name: 'wf', agents: ['worker'], state_schema: schema, phases: [{ name: 'plan', agent: 'worker' }, { name: 'review', agent: 'worker', depends_on: ['plan'] }], ...extra });
}

const done = (phase: string): SchedulerEvent => ({ type: 'phase_completed', at: 5, phase, iteration: 1, attempt: 1, usage: { input_tokens: 1, output_tokens: 1 }, model: 'm', startedAt: 4 });

/** Decide the run up to `review`'s completion, whose output is `review`. */
function completeWith(def: WorkflowDefinition, review: unknown) {
  let state = initialRunState(def, 0);
  state = decide(def, state, { type: 'run_started', at: 0 }).state;
  state = decide(def, state, done('plan'), { requirements: 'r', variables: {}, outputs: { plan: {} }, errors: [] }).state;
  return decide(def, state, done('review'), { requirements: 'r', variables: {}, outputs: { plan: {}, review }, errors: [] });
}

describe('decide: state_schema', () => {
  it('a run whose final context satisfies state_schema completes', () => {
    const d = completeWith(workflow(), { verdict: 'approve' });
    expect(d.state.status).toBe('completed');
    expect(d.actions).toEqual([{ type: 'finish_run', status: 'completed' }]);
  });

  it('a violation fails the run instead, naming the path, and starts the fallback once', () => {
    const d = completeWith(workflow({ error_handling: { fallback_workflow: 'recover' } }), { verdict: 'maybe' });
    expect(d.state.status).toBe('failed');
    expect(d.state.phases.review?.status).toBe('completed');
    expect(d.state.errors).toEqual([
      { phase: STATE_SCHEMA_ERROR_PHASE, error: expect.objectContaining({ code: 'STATE_SCHEMA_VIOLATION', message: expect.stringContaining('/review/verdict: must be equal to one of the allowed values') as unknown }) as unknown },
    ]);
    expect(d.actions).toEqual([{ type: 'finish_run', status: 'failed' }, { type: 'start_fallback', workflow: 'recover' }]);
    expect(d.events.filter((e) => e.type === 'run_finished')).toEqual([expect.objectContaining({ status: 'failed' })]);
  });

  it('in a batch, the check sees the outputs of the entries accepted before the one that completes the run', () => {
    const def = compileWorkflow({ name: 'wf', agents: ['worker'], state_schema: schema, phases: [{ name: 'plan', agent: 'worker' }, { name: 'review', agent: 'worker' }] });
    const state = decide(def, initialRunState(def, 0), { type: 'run_started', at: 0 }).state;
    const d = decideBatch(def, state, [{ events: [done('review')], output: { phase: 'review', value: { verdict: 'reject' } } }, { events: [done('plan')], output: { phase: 'plan', value: {} } }], {
      requirements: 'r',
      variables: {},
      outputs: {},
    });
    expect(d.state.status).toBe('completed');
  });

  it('a workflow with a state_schema has its outputs loaded for every decision', () => {
    expect(needsOutputs(workflow())).toBe(true);
    expect(needsOutputs(compileWorkflow({ name: 'wf', agents: ['worker'], phases: [{ name: 'plan', agent: 'worker' }] }))).toBe(false);
  });
});
