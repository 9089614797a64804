import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { progressLine } from './progress.js';
import { LiveProgress } from './tty-progress.js';

/** A terminal stand-in that keeps what was written (no size: counts as 80 × 24). */
function terminal(): { stream: NodeJS.WriteStream; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  }) as unknown as NodeJS.WriteStream;
  return { stream, text: () => text };
}

describe('LiveProgress', () => {
  it('shows each phase in flight with its state and time by the clock, keeps the plain lines, and clears the block when phases end', () => {
    let now = 1_000;
    const tty = terminal();
    const live = new LiveProgress((e) => progressLine(e, 'run-1'), { stream: tty.stream, now: () => now, timer: false });
    live.event({ type: 'phase_queued', at: 0, phase: 'plan', agent: 'planner', iteration: 1 });
    now += 1_200;
    live.render();
    expect(tty.text()).toContain('… plan (planner) queued 1.2s');
    live.event({ type: 'phase_started', at: 0, phase: 'plan', agent: 'planner', iteration: 1, attempt: 1 });
    now += 2_500;
    live.render();
    expect(tty.text()).toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] plan \(planner\) running 2\.5s/);
    live.event({ type: 'phase_waiting', at: 0, phase: 'sign_off', event: 'approval', prompt: 'ok?' });
    now += 300;
    live.render();
    expect(tty.text()).toContain('⏸ sign_off waiting 0.3s for "approval"');
    const before = tty.text().length;
    live.event({ type: 'phase_completed', at: 0, phase: 'plan', iteration: 1, attempt: 1, duration_ms: 2500 });
    live.event({ type: 'run_finished', at: 0, status: 'completed', duration_ms: 4000 });
    live.close();
    const after = tty.text().slice(before);
    expect(after).toContain('✓ plan completed in 2.5s');
    expect(after).toContain('run completed in 4.0s');
    expect(after).not.toMatch(/running \d/);
    // The plain lines went to the scrollback on the way.
    expect(tty.text()).toContain('▶ plan (planner) started');
    expect(tty.text()).toContain('answer: fleet event run-1 approval');
  });
});
