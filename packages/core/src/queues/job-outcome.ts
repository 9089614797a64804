/**
 * The error boundary of every BullMQ worker host (agent pools, the tools pool, the manager's end
 * actions and schedule fires): one function turns whatever a job attempt threw into the attempt's
 * outcome, so whether a job is tried again is decided here and nowhere else.
 *
 * A retryable {@link FleetError} with attempts left is thrown to BullMQ as it is (BullMQ backs off
 * and retries); anything else ends the job: BullMQ's `UnrecoverableError`, carrying the fleet code
 * so the failed span's `error.type` and the job's `failedReason` (`<CODE>: <message>`) name it.
 *
 * @see https://docs.bullmq.io/guide/retrying-failing-jobs#stop-retrying-jobs
 */
import { UnrecoverableError } from 'bullmq';

import { FleetError, toFleetError, type FleetErrorCode } from '../errors.js';

/** What one failed job attempt comes to; see {@link toJobOutcome}. */
export interface JobOutcome {
  /** The failure as a {@link FleetError} (anything else thrown is kept as its `cause`). */
  error: FleetError;
  /** Whether BullMQ will run another attempt: the error is retryable and attempts are left. */
  willRetry: boolean;
  /**
   * What the processor throws to BullMQ: `error` itself when `willRetry`, else an
   * `UnrecoverableError` with `code` set to the fleet code and the message `<CODE>: <message>`.
   */
  thrown: Error;
}

/**
 * The outcome of a failed job attempt.
 *
 * @param err - what the attempt threw. A `FleetError` keeps its code and retry decision; a BullMQ
 *   `UnrecoverableError` is never retried; anything else becomes `fallback`.
 * @param attempt - this attempt's number, 1 for the first (BullMQ's `attemptsMade + 1`).
 * @param maxAttempts - attempts the job has, the first included (the job's `opts.attempts`).
 * @param fallback - the code of an error that is not a `FleetError`. @defaultValue `INTERNAL` (retryable)
 * @example
 * } catch (err) {
 *   const outcome = toJobOutcome(err, job.attemptsMade + 1, job.opts.attempts ?? 1);
 *   log.warn({ will_retry: outcome.willRetry, error: outcome.error.toJSON() }, 'attempt failed');
 *   throw outcome.thrown;
 * }
 */
export function toJobOutcome(err: unknown, attempt: number, maxAttempts: number, fallback: FleetErrorCode = 'INTERNAL'): JobOutcome {
  const error = err instanceof UnrecoverableError && !(err instanceof FleetError) ? fromUnrecoverable(err, fallback) : toFleetError(err, fallback);
  const willRetry = error.retryable && attempt < maxAttempts;
  return { error, willRetry, thrown: willRetry ? error : finalJobError(error) };
}

/** Throw this for a job that cannot succeed whatever the attempt (bad job data): it is never retried. */
export function unrecoverableJob(code: FleetErrorCode, message: string, options: { details?: Record<string, unknown>; cause?: unknown } = {}): Error {
  return toJobOutcome(FleetError.nonRetryable(code, message, options), 1, 1).thrown;
}

/**
 * The error that ends a job's last attempt: a BullMQ `UnrecoverableError` (no further attempt),
 * carrying the fleet error's `code`, so the failed span's `error.type` is that code (e.g.
 * `PHASE_TIMEOUT`) rather than `UnrecoverableError`, as on every earlier attempt.
 */
export function finalJobError(error: FleetError): UnrecoverableError & { readonly code: FleetErrorCode; readonly fleetError: FleetError } {
  return Object.assign(new UnrecoverableError(`${error.code}: ${error.message}`), { code: error.code, fleetError: error });
}

/** The FleetError inside an `UnrecoverableError` (one of {@link finalJobError}'s, or a bare one). */
function fromUnrecoverable(err: UnrecoverableError, fallback: FleetErrorCode): FleetError {
  const inner = (err as { fleetError?: unknown }).fleetError;
  if (inner instanceof FleetError) return inner;
  return FleetError.nonRetryable(fallback, err.message, { cause: err });
}
