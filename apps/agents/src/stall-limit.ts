/**
 * Recovery of phase jobs that BullMQ failed for exceeding their stall limit.
 *
 * A job whose holder dies (or stops renewing its lock) is put back in the queue by the stalled-job
 * check; after `maxStalledCount` such returns the next take fails the job at once, without running it,
 * with {@link STALL_LIMIT_REASON}. Nothing else would commit an outcome for that attempt, so without
 * this the phase would sit until the manager's deadline and then fail with every retry unused.
 *
 * The worker host that took the job handles BullMQ's `failed` event for that reason: it commits the
 * lost attempt to the run through its {@link RunDriver} (a failed attempt with `PHASE_WORKER_LOST`,
 * counted against the phase's `retries`), under the run's version fence, so a duplicate or stale
 * report is refused. When the decision leaves the phase `retrying`, the same job is put back in the
 * queue at once with a fresh stall budget; when the attempts are used up, the phase fails.
 */
import { FleetError, PhaseJobDataSchema, toJobOutcome, type FleetLogger, type PhaseJobData, type PhaseJobResult } from '@agentfleet/core';
import type { RunDriver } from '@agentfleet/core/internal';
import type { Job } from 'bullmq';

/** The failure reason BullMQ gives a job that stalled more often than the worker's `maxStalledCount`. */
export const STALL_LIMIT_REASON = 'job stalled more than allowable limit';

/** What a worker host lends {@link recoverStalledOut}. */
export interface StallRecoveryHost {
  /** Commits the lost attempt, and carries out the run's outbox when the attempt is refused. */
  driver: RunDriver;
  /** The role serving the queue (`tools` for the tools pool). */
  role: string;
  log: FleetLogger;
  /** The worker's `maxStalledCount`, for the error message. */
  maxStalledCount: number;
}

/** Whether BullMQ failed the job for exceeding its stall limit (and not for anything the work threw). */
export function isStallLimitFailure(err: Error | undefined): boolean {
  return err?.message === STALL_LIMIT_REASON;
}

/**
 * Commit the attempt a stalled-out job lost, and put the job back for the next attempt when the run
 * still wants one.
 *
 * @param job - the job as BullMQ's `failed` event gives it (`attemptsMade` already counts the lost attempt).
 * @returns `retried` (job back in the queue), `failed` (the phase failed: attempts or the run's
 *   retries used up) or `ignored` (the run no longer wanted this attempt: what the run's outbox
 *   still held was carried out).
 * @throws Redis errors; the caller logs them (the manager's deadline remains the backstop).
 */
export async function recoverStalledOut(job: Job<PhaseJobData, PhaseJobResult>, host: StallRecoveryHost): Promise<'retried' | 'failed' | 'ignored'> {
  const parsed = PhaseJobDataSchema.safeParse(job.data);
  if (!parsed.success) return 'ignored';
  const data = parsed.data;
  const attempt = Math.max(1, job.attemptsMade);
  const maxAttempts = job.opts.attempts ?? data.max_attempts;
  const error = new FleetError(
    'PHASE_WORKER_LOST',
    `phase "${data.phase}" (job ${job.id ?? '?'}) lost its worker more than ${host.maxStalledCount} times on attempt ${attempt} of ${maxAttempts}: each holder died or stopped renewing its lock`,
    { details: { job_id: job.id ?? null, attempt, max_attempts: maxAttempts, max_stalled_count: host.maxStalledCount } },
  );
  const { willRetry } = toJobOutcome(error, attempt, maxAttempts);
  const applied = await host.driver.apply(data.run_id, {
    type: 'phase_attempt_failed',
    at: Date.now(),
    phase: data.phase,
    iteration: data.iteration,
    attempt,
    error: error.toJSON(),
    willRetry,
    usage: { input_tokens: 0, output_tokens: 0 },
    agent: host.role,
  });
  const ref = { run_id: data.run_id, phase: data.phase, iteration: data.iteration, attempt };
  if (!applied.decision.accepted) {
    // The phase had ended meanwhile; a holder may have committed its outcome and died before adding
    // what came next: that is in the run's outbox, carried out here (follow-ups go to the manager queue).
    await host.driver.reconcile(data.run_id);
    return 'ignored';
  }
  const phase = applied.decision.state.phases[data.phase];
  if (phase?.status !== 'retrying' || phase.iteration !== data.iteration) {
    host.log.warn({ ...ref, error: error.toJSON() }, 'phase attempt lost its worker; no attempts left');
    return 'failed';
  }
  // BullMQ keeps the stall count on the job; the next attempt starts with a full stall budget.
  await host.driver.store.redis.hset(`${job.queueQualifiedName}:${job.id ?? ''}`, 'stc', 0);
  await job.retry('failed');
  host.log.warn({ ...ref, error: error.toJSON() }, 'phase attempt lost its worker; job queued for the next attempt');
  return 'retried';
}
