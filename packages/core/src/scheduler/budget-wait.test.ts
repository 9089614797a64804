import { describe, expect, it } from 'vitest';
import { compileWorkflow } from '../workflow/compile.js';
import { decide, initialRunState } from './decide.js';
import type { BudgetWaitPrompt, RunState, SchedulerEvent } from './types.js';

const def = compileWorkflow({
  name: 'wf',
  agents: ['worker'],
  budget: { max_cost_usd: 1, on_exceed: 'wait' },
  phases: [
    { name: 'a', agent: 'worker', budget: { max_cost_usd: 0.5, on_exceed: 'wait' } },
    { name: 'b', agent: 'worker' },
  ],
});
const prompt = (scope: 'run' | 'phase'): BudgetWaitPrompt => ({
  scope,
  limit: 'max_cost_usd',
  max: 1,
  spent: 0.9,
  reserved: 0,
  call: { model: 'm', estimated_input_tokens: 100, estimated_cost_usd: 0.2 },
  message: 'would exceed',
});
const wait = (phase: string, scope: 'run' | 'phase', iteration = 1): SchedulerEvent => ({
  type: 'phase_budget_wait',
  at: 2,
  phase,
  iteration,
  attempt: 1,
  usage: { input_tokens: 10, output_tokens: 5, cost_usd: 0.01 },
  prompt: prompt(scope),
});

function feed(events: SchedulerEvent[]): { state: RunState; enqueued: string[]; accepted: boolean[] } {
  let state = initialRunState(def, 0);
  const enqueued: string[] = [];
  const accepted: boolean[] = [];
  for (const e of events) {
    const d = decide(def, state, e);
    accepted.push(d.accepted);
    state = d.state;
    for (const a of d.actions) if (a.type === 'enqueue_phase') enqueued.push(`${a.phase}.${a.iteration}`);
  }
  return { state, enqueued, accepted };
}

describe('phases waiting for their budget', () => {
  it('puts the phase and the run in waiting, counts what the attempt billed, and shows what it waits for', () => {
    const { state } = feed([{ type: 'run_started', at: 1 }, wait('a', 'phase')]);
    // The run is waiting while any phase waits (b still runs meanwhile).
    expect(state.status).toBe('waiting');
    expect(state.phases.b?.status).toBe('queued');
    expect(state.phases.a).toMatchObject({ status: 'waiting', waitingFor: { event: 'budget', prompt: prompt('phase') }, usage: { cost_usd: 0.01 } });
    const both = feed([{ type: 'run_started', at: 1 }, wait('a', 'phase'), wait('b', 'run')]).state;
    expect(both.status).toBe('waiting');
    expect(both.usage.cost_usd).toBeCloseTo(0.02, 9);
  });

  it('a budget event raises the budget that stopped each phase and runs them again as new iterations', () => {
    const { state, enqueued } = feed([
      { type: 'run_started', at: 1 },
      wait('a', 'phase'),
      wait('b', 'run'),
      { type: 'external_event', at: 3, event: 'budget', data: { add_usd: 2 }, id: 'raise-1' },
    ]);
    expect(state.status).toBe('active');
    expect(state.budgetRaise).toEqual({ run: { usd: 2, tokens: 0 }, phases: { a: { usd: 2, tokens: 0 } } });
    expect(enqueued).toEqual(['a.1', 'b.1', 'a.2', 'b.2']);
    expect(state.phases.a?.feedback).toBeUndefined();
  });

  it('a raise with no phase waiting goes to the run; bad data raises nothing and resumes nothing; a stale wait is refused', () => {
    const early = feed([{ type: 'run_started', at: 1 }, { type: 'external_event', at: 2, event: 'budget', data: { add_tokens: 500 } }]).state;
    expect(early.budgetRaise).toEqual({ run: { usd: 0, tokens: 500 } });
    const bad = feed([{ type: 'run_started', at: 1 }, wait('a', 'phase'), { type: 'external_event', at: 3, event: 'budget', data: { add_usd: -1 } }]).state;
    expect(bad.phases.a?.status).toBe('waiting');
    expect(bad.budgetRaise).toBeUndefined();
    expect(feed([{ type: 'run_started', at: 1 }, wait('a', 'phase', 2)]).accepted).toEqual([true, false]);
  });

  it('a wait in a tool loop names its journal; the iteration the raise starts keeps it, and completing the phase clears it', () => {
    const inLoop = { ...wait('a', 'phase'), journal: { iteration: 1, steps: 2 } } as SchedulerEvent;
    const raised = feed([{ type: 'run_started', at: 1 }, inLoop, { type: 'external_event', at: 3, event: 'budget', data: { add_usd: 2 } }]);
    expect(raised.enqueued).toContain('a.2');
    expect(raised.state.phases.a).toMatchObject({ iteration: 2, status: 'queued', journal: { iteration: 1, steps: 2 } });
    const completed = decide(def, raised.state, { type: 'phase_completed', at: 4, phase: 'a', iteration: 2, attempt: 1, usage: { input_tokens: 1, output_tokens: 1 }, model: 'm' }).state;
    expect(completed.phases.a?.status).toBe('completed');
    expect(completed.phases.a?.journal).toBeUndefined();
  });
});
