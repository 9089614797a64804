import { FleetError, type PhaseJobData, type PhaseJobResult } from '@agentfleet/core';
import type { Job } from 'bullmq';
import { describe, expect, it } from 'vitest';

import { failAttempt, scheduledBackoff, type AttemptOutcome, type PhaseJobContext } from './phase-job.js';

describe('the backoff of a failed attempt', () => {
  it('hands BullMQ the delay the attempt recorded in the run (phase_retry delay_ms), not a second draw', async () => {
    const job = { opts: { attempts: 3, backoff: { type: 'fleet', delay: 200 } } } as unknown as Job<PhaseJobData, PhaseJobResult>;
    const committed: AttemptOutcome[] = [];
    const ctx = {
      attempt: 1,
      ref: { run_id: 'r', phase: 'plan', iteration: 1 },
      data: { role: 'planner', max_attempts: 3 },
      started: 0,
      commit: (outcome: AttemptOutcome) => {
        committed.push(outcome);
        return Promise.resolve(true);
      },
    } as unknown as PhaseJobContext;
    // Twenty failures: each draws its own jittered delay, and BullMQ is asked for exactly that one.
    for (let i = 0; i < 20; i++) {
      const thrown = await failAttempt(job, ctx, new FleetError('PROVIDER_OVERLOADED', 'overloaded'), { input_tokens: 0, output_tokens: 0 }, () => undefined).catch((err: unknown) => err as Error);
      const recorded = committed.at(-1) as { retryDelayMs?: number };
      expect(recorded.retryDelayMs).toBeGreaterThanOrEqual(100);
      expect(recorded.retryDelayMs).toBeLessThanOrEqual(200);
      expect(scheduledBackoff(1, thrown, job)).toBe(recorded.retryDelayMs);
    }
  });
});
