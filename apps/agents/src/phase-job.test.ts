import { FleetError, errorType } from '@agentfleet/core';
import { UnrecoverableError } from 'bullmq';
import { describe, expect, it } from 'vitest';

import { finalAttemptError } from './phase-job.js';

describe('finalAttemptError', () => {
  it('stops BullMQ from retrying yet keeps the fleet error code as the span error.type', () => {
    const error = finalAttemptError(new FleetError('PHASE_TIMEOUT', 'phase "code" timed out after 1000 ms'));
    expect(error).toBeInstanceOf(UnrecoverableError);
    expect(error.name).toBe('UnrecoverableError');
    expect(errorType(error)).toBe('PHASE_TIMEOUT');
    expect(error.message).toBe('PHASE_TIMEOUT: phase "code" timed out after 1000 ms');
  });
});
