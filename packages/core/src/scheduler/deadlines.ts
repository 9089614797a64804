/**
 * How long the manager gives a phase before it checks on it: pure, in ms, so the scheduler emits
 * deadlines as durations and the shell dates them with its clock when it commits.
 */
import type { PhaseDefinition } from '../workflow/definition.js';

/** Extra time, ms, a phase gets past `timeout × attempts + backoff` before the manager checks on it. */
export const DEFAULT_DEADLINE_GRACE_MS = 30_000;

/**
 * The time, ms, from a phase's enqueue (or from now, for one attempt) until its deadline.
 *
 * - `scope: 'iteration'` (default), from the enqueue of an iteration: every attempt's timeout, the
 *   backoff between them, and grace: `timeout_ms × attempts + retry_delay_ms × (2^attempts − 1) + graceMs`
 *   with `attempts = retries + 1`.
 * - `scope: 'attempt'`, for a deadline pushed back while the phase's job still waits or a live
 *   worker holds it: one attempt's timeout and grace, `timeout_ms + graceMs`.
 *
 * @param def - the phase (`timeoutMs`, `retries`, `retryDelayMs` are read).
 * @param graceMs - ≥ 0, ms (the shell's `deadlineGraceMs`, {@link DEFAULT_DEADLINE_GRACE_MS} by default).
 */
export function phaseDeadlineAfterMs(
  def: Pick<PhaseDefinition, 'timeoutMs' | 'retries' | 'retryDelayMs'>,
  graceMs: number,
  scope: 'iteration' | 'attempt' = 'iteration',
): number {
  if (scope === 'attempt') return def.timeoutMs + graceMs;
  const attempts = def.retries + 1;
  return def.timeoutMs * attempts + def.retryDelayMs * (2 ** attempts - 1) + graceMs;
}
