import { describe, expect, it } from 'vitest';
import { buildRunResult, type RunMeta } from './result.js';
import { decide, initialRunState } from './scheduler/decide.js';
import type { RunState, SchedulerEvent } from './scheduler/types.js';
import { compileWorkflow } from './workflow/compile.js';

const usage = { input_tokens: 10, output_tokens: 5 };
const def = compileWorkflow({
  name: 'wf',
  agents: ['planner', 'designer', 'reviewer', 'tools'],
  phases: [
    { name: 'plan', agent: 'planner' },
    { name: 'design', agent: 'designer', depends_on: ['plan'] },
    { name: 'review', agent: 'reviewer', depends_on: ['design'] },
    { name: 'save', agent: 'reviewer', depends_on: ['review'] },
  ],
});
const meta: RunMeta = { run_id: 'r1', workflow: def, requirements: 'x', variables: {}, created_at: 0, provider: 'anthropic', trace: {} };

function run(events: SchedulerEvent[]): RunState {
  let state = initialRunState(def, 0);
  for (const event of events) state = decide(def, state, event).state;
  return state;
}
const done = (phase: string, model: string, at: number, cacheHit = false): SchedulerEvent => ({ type: 'phase_completed', at, phase, iteration: 1, attempt: 1, usage, model, cacheHit });

describe('buildRunResult: models', () => {
  it('names each phase’s model, keeps the most used one as `model` (not the last), and lists every model used', () => {
    const state = run([{ type: 'run_started', at: 0 }, done('plan', 'claude-sonnet-4', 1), done('design', 'claude-sonnet-4', 2), done('review', 'claude-haiku-4-5', 3), done('save', 'none', 4)]);
    const result = buildRunResult(meta, state, {}, 5);
    expect(result.phases.map((p) => [p.name, p.model])).toEqual([
      ['plan', 'claude-sonnet-4'],
      ['design', 'claude-sonnet-4'],
      ['review', 'claude-haiku-4-5'],
      // A tool phase reports no model.
      ['save', undefined],
    ]);
    expect(result.model).toBe('claude-sonnet-4');
    expect(result.models).toEqual(['claude-sonnet-4', 'claude-haiku-4-5']);
  });

  it('on a tie the first model used is the main one; a cached result names its model but adds no model used', () => {
    const state = run([{ type: 'run_started', at: 0 }, done('plan', 'claude-opus-4-6', 1), done('design', 'claude-haiku-4-5', 2), done('review', 'claude-sonnet-4', 3, true)]);
    const result = buildRunResult(meta, state, {}, 5);
    expect(result.model).toBe('claude-opus-4-6');
    expect(result.models).toEqual(['claude-opus-4-6', 'claude-haiku-4-5']);
    expect(result.phases.find((p) => p.name === 'review')).toMatchObject({ model: 'claude-sonnet-4', cache_hit: true });
  });

  it('a state stored before models were kept per phase still gives its one model', () => {
    const state: RunState = { ...initialRunState(def, 0), model: 'claude-sonnet-4' };
    const result = buildRunResult(meta, state, {}, 5);
    expect(result.model).toBe('claude-sonnet-4');
    expect(result.models).toEqual(['claude-sonnet-4']);
    expect(buildRunResult(meta, initialRunState(def, 0), {}, 5)).toMatchObject({ model: null, models: [] });
  });
});
