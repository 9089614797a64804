import { describe, expect, it } from 'vitest';
import { progressLine } from './progress.js';

describe('progressLine', () => {
  it('says how to answer a waiting phase', () => {
    const approval = progressLine({ type: 'phase_waiting', at: 0, phase: 'sign_off', event: 'approval', prompt: 'ship it?' }, 'run-1');
    expect(approval).toBe(`  ⏸ sign_off waiting for "approval": ship it?\n    answer: fleet event run-1 approval --data '{"approved": true, "comment": "looks good"}'`);
    const answers = progressLine({ type: 'phase_waiting', at: 0, phase: 'planning', event: 'answers', prompt: ['Which database?'] }, 'run-1');
    expect(answers).toContain(`answer: fleet event run-1 answers --data '{"answers": {"<question>": "<answer>"}}'`);
  });

  it('names the role without a pool and the command that starts one', () => {
    const line = progressLine({ type: 'role_unserved', at: 0, phase: 'review', iteration: 1, role: 'reviewer', message: 'no worker serves role reviewer: start `fleet agents --roles reviewer`' });
    expect(line).toBe('  ! review is queued but no worker serves role reviewer: start `fleet agents --roles reviewer`');
  });
});
