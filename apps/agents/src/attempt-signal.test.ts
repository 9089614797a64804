import { describe, expect, it } from 'vitest';
import { attemptSignal } from './phase-job.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('attemptSignal', () => {
  it('aborts with a TimeoutError when the attempt runs out of time', async () => {
    const a = attemptSignal(20, undefined);
    await sleep(60);
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

  it('never aborts once disposed: the timer and the listener are gone', async () => {
    const cancel = new AbortController();
    const a = attemptSignal(20, cancel.signal);
    a.dispose();
    cancel.abort('late');
    await sleep(60);
    expect(a.signal.aborted).toBe(false);
  });
});
