import { BATCH_WAIT_EVENT, type PhaseState, type RunState } from '@agentfleet/core';
import { describe, expect, it } from 'vitest';
import { batchAwaited } from './batch-poller.js';

const usage = { input_tokens: 0, output_tokens: 0 };
const batch = { phase: 'planning', iteration: 1, attempt: 1, batch_id: 'msgbatch_2' };
const runWith = (phase: Partial<PhaseState>, status: RunState['status'] = 'active'): Pick<RunState, 'status' | 'phases'> => ({
  status,
  phases: { planning: { status: 'running', iteration: 1, attempts: 1, usage, ...phase } },
});
const waitingOn = (batchId: string): Partial<PhaseState> => ({ status: 'waiting', waitingFor: { event: BATCH_WAIT_EVENT, prompt: { batch_id: batchId } } });

describe('batchAwaited: which open batches the poller keeps', () => {
  it('keeps the batch the phase waits on', () => {
    expect(batchAwaited(runWith(waitingOn('msgbatch_2')), batch)).toBe(true);
  });

  it('keeps a batch the worker submitted but has not recorded yet: the attempt is still running', () => {
    expect(batchAwaited(runWith({ status: 'running' }), batch)).toBe(true);
  });

  it("keeps a batch submitted before the attempt's start was committed: the phase still shows the attempt before", () => {
    expect(batchAwaited(runWith({ status: 'queued', attempts: 0 }), batch)).toBe(true);
    expect(batchAwaited(runWith({ status: 'retrying', attempts: 1 }), { ...batch, attempt: 2 })).toBe(true);
  });

  it("keeps a tool loop's next batch while the phase still shows the wait on the loop's previous one", () => {
    expect(batchAwaited(runWith(waitingOn('msgbatch_1')), batch)).toBe(true);
  });

  it('drops a batch of an earlier attempt, an earlier iteration, or an ended run', () => {
    expect(batchAwaited(runWith({ ...waitingOn('msgbatch_1'), attempts: 2 }), batch)).toBe(false);
    expect(batchAwaited(runWith({ status: 'running', attempts: 2 }), batch)).toBe(false);
    expect(batchAwaited(runWith({ status: 'running', iteration: 2 }), batch)).toBe(false);
    expect(batchAwaited(runWith(waitingOn('msgbatch_2'), 'cancelled'), batch)).toBe(false);
    expect(batchAwaited(runWith({ status: 'completed' }), batch)).toBe(false);
  });
});
