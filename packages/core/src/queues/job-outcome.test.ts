import { UnrecoverableError } from 'bullmq';
import { describe, expect, it } from 'vitest';

import { FleetError } from '../errors.js';
import { errorType } from '../telemetry/trace.js';
import { finalJobError, toJobOutcome, unrecoverableJob } from './job-outcome.js';

describe('finalJobError', () => {
  it('stops BullMQ from retrying yet keeps the fleet error code as the span error.type', () => {
    const error = finalJobError(new FleetError('PHASE_TIMEOUT', 'phase "code" timed out after 1000 ms'));
    expect(error).toBeInstanceOf(UnrecoverableError);
    expect(error.name).toBe('UnrecoverableError');
    expect(errorType(error)).toBe('PHASE_TIMEOUT');
    expect(error.message).toBe('PHASE_TIMEOUT: phase "code" timed out after 1000 ms');
  });
});

describe('toJobOutcome', () => {
  it('rethrows a retryable error while attempts are left, and ends the job on the last one', () => {
    const err = new FleetError('PROVIDER_OVERLOADED', 'anthropic: 529 overloaded_error');
    const first = toJobOutcome(err, 1, 3);
    expect([first.willRetry, first.thrown]).toEqual([true, err]);
    const last = toJobOutcome(err, 3, 3);
    expect(last.willRetry).toBe(false);
    expect(last.thrown).toBeInstanceOf(UnrecoverableError);
    expect(last.thrown.message).toBe('PROVIDER_OVERLOADED: anthropic: 529 overloaded_error');
  });

  it('ends the job at once for a non-retryable error, whatever attempts are left', () => {
    const outcome = toJobOutcome(new FleetError('PROVIDER_AUTH', 'anthropic: 401'), 1, 5);
    expect(outcome.willRetry).toBe(false);
    expect(outcome.thrown).toBeInstanceOf(UnrecoverableError);
    expect(errorType(outcome.thrown)).toBe('PROVIDER_AUTH');
  });

  it('turns an unknown throw into the fallback code, keeping it as the cause', () => {
    const boom = new Error('ECONNRESET');
    const outcome = toJobOutcome(boom, 1, 2, 'TOOL_FAILED');
    expect([outcome.error.code, outcome.error.cause, outcome.willRetry]).toEqual(['TOOL_FAILED', boom, true]);
    expect(toJobOutcome(boom, 1, 2).error.code).toBe('INTERNAL');
  });

  it('never retries a BullMQ UnrecoverableError, and reads back the fleet error inside one', () => {
    const bare = toJobOutcome(new UnrecoverableError('bad data'), 1, 5);
    expect([bare.willRetry, bare.error.code, bare.error.message]).toEqual([false, 'INTERNAL', 'bad data']);
    const inner = new FleetError('PHASE_CANCELLED', 'the attempt was cancelled: cancelled by the manager');
    expect(toJobOutcome(finalJobError(inner), 1, 5).error).toBe(inner);
  });

  it('reports a cancelled attempt as PHASE_CANCELLED, never retried', () => {
    const outcome = toJobOutcome(new FleetError('PHASE_CANCELLED', 'cancelled'), 1, 3);
    expect(outcome.willRetry).toBe(false);
    expect(outcome.thrown.message).toMatch(/^PHASE_CANCELLED: /);
  });

  it('unrecoverableJob fails a job for good under its code', () => {
    const thrown = unrecoverableJob('INVALID_INPUT', 'job 7 has invalid data: run_id: required');
    expect(thrown).toBeInstanceOf(UnrecoverableError);
    expect(thrown.message).toBe('INVALID_INPUT: job 7 has invalid data: run_id: required');
  });
});
