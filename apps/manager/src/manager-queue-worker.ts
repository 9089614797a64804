/**
 * The manager-queue worker: takes the reports addressed to the manager (`manager` queue, see
 * `ManagerJobDataSchema`) and applies each to its run through the manager's {@link RunDriver}:
 * phase deadlines (checked first by the {@link DeadlineScheduler}), cancellations, external events,
 * resumes, a child run's outcome reported to its parent (`child_run_finished`), and the follow-ups a worker's commit left to the
 * manager (`run_followup`, carried out by {@link FollowUps}).
 *
 * Job data that does not match the contract ends the job at once (`unrecoverableJob`,
 * `INVALID_INPUT`); anything else a report throws goes back to BullMQ, which retries the report.
 */
import { isTerminalRun, unrecoverableJob, MANAGER_QUEUE, ManagerJobDataSchema, type ManagerJobData, type SchedulerEvent, systemClock, type Clock } from '@agentfleet/core';
import { isEventRejected, type RunDriver, type RunStore } from '@agentfleet/core/internal';
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { DeadlineScheduler } from './deadline-scheduler.js';
import type { FollowUps } from './follow-ups.js';

/** What {@link startManagerQueueWorker} works with. */
export interface ManagerQueueWorkerOptions {
  /** A connection made for BullMQ workers (`maxRetriesPerRequest: null`). */
  redis: Redis;
  prefix: string;
  store: RunStore;
  driver: RunDriver;
  followUps: FollowUps;
  deadlines: DeadlineScheduler;
  /** Reports processed at once. */
  concurrency: number;
  /** BullMQ lock on a report being processed, ms. */
  lockDurationMs: number;
  /** How often reports held by a dead manager are looked for, ms. */
  stalledIntervalMs: number;
  /** Worker errors (connection errors). */
  onError: (err: Error) => void;
  /** Where a report that failed for good is reported. */
  warn: (message: string) => void;
  /** The clock a taken deadline and a refused cancel's event are dated with (epoch ms); the system clock by default. */
  clock?: Clock | undefined;
}

/**
 * Start the manager-queue worker; resolves once it is ready to take reports. Close it with
 * `Worker.close()` (finishing the reports in flight).
 */
export async function startManagerQueueWorker(options: ManagerQueueWorkerOptions): Promise<Worker<ManagerJobData>> {
  const { store, driver, redis, followUps, deadlines, warn } = options;
  const clock = options.clock ?? systemClock;

  async function handle(job: Job<ManagerJobData>): Promise<void> {
    const parsed = ManagerJobDataSchema.safeParse(job.data);
    if (!parsed.success) throw unrecoverableJob('INVALID_INPUT', `manager job ${job.id} has invalid data: ${parsed.error.message}`);
    const data = parsed.data;
    if (data.type === 'run_followup') {
      const { meta, state, result } = await store.getRun(data.run_id);
      await followUps.carryOut(meta, data.actions, state, result);
      return;
    }
    const deadline = data.type === 'phase_deadline' ? { run_id: data.run_id, phase: data.phase, iteration: data.iteration } : undefined;
    if (deadline && !(await deadlines.deadlineDue(deadline))) return;
    const carriesOutput = data.type === 'phase_completed' || (data.type === 'child_run_finished' && data.status === 'completed');
    const output = carriesOutput ? { phase: data.phase, value: data.output_ref ? await store.readStagedOutput(data.run_id, data.output_ref) : data.output } : undefined;
    // An event the scheduler cannot decide is refused for good and recorded on the run by the driver
    // (`event_rejected`): this report is done with, as one whose event was refused as stale.
    const decision = await driver.apply(data.run_id, toSchedulerEvent(data, clock.now()), { output }).then(
      (applied) => applied.decision,
      (err: unknown) => {
        if (!isEventRejected(err)) throw err;
        return { accepted: false };
      },
    );
    if (data.type === 'cancel_requested' && !decision.accepted) await recordIgnoredCancel(store, data.run_id, data.reason, data.at, clock.now());
    if ((data.type === 'phase_completed' || data.type === 'child_run_finished') && data.output_ref) await redis.del(data.output_ref);
    // A phase deadline the decision refused is stale.
    if (deadline && !decision.accepted) await store.removeDeadline(deadline);
    // A deadline that found nothing to do (its committer got the commit in but may have died before
    // its effects), or a redelivered report (its first delivery may have died the same way): carry out
    // whatever the run's outbox holds, whoever committed it.
    if ((deadline && !decision.accepted) || job.attemptsStarted > 1 || job.attemptsMade > 0) await driver.reconcile(data.run_id);
  }

  const worker = new Worker<ManagerJobData>(MANAGER_QUEUE, handle, {
    connection: redis,
    prefix: options.prefix,
    concurrency: options.concurrency,
    lockDuration: options.lockDurationMs,
    stalledInterval: options.stalledIntervalMs,
    autorun: true,
  });
  worker.on('error', options.onError);
  worker.on('failed', (job, err) => {
    if (job && job.attemptsMade >= (job.opts.attempts ?? 1)) warn(`report ${job.id} (${job.name}) failed for good: ${err.message}`);
  });
  await worker.waitUntilReady();
  return worker;
}

