import { FleetError } from '../errors.js';

/** Name of AgentFleet's BullMQ backoff strategy (`backoff: {type: FLEET_BACKOFF, delay}`). */
export const FLEET_BACKOFF = 'fleet';

/**
 * Delay before the next attempt of a phase job, ms: exponential from `delay` (the phase's
 * `retry_delay`), with "equal jitter" (half fixed, half random), and never shorter than the
 * provider's `retry-after` when the error carries one ({@link FleetError.retryAfterMs}).
 *
 * This is the only retry policy for LLM calls: the SDK's own retries are off, so retries never stack.
 *
 * @param attemptsMade - failed attempts so far (1 after the first failure), as BullMQ passes it.
 * @param baseDelayMs - the job's `backoff.delay`.
 * @see https://docs.bullmq.io/guide/retrying-failing-jobs#custom-back-off-strategies
 */
export function fleetBackoffDelay(attemptsMade: number, baseDelayMs: number, err: unknown, random: () => number = Math.random): number {
  const exponential = baseDelayMs * 2 ** Math.max(0, attemptsMade - 1);
  const jittered = Math.round(exponential / 2 + (random() * exponential) / 2);
  return Math.max(jittered, err instanceof FleetError ? (err.retryAfterMs ?? 0) : 0);
}
