import { describe, expect, it } from 'vitest';
import { TestClock, settledWithin } from './clock.js';

describe('TestClock', () => {
  it('fires a timer when advanced past it, once, in due order; a cancelled one never', () => {
    // Frozen: the real time a busy machine spends between these lines must not move the clock.
    const clock = new TestClock({ frozenAt: Date.UTC(2026, 0, 1) });
    const fired: string[] = [];
    clock.setTimer(60_000, () => fired.push('minute'));
    clock.setTimer(1000, () => fired.push('second'));
    const cancel = clock.setTimer(500, () => fired.push('cancelled'));
    cancel();
    clock.advance(999);
    expect(fired).toEqual([]);
    clock.advance(60_000);
    expect(fired).toEqual(['second', 'minute']);
    clock.advance(60_000);
    expect(fired).toEqual(['second', 'minute']);
    expect(clock.pendingTimers).toBe(0);
  });

  it('a frozen clock stands still until advanced; its timers never fire on real time', () => {
    const at = Date.UTC(2026, 0, 1);
    const clock = new TestClock({ frozenAt: at });
    let fired = false;
    const realTimers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = realTimers();
    clock.setTimer(0, () => (fired = true));
    // No real timer stands behind it, so nothing but advance can fire it.
    expect(realTimers()).toBe(before);
    expect(clock.now()).toBe(at);
    expect(fired).toBe(false);
    clock.advance(0);
    expect(fired).toBe(true);
  });

  it('moves now() forward and refuses to go back', () => {
    const clock = new TestClock();
    const before = clock.now();
    clock.advance(86_400_000);
    expect(clock.now() - before).toBeGreaterThanOrEqual(86_400_000);
    expect(() => clock.advance(-1)).toThrow(RangeError);
  });
});

describe('settledWithin', () => {
  it('is true when the work settles first, rejected included, and clears its timer', async () => {
    const clock = new TestClock();
    expect(await settledWithin(Promise.resolve(1), 1000, clock)).toBe(true);
    expect(await settledWithin(Promise.reject(new Error('closed badly')), 1000, clock)).toBe(true);
    expect(clock.pendingTimers).toBe(0);
  });

  it('is false once the time passed on the clock, without waiting for it', async () => {
    const clock = new TestClock();
    const stuck = new Promise<void>(() => undefined);
    const result = settledWithin(stuck, 30 * 60_000, clock);
    clock.advance(30 * 60_000);
    expect(await result).toBe(false);
  });
});
