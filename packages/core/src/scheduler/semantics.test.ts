/**
 * The workflow semantics of issue 3, as a table of small workflows and event sequences with the
 * expected states and actions. Pure: no Redis, no clock.
 */
import { describe, expect, it } from 'vitest';
import type { SerializedFleetError } from '../errors.js';
import { compileWorkflow } from '../workflow/compile.js';
import type { WorkflowDefinition } from '../workflow/definition.js';
import { decide, initialRunState } from './decide.js';
import type { RunState, SchedulerAction, SchedulerEvent, StepAction } from './types.js';

const usage = { input_tokens: 1, output_tokens: 1 };
const permanent: SerializedFleetError = { code: 'PROVIDER_BAD_REQUEST', message: 'bad request', category: 'provider', retryable: false };

function wf(phases: Array<Record<string, unknown>>, extra: Record<string, unknown> = {}): WorkflowDefinition {
  return compileWorkflow({ name: 'wf', agents: ['worker', 'other', 'api_specialist'], phases: phases.map((p) => ({ agent: 'worker', ...p })), ...extra });
}

/** A run driven by events; outputs reported with completions feed conditions and step-action rules. */
class Sim {
  state: RunState;
  readonly actions: SchedulerAction[] = [];
  readonly outputs: Record<string, unknown> = {};
  at = 0;
  constructor(
    readonly def: WorkflowDefinition,
    readonly requirements = 'Build an API',
  ) {
    this.state = initialRunState(def, 0);
    this.send({ type: 'run_started', at: 0 });
  }
  send(event: SchedulerEvent): boolean {
    const d = decide(this.def, this.state, event, { requirements: this.requirements, variables: {}, outputs: this.outputs, errors: this.state.errors });
    this.state = d.state;
    this.actions.push(...d.actions);
    Object.assign(this.outputs, d.outputs);
    return d.accepted;
  }
  complete(phase: string, output: unknown = { ok: true }, action?: StepAction): boolean {
    const p = this.state.phases[phase];
    const saved = this.outputs[phase];
    this.outputs[phase] = output;
    const ok = this.send({ type: 'phase_completed', at: ++this.at, phase, iteration: p?.iteration ?? 0, attempt: 1, usage, model: 'm', action });
    if (!ok) this.outputs[phase] = saved;
    return ok;
  }
  fail(phase: string): boolean {
    const p = this.state.phases[phase];
    return this.send({ type: 'phase_attempt_failed', at: ++this.at, phase, iteration: p?.iteration ?? 0, attempt: 1, error: permanent, willRetry: false, usage });
  }
  status(phase: string) {
    return this.state.phases[phase]?.status;
  }
  enqueued(): string[] {
    return this.actions.filter((a) => a.type === 'enqueue_phase').map((a) => `${a.phase}#${a.iteration}`);
  }
}

describe('diamond DAG: a → (b, c) → d', () => {
  const diamond = (continueOnError: boolean) =>
    wf([{ name: 'a' }, { name: 'b', depends_on: ['a'] }, { name: 'c', depends_on: ['a'] }, { name: 'd', depends_on: ['b', 'c'] }], {
      error_handling: { continue_on_error: continueOnError },
    });

  it('runs b and c in parallel and d only after both (fan-in)', () => {
    const sim = new Sim(diamond(false));
    sim.complete('a');
    expect(sim.enqueued()).toEqual(['a#1', 'b#1', 'c#1']);
    sim.complete('b');
    expect(sim.enqueued()).toEqual(['a#1', 'b#1', 'c#1']);
    sim.complete('c');
    expect(sim.enqueued()).toEqual(['a#1', 'b#1', 'c#1', 'd#1']);
    sim.complete('d');
    expect(sim.state.status).toBe('completed');
  });

  it.each([
    // failing branch, continue_on_error, expected run, b, c, d
    ['b', false, 'failed', 'failed', 'cancelled', 'skipped'],
    ['c', false, 'failed', 'cancelled', 'failed', 'skipped'],
    ['b', true, 'completed', 'failed', 'completed', 'skipped'],
    ['c', true, 'completed', 'completed', 'failed', 'skipped'],
    ['both', true, 'completed', 'failed', 'failed', 'skipped'],
  ])('branch %s fails, continue_on_error %s → run %s (b %s, c %s, d %s)', (failing, coe, run, b, c, d) => {
    const sim = new Sim(diamond(coe));
    sim.complete('a');
    if (failing === 'both') {
      sim.fail('b');
      sim.fail('c');
    } else {
      sim.fail(failing);
      const other = failing === 'b' ? 'c' : 'b';
      if (coe) sim.complete(other);
    }
    expect([sim.state.status, sim.status('b'), sim.status('c'), sim.status('d')]).toEqual([run, b, c, d]);
    if (coe) expect(sim.state.phases.d?.reason).toMatch(/dependency "[bc]" failed/);
  });

  it('an optional dependency lets the fan-in run after a failure', () => {
    const def = wf([{ name: 'a' }, { name: 'b' }, { name: 'd', depends_on: ['a', { phase: 'b', optional: true }] }], { error_handling: { continue_on_error: true } });
    const sim = new Sim(def);
    sim.complete('a');
    sim.fail('b');
    expect(sim.status('d')).toBe('queued');
  });

  it('phase-level continue_on_error overrides the workflow', () => {
    const def = wf([{ name: 'a', continue_on_error: true }, { name: 'b' }], { error_handling: { continue_on_error: false } });
    const sim = new Sim(def);
    sim.fail('a');
    expect(sim.state.status).toBe('active');
    sim.complete('b');
    expect(sim.state.status).toBe('completed');
    expect(sim.state.errors.map((e) => e.phase)).toEqual(['a']);
  });
});

