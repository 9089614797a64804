import { describe, expect, it } from 'vitest';
import { createRepeatLimiter } from './repeat-limit.js';

describe('createRepeatLimiter', () => {
  it('writes a line once per window per key and says how many were held back', () => {
    let now = 0;
    const limit = createRepeatLimiter(10_000, () => now);
    expect(limit('OOM')).toEqual({ emit: true, suppressed: 0 });
    for (let i = 0; i < 240; i++) expect(limit('OOM')).toEqual({ emit: false });
    expect(limit('ECONNREFUSED')).toEqual({ emit: true, suppressed: 0 });
    now = 9_999;
    expect(limit('OOM')).toEqual({ emit: false });
    now = 10_000;
    expect(limit('OOM')).toEqual({ emit: true, suppressed: 241 });
    expect(limit('OOM')).toEqual({ emit: false });
  });

  it('forgets the oldest key beyond maxKeys', () => {
    const limit = createRepeatLimiter(10_000, () => 0, 2);
    limit('a');
    limit('b');
    limit('c');
    expect(limit('a')).toEqual({ emit: true, suppressed: 0 });
    expect(limit('c')).toEqual({ emit: false });
  });
});
