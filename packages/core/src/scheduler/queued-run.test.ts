import { describe, expect, it } from 'vitest';
import { withConcurrencyRelease } from '../engine/concurrency.js';
import type { RunMeta } from '../result.js';
import { compileWorkflow } from '../workflow/compile.js';
import { decide, initialRunState } from './decide.js';
import type { RunState } from './types.js';

const def = compileWorkflow({ name: 'wf', agents: ['worker'], phases: [{ name: 'a', agent: 'worker' }] });
const queued = (): RunState => ({ ...initialRunState(def, 0), status: 'queued', version: 1 });

describe('a queued run', () => {
  it('is started by run_started, which queues its first phases', () => {
    const d = decide(def, queued(), { type: 'run_started', at: 5 });
    expect(d.accepted).toBe(true);
    expect(d.state.status).toBe('active');
    expect(d.state.startedAt).toBe(5);
    expect(d.actions).toEqual([{ type: 'enqueue_phase', phase: 'a', iteration: 1, agent: 'worker' }]);
  });

  it('refuses phase events and external events until it starts', () => {
    const d = decide(def, queued(), { type: 'phase_deadline', at: 5, phase: 'a', iteration: 1 });
    expect(d.accepted).toBe(false);
    expect(decide(def, queued(), { type: 'external_event', at: 5, event: 'input', data: {} }).accepted).toBe(false);
  });

  it('can be cancelled: it finishes cancelled with every phase cancelled', () => {
    const d = decide(def, queued(), { type: 'cancel_requested', at: 5, reason: 'no longer needed' });
    expect(d.state.status).toBe('cancelled');
    expect(d.state.phases.a?.status).toBe('cancelled');
    expect(d.actions).toEqual([{ type: 'finish_run', status: 'cancelled' }]);
  });
});

describe('withConcurrencyRelease', () => {
  const meta = (concurrency?: RunMeta['concurrency']): RunMeta => ({
    run_id: 'r', workflow: def, requirements: 'x', variables: {}, created_at: 0, provider: 'offline', trace: {}, ...(concurrency ? { concurrency } : {}),
  });

  it('adds the release of the slot to the decision that finishes a run with a limit, at its version', () => {
    const d = decide(def, queued(), { type: 'cancel_requested', at: 5, reason: 'stop' });
    expect(withConcurrencyRelease(meta({ key: 'acme', limit: 2 }), d).actions).toEqual([
      { type: 'finish_run', status: 'cancelled' },
      { type: 'release_concurrency', key: 'acme', limit: 2, version: 2 },
    ]);
  });

  it('leaves decisions that do not finish the run, and runs without a limit, alone', () => {
    const started = decide(def, queued(), { type: 'run_started', at: 5 });
    expect(withConcurrencyRelease(meta({ key: 'acme', limit: 2 }), started)).toBe(started);
    const cancelled = decide(def, queued(), { type: 'cancel_requested', at: 5, reason: 'stop' });
    expect(withConcurrencyRelease(meta({ key: 'acme' }), cancelled)).toBe(cancelled);
    expect(withConcurrencyRelease(meta(), cancelled)).toBe(cancelled);
  });
});
