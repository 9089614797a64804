import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { progressLine } from './progress.js';

/** The fenced block of a docs page that follows `<!-- checked by TEST -->`, without its last newline. */
function checkedSample(page: string, test: string): string {
  const markdown = readFileSync(new URL(`../../../${page}`, import.meta.url), 'utf8');
  const marker = `<!-- checked by ${test} -->\n\`\`\`\n`;
  const start = markdown.indexOf(marker);
  if (start < 0) throw new Error(`${page} has no block marked <!-- checked by ${test} -->`);
  return markdown.slice(start + marker.length, markdown.indexOf('\n```', start + marker.length));
}

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

describe('the progress sample of docs/following-runs.md', () => {
  it('is what progressLine prints for those events', () => {
    const events: Parameters<typeof progressLine>[0][] = [
      { type: 'run_created', at: 0, workflow: 'software-delivery', version: '1.0.0' },
      { type: 'phase_queued', at: 0, phase: 'planning', agent: 'planner', iteration: 1 },
      { type: 'phase_started', at: 0, phase: 'planning', agent: 'planner', attempt: 1, iteration: 1 },
      { type: 'phase_completed', at: 4200, phase: 'planning', duration_ms: 4200, iteration: 1 },
      { type: 'phase_waiting', at: 4200, phase: 'sign_off', event: 'approval', prompt: 'approve the design before implementation' },
    ] as Parameters<typeof progressLine>[0][];
    const printed = events.map((e) => progressLine(e, '3f0c…')).filter((l) => l !== undefined);
    expect(printed.join('\n')).toBe(checkedSample('docs/following-runs.md', 'apps/cli/src/progress.test.ts'));
  });
});