describe('conditions', () => {
  it.each([
    ["{{review.verdict}} == 'changes_requested'", { verdict: 'changes_requested' }, 'queued'],
    ["{{review.verdict}} == 'changes_requested'", { verdict: 'approve' }, 'skipped'],
    [{ type: 'result_contains', phase: 'review', value: 'security' }, { findings: ['security hole'] }, 'queued'],
    [{ type: 'result_contains', phase: 'review', value: 'security' }, { findings: [] }, 'skipped'],
    [{ type: 'error_count', max_errors: 1 }, {}, 'queued'],
  ])('condition %j with review %j → fix is %s', (condition, review, expected) => {
    const sim = new Sim(wf([{ name: 'review' }, { name: 'fix', depends_on: ['review'], condition }]));
    sim.complete('review', review);
    expect(sim.status('fix')).toBe(expected);
    if (expected === 'skipped') {
      expect(sim.state.phases.fix?.reason).toBe('condition not met');
      expect(sim.state.status).toBe('completed');
    }
  });
});

describe('step actions', () => {
  const loop = (maxIterations = 3, continueOnError = false) =>
    wf(
      [
        { name: 'plan' },
        { name: 'code', depends_on: ['plan'], max_iterations: maxIterations },
        {
          name: 'review',
          depends_on: ['code'],
          max_iterations: maxIterations,
          step_actions: [{ when: "{{review.verdict}} == 'changes_requested'", action: 'jump', target: 'code', note: 'fix the findings' }],
        },
      ],
      { error_handling: { continue_on_error: continueOnError } },
    );

  it('jump: changes_requested sends the work back to the coder once, then approve ends the run', () => {
    const sim = new Sim(loop());
    sim.complete('plan');
    sim.complete('code');
    sim.complete('review', { verdict: 'changes_requested', findings: ['missing endpoint'] });
    expect(sim.status('code')).toBe('queued');
    expect(sim.state.phases.code).toMatchObject({ iteration: 2, feedback: { from: 'review', note: 'fix the findings' } });
    expect(sim.status('review')).toBe('pending');
    expect(sim.status('plan')).toBe('completed');
    sim.complete('code');
    expect(sim.state.phases.review).toMatchObject({ status: 'queued', iteration: 2 });
    sim.complete('review', { verdict: 'approve' });
    expect(sim.state.status).toBe('completed');
    expect(sim.enqueued()).toEqual(['plan#1', 'code#1', 'review#1', 'code#2', 'review#2']);
  });

  it('a loop that hits max_iterations fails the run with a clear error', () => {
    const sim = new Sim(loop(2));
    sim.complete('plan');
    for (let i = 0; i < 2; i++) {
      sim.complete('code');
      sim.complete('review', { verdict: 'changes_requested' });
    }
    expect(sim.state.status).toBe('failed');
    expect(sim.state.phases.review?.error).toMatchObject({ code: 'MAX_ITERATIONS' });
    expect(sim.state.phases.review?.error?.message).toMatch(/asked to run "code" again, but it already ran 2 time\(s\) \(max_iterations 2\)/);
  });

  it('with continue_on_error the bound is recorded and the run completes', () => {
    const sim = new Sim(loop(1, true));
    sim.complete('plan');
    sim.complete('code');
    sim.complete('review', { verdict: 'changes_requested' });
    expect(sim.state.status).toBe('completed');
    expect(sim.state.errors[0]?.error.code).toBe('MAX_ITERATIONS');
  });

  it('repeat: the agent runs the phase again with its note', () => {
    const sim = new Sim(wf([{ name: 'a' }, { name: 'b', depends_on: ['a'] }]));
    sim.complete('a', { draft: 1 }, { type: 'repeat', note: 'not good enough' });
    expect(sim.state.phases.a).toMatchObject({ status: 'queued', iteration: 2, feedback: { from: 'a', note: 'not good enough' } });
    expect(sim.status('b')).toBe('pending');
    sim.complete('a', { draft: 2 });
    expect(sim.status('b')).toBe('queued');
  });

  it('complete: the run ends early and successfully, pending phases skipped, phases in flight cancelled', () => {
    const sim = new Sim(wf([{ name: 'a' }, { name: 'slow' }, { name: 'b', depends_on: ['a'] }]));
    sim.complete('a', {}, { type: 'complete' });
    expect(sim.state.status).toBe('completed');
    expect(sim.status('b')).toBe('skipped');
    expect(sim.status('slow')).toBe('cancelled');
    expect(sim.actions).toContainEqual({ type: 'cancel_phase', phase: 'slow', iteration: 1 });
  });

  it('wait: the run waits for the event the agent named, then the phase runs again with it', () => {
    const sim = new Sim(wf([{ name: 'plan' }, { name: 'design', depends_on: ['plan'] }]));
    sim.complete('plan', { open_questions: ['Who signs in?'] }, { type: 'wait', event: 'answers', prompt: ['Who signs in?'] });
    expect(sim.state.status).toBe('waiting');
    expect(sim.state.phases.plan?.waitingFor).toEqual({ event: 'answers', prompt: ['Who signs in?'] });
    expect(sim.send({ type: 'external_event', at: 10, event: 'unrelated', data: {} })).toBe(true);
    expect(sim.state.status).toBe('waiting');
    sim.send({ type: 'external_event', at: 11, event: 'answers', data: { answers: { 'Who signs in?': 'staff' } } });
    expect(sim.state.status).toBe('active');
    expect(sim.state.phases.plan).toMatchObject({ status: 'queued', iteration: 2, feedback: { from: 'plan', event: { type: 'answers' } } });
  });

  it('a completion with a rule that does not match continues normally', () => {
    const sim = new Sim(loop());
    sim.complete('plan');
    sim.complete('code');
    sim.complete('review', { verdict: 'approve' });
    expect(sim.state.status).toBe('completed');
  });
});

