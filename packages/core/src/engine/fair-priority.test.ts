import { describe, expect, it } from 'vitest';
import { BULLMQ_PRIORITY_LIMIT, PRIORITY_BAND_WIDTH, priorityBandStart } from './fair-priority.js';

describe('priority bands', () => {
  it('puts priority 10 first and priority 1 last, each band below the next, all within BullMQ range', () => {
    expect(priorityBandStart(10)).toBe(1);
    expect(PRIORITY_BAND_WIDTH).toBe(209_715);
    for (let p = 10; p > 1; p--) expect(priorityBandStart(p) + PRIORITY_BAND_WIDTH).toBe(priorityBandStart(p - 1));
    // The last value of the last band (priority 1, a key with a saturated backlog) is still a valid BullMQ priority.
    expect(priorityBandStart(1) + PRIORITY_BAND_WIDTH - 1).toBeLessThanOrEqual(BULLMQ_PRIORITY_LIMIT);
  });

  it('clamps out-of-range priorities (states written by hand) to the nearest band', () => {
    expect(priorityBandStart(42)).toBe(priorityBandStart(10));
    expect(priorityBandStart(-3)).toBe(priorityBandStart(1));
  });
});
