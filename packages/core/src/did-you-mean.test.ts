import { describe, expect, it } from 'vitest';
import { closestName, didYouMean } from './did-you-mean.js';

describe('closestName', () => {
  it('finds typos of workflow names, fields and roles', () => {
    expect(closestName('software-delivry', ['software-delivery', 'quick-fix'])).toBe('software-delivery');
    expect(closestName('timout', ['timeout', 'retries', 'depends_on'])).toBe('timeout');
    expect(closestName('depend_on', ['timeout', 'depends_on'])).toBe('depends_on');
    expect(closestName('Reviewr', ['planner', 'reviewer'])).toBe('reviewer');
  });

  it('suggests nothing for an exact match or a far-off word', () => {
    expect(closestName('timeout', ['timeout'])).toBeUndefined();
    expect(closestName('banana', ['planner', 'coder'])).toBeUndefined();
    expect(closestName('ab', ['xy'])).toBeUndefined();
    expect(didYouMean('zzz', [])).toBe('');
    expect(didYouMean('codr', ['coder'])).toBe(' (did you mean "coder"?)');
  });
});