describe('approval phases', () => {
  const approval = (onTimeout = 'reject') => wf([{ name: 'design' }, { name: 'sign_off', type: 'approval', agent: undefined, depends_on: ['design'], timeout: 60, on_timeout: onTimeout }, { name: 'build', depends_on: ['sign_off'] }]);

  it('waits for an approval, then goes on with the decision in the context', () => {
    const sim = new Sim(approval());
    sim.complete('design');
    expect(sim.state.status).toBe('waiting');
    expect(sim.actions).toContainEqual({ type: 'await_event', phase: 'sign_off', iteration: 1, event: 'approval', timeoutMs: 60_000 });
    sim.send({ type: 'external_event', at: 5, event: 'approval', data: { approved: true, comment: 'ship it' } });
    expect(sim.status('sign_off')).toBe('completed');
    expect(sim.outputs.sign_off).toEqual({ approved: true, comment: 'ship it' });
    expect(sim.status('build')).toBe('queued');
  });

  it('a rejection fails the phase (and the run)', () => {
    const sim = new Sim(approval());
    sim.complete('design');
    sim.send({ type: 'external_event', at: 5, event: 'approval', data: { approved: false, comment: 'no' } });
    expect(sim.state.status).toBe('failed');
    expect(sim.state.phases.sign_off?.error).toMatchObject({ code: 'APPROVAL_REJECTED', message: 'phase "sign_off" was rejected: no' });
  });

  it.each([
    ['approve', 'completed'],
    ['reject', 'failed'],
  ])('on timeout with on_timeout %s the phase is %s', (onTimeout, expected) => {
    const sim = new Sim(approval(onTimeout));
    sim.complete('design');
    sim.send({ type: 'phase_deadline', at: 99, phase: 'sign_off', iteration: 1 });
    expect(sim.status('sign_off')).toBe(expected);
  });
});

