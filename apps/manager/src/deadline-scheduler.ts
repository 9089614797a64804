/**
 * The manager's deadline scheduler: takes the phase deadlines that came due (`<p>:deadlines`, leased
 * to one manager at a time) and hands each to the manager queue as a `phase_deadline` report, where
 * {@link DeadlineScheduler.deadlineDue} checks it before it is applied like any other event (a
 * manager that dies mid-way has the job taken over). The commit that ends the phase removes its
 * deadline.
 */
import { FleetError, IN_FLIGHT_PHASE_STATUSES, phaseDeadlineAfterMs, phaseJobId, type Clock, type FleetLogger } from '@agentfleet/core';
import { COMMIT_FAILURE_MESSAGE, type DeadlineRef, type ManagerQueue, type RunDriver, type RunStore } from '@agentfleet/core/internal';

/** What {@link DeadlineScheduler} works with. */
export interface DeadlineSchedulerOptions {
  store: RunStore;
  /** Finds a phase's job (and retries one failed on a commit error). */
  driver: RunDriver;
  /** Where due deadlines are handed, as `phase_deadline` reports. */
  managerQueue: ManagerQueue;
  /** The clock a pushed-back deadline is moved on with (epoch ms). */
  clock: Clock;
  /** Extra time a pushed-back phase deadline gets past one attempt's timeout, ms. */
  deadlineGraceMs: number;
  /** How long a due deadline stays leased to this manager once taken, ms. */
  leaseMs: number;
  log: FleetLogger;
  /** Where a deadline that could not be handed on is reported. */
  warn: (message: string) => void;
}

/** Claims due deadlines and checks, when one is taken from the manager queue, whether it is really due. */
export class DeadlineScheduler {
  constructor(private readonly options: DeadlineSchedulerOptions) {}

  /**
   * Hand each deadline due by `now` (epoch ms) to the manager queue, with a job id per phase
   * iteration (a repeat adds nothing). Each stays leased for `leaseMs` meanwhile. A report that
   * fails to be added is warned about; its deadline comes due again when the lease ends.
   */
  async handOutDue(now: number): Promise<void> {
    const { store, managerQueue, warn } = this.options;
    const due = await store.claimDueDeadlines(now, now + this.options.leaseMs);
    await Promise.all(
      due.map((ref) =>
        managerQueue
          .report({ type: 'phase_deadline', ...ref, at: now }, { jobId: `${phaseJobId(ref.run_id, ref.phase, ref.iteration)}.deadline` })
          .catch((err: unknown) => warn(`deadline of ${ref.run_id} ${ref.phase}: ${(err as Error).message}`)),
      ),
    );
  }

  /**
   * Whether a phase deadline that came due is really due. It counts from the enqueue, so it can pass
   * while the job still waits in a busy queue (or is held by the rate limiter), or while a live worker
   * holds it: then the deadline moves on by one more attempt's timeout and the phase goes on. It is due
   * when the job is gone, failed, or stalled past BullMQ's limit; and an approval's (or a waiting
   * phase's) when its time is up. A deadline of a phase that ended or moved on is removed.
   *
   * @throws Redis errors (the report is retried by the manager queue).
   */
  async deadlineDue(ref: DeadlineRef): Promise<boolean> {
    const { store, driver, clock, deadlineGraceMs, log } = this.options;
    let run;
    try {
      run = await store.getRun(ref.run_id);
    } catch (err) {
      if (err instanceof FleetError && err.code === 'RUN_NOT_FOUND') {
        await store.removeDeadline(ref);
        return false;
      }
      throw err;
    }
    const { meta, state } = run;
    const def = meta.workflow.phases.find((p) => p.name === ref.phase);
    const p = state.phases[ref.phase];
    if (!def || !p || p.iteration !== ref.iteration || (!IN_FLIGHT_PHASE_STATUSES.includes(p.status) && p.status !== 'waiting')) {
      await store.removeDeadline(ref);
      return false;
    }
    if (IN_FLIGHT_PHASE_STATUSES.includes(p.status) && (def.kind === 'agent' || def.kind === 'tool')) {
      const phaseJob = await driver.findPhaseJob(def, p.agent, phaseJobId(ref.run_id, ref.phase, ref.iteration));
      const jobState = phaseJob ? await phaseJob.getState() : 'missing';
      if (phaseJob && jobState === 'failed' && phaseJob.failedReason.startsWith(COMMIT_FAILURE_MESSAGE)) {
        // Its work did not fail, only the commit of its outcome did (Redis trouble outlasted the
        // worker's retries): the attempt is run again, counted as the attempt it was.
        await phaseJob.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
        await store.setDeadline(ref, clock.now() + phaseDeadlineAfterMs(def, deadlineGraceMs, 'attempt'), 'XX');
        log.warn({ ...ref, job_id: phaseJob.id }, 'a phase job failed on a commit error is taken up again');
        return false;
      }
      if (['waiting', 'delayed', 'prioritized', 'active', 'waiting-children'].includes(jobState)) {
        await store.setDeadline(ref, clock.now() + phaseDeadlineAfterMs(def, deadlineGraceMs, 'attempt'), 'XX');
        return false;
      }
    }
    return true;
  }
}