/**
 * A cancel the run's decision refused because the run had already finished (completed or failed
 * before the cancel arrived): say so in the run's events, so whoever asked sees why nothing was
 * cancelled. A redelivered cancel of a run it cancelled leaves no second trace.
 */
async function recordIgnoredCancel(store: RunStore, runId: string, reason: string, requestedAt: number, now: number): Promise<void> {
  const { state } = await store.getRun(runId);
  if (!isTerminalRun(state.status) || state.status === 'cancelled') return;
  const finishedAt = state.finishedAt === undefined ? '' : ` at ${new Date(state.finishedAt).toISOString()}`;
  await store.appendEvent(runId, {
    type: 'cancel_ignored',
    at: now,
    reason,
    status: state.status,
    message: `the cancel requested at ${new Date(requestedAt).toISOString()} arrived after the run had ${state.status}${finishedAt}; nothing was cancelled`,
  });
}

/** The scheduler event of a report (every type but `run_followup`, which carries no event). */
function toSchedulerEvent(data: Exclude<ManagerJobData, { type: 'run_followup' }>, now: number): SchedulerEvent {
  switch (data.type) {
    case 'phase_completed':
      return {
        type: 'phase_completed',
        at: data.at,
        phase: data.phase,
        iteration: data.iteration,
        attempt: data.attempt,
        usage: data.usage,
        model: data.model,
        action: data.action,
        cacheHit: data.cache_hit,
        startedAt: data.started_at,
        agent: data.agent,
      };
    case 'phase_attempt_failed':
      return {
        type: 'phase_attempt_failed',
        at: data.at,
        phase: data.phase,
        iteration: data.iteration,
        attempt: data.attempt,
        error: data.error,
        willRetry: data.will_retry,
        usage: data.usage,
        startedAt: data.started_at,
        agent: data.agent,
      };
    case 'child_run_finished':
      return {
        type: 'child_run_finished',
        at: data.at,
        phase: data.phase,
        iteration: data.iteration,
        childRunId: data.child_run_id,
        status: data.status,
        usage: data.usage,
        model: data.model,
        error: data.error,
      };
    case 'phase_deadline':
      // Checked when taken, so it is due now (a pushed-back deadline fires later than it was first set for).
      return { type: 'phase_deadline', at: now, phase: data.phase, iteration: data.iteration };
    case 'cancel_requested':
      return { type: 'cancel_requested', at: data.at, reason: data.reason };
    case 'external_event':
      return { type: 'external_event', at: data.at, event: data.event, data: data.data, id: data.id };
    case 'resume_requested':
      return { type: 'resume_requested', at: data.at };
  }
}