describe('resume, agent selection, child workflows, fallback', () => {
  it('resume re-runs only what did not complete', () => {
    const sim = new Sim(wf([{ name: 'a' }, { name: 'b', depends_on: ['a'] }, { name: 'c', depends_on: ['b'] }]));
    sim.complete('a');
    sim.fail('b');
    expect(sim.state.status).toBe('failed');
    expect(sim.send({ type: 'resume_requested', at: 50 })).toBe(true);
    expect(sim.state.status).toBe('active');
    expect(sim.state.phases.a).toMatchObject({ status: 'completed', iteration: 1 });
    expect(sim.state.phases.b).toMatchObject({ status: 'queued', iteration: 2 });
    expect(sim.state.errors).toEqual([]);
    sim.complete('b');
    sim.complete('c');
    expect(sim.state.status).toBe('completed');
    expect(sim.send({ type: 'resume_requested', at: 60 })).toBe(false);
  });

  it('based_on_input picks the role from the requirements; load_balanced leaves it to the shell', () => {
    const def = wf([
      { name: 'code', agent: undefined, agent_select: { type: 'based_on_input', rules: [{ contains: 'API', agent: 'api_specialist' }], default: 'worker' } },
      { name: 'test', agent: undefined, agent_select: { type: 'load_balanced', agents: ['worker', 'other'] } },
    ]);
    const api = new Sim(def, 'Build an API');
    expect(api.actions.filter((a) => a.type === 'enqueue_phase')).toEqual([
      { type: 'enqueue_phase', phase: 'code', iteration: 1, agent: 'api_specialist' },
      { type: 'enqueue_phase', phase: 'test', iteration: 1 },
    ]);
    expect(new Sim(def, 'Build a game').actions[0]).toMatchObject({ agent: 'worker' });
  });

  it('a workflow phase starts a child run, and a failure starts the fallback workflow', () => {
    const def = wf([{ name: 'sub', agent: undefined, workflow: 'quick-fix' }], { error_handling: { fallback_workflow: 'rescue' } });
    const sim = new Sim(def);
    expect(sim.actions).toContainEqual({ type: 'start_child_run', phase: 'sub', iteration: 1, workflow: 'quick-fix' });
    sim.fail('sub');
    expect(sim.actions.slice(-2)).toEqual([{ type: 'finish_run', status: 'failed' }, { type: 'start_fallback', workflow: 'rescue' }]);
  });
});

describe('review findings', () => {
  it('applies an external event with an id once, however often it is delivered', () => {
    const def = wf([{ name: 'a1', type: 'approval', agent: undefined }, { name: 'a2', type: 'approval', agent: undefined, depends_on: ['a1'] }, { name: 'b', depends_on: ['a2'] }]);
    const sim = new Sim(def);
    const approval: SchedulerEvent = { type: 'external_event', at: 1, event: 'approval', data: { approved: true }, id: 'evt-1' };
    expect(sim.send(approval)).toBe(true);
    expect(sim.status('a1')).toBe('completed');
    expect(sim.status('a2')).toBe('waiting');
    expect(sim.send(approval)).toBe(false);
    expect(sim.status('a2')).toBe('waiting');
  });

  it('refuses events other than its start or a cancel while a run is still created', () => {
    const def = wf([{ name: 'a' }]);
    const state = initialRunState(def, 0);
    expect(decide(def, state, { type: 'external_event', at: 1, event: 'approval', data: {} }).accepted).toBe(false);
    expect(decide(def, state, { type: 'cancel_requested', at: 1, reason: 'x' }).accepted).toBe(true);
  });

  it('a jump stops descendants still running and runs them again', () => {
    const sim = new Sim(wf([{ name: 'plan' }, { name: 'api', depends_on: ['plan'] }, { name: 'ui', depends_on: ['plan'] }, { name: 'review', depends_on: ['api', 'ui'] }]));
    sim.complete('plan');
    sim.complete('api', {}, { type: 'jump', target: 'plan' });
    expect(sim.actions).toContainEqual({ type: 'cancel_phase', phase: 'ui', iteration: 1 });
    expect(sim.state.phases.plan).toMatchObject({ status: 'queued', iteration: 2 });
    expect(sim.state.phases.ui).toMatchObject({ status: 'pending', iteration: 1 });
    sim.complete('plan');
    expect(sim.state.phases.ui).toMatchObject({ status: 'queued', iteration: 2 });
  });

  it('resume gives the run its retry budget back', () => {
    const def = wf([{ name: 'a', retries: 5 }], { error_handling: { max_total_retries: 1 } });
    const sim = new Sim(def);
    const transient: SerializedFleetError = { code: 'PROVIDER_OVERLOADED', message: 'x', category: 'provider', retryable: true };
    sim.send({ type: 'phase_attempt_failed', at: 1, phase: 'a', iteration: 1, attempt: 1, error: transient, willRetry: true, usage });
    sim.send({ type: 'phase_attempt_failed', at: 2, phase: 'a', iteration: 1, attempt: 2, error: transient, willRetry: true, usage });
    expect(sim.state.phases.a?.error?.code).toBe('RETRIES_EXHAUSTED');
    sim.send({ type: 'resume_requested', at: 3 });
    sim.send({ type: 'phase_attempt_failed', at: 4, phase: 'a', iteration: 2, attempt: 1, error: transient, willRetry: true, usage });
    expect(sim.status('a')).toBe('retrying');
  });
});
