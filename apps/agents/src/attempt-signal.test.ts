import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TestClock } from '@agentfleet/core';
import { attemptSignal } from './phase-job.js';

// The attempt's timer runs on vitest's fake clock: time is skipped, never slept.
beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('attemptSignal', () => {
  it('aborts with a TimeoutError when the attempt runs out of time, not before', () => {
    const a = attemptSignal(20, undefined);
    vi.advanceTimersByTime(19);
    expect(a.signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(a.signal.aborted).toBe(true);
    expect((a.signal.reason as Error).name).toBe('TimeoutError');
    expect(a.timedOut()).toBe(true);
    a.dispose();
  });

  it("aborts with the cancel's reason when BullMQ cancels the job", () => {
    const cancel = new AbortController();
    const a = attemptSignal(10_000, cancel.signal);
    cancel.abort('cancelled by the manager');
    expect(a.signal.aborted).toBe(true);
    expect(a.signal.reason).toBe('cancelled by the manager');
    expect(a.timedOut()).toBe(false);
    a.dispose();
  });

  it('never aborts once disposed: the timer and the listener are gone', () => {
    const cancel = new AbortController();
    const a = attemptSignal(20, cancel.signal);
    expect(vi.getTimerCount()).toBe(1);
    a.dispose();
    expect(vi.getTimerCount()).toBe(0);
    cancel.abort('late');
    vi.advanceTimersByTime(60_000);
    expect(a.signal.aborted).toBe(false);
  });
});

describe('attemptSignal on a worker host clock', () => {
  it('times the attempt on the clock it is given: advancing it past the timeout aborts with a TimeoutError', () => {
    vi.useRealTimers();
    const clock = new TestClock();
    const a = attemptSignal(10 * 60_000, undefined, clock);
    // A TestClock runs on with real time too: stop a minute short, so the few real ms this test
    // takes cannot bring the timeout forward.
    clock.advance(9 * 60_000);
    expect(a.signal.aborted).toBe(false);
    clock.advance(60_000);
    expect([a.signal.aborted, (a.signal.reason as Error).name, a.timedOut()]).toEqual([true, 'TimeoutError', true]);
    a.dispose();
    expect(clock.pendingTimers).toBe(0);
  });
});
