/**
 * What every phase job goes through around its work, in the agent pools and the tools pool alike:
 * validate the job data, take the logical attempt number, open the consumer span (a child of the
 * `send` span through the job's trace context), read the run and its shared context in one round
 * trip (or take them from this process's last commit of the run, see `RunDriver.recentRun`), make
 * sure the run still wants this iteration, and commit the attempt's outcome to the run
 * with {@link RunDriver}: the output, the next decision and the next phase jobs, without a hop through
 * the manager.
 *
 * The attempt's start is written only when the work outlasts {@link START_RECORD_AFTER_MS}; a quicker
 * attempt commits its start and its outcome together, in one write (as Temporal records an activity's
 * start with its completion). Either way the run's events show `phase_started` before the outcome.
 *
 * A run taken from this process's memory may be stale (another process committed since: a cancel, a
 * sibling phase's outcome), and any run may end the iteration while it is worked on. The commits find
 * out, being fenced by the run's version: the start's, sent once the work outlasts
 * {@link START_RECORD_AFTER_MS}, aborts the work as `PHASE_CANCELLED` when it comes back refused by a
 * run that ended the iteration; the outcome's, for quicker work, is decided again on the stored run
 * (and refused when the iteration ended). So a phase costs no read for it. Work whose side effects can
 * begin before that (a tool call) asks first: {@link PhaseJobContext.confirmCurrent}, or
 * {@link PhaseJobHost.checkBeforeWork} for a whole pool.
 */
import {
  FleetAttributes,
  IN_FLIGHT_PHASE_STATUSES,
  PhaseJobDataSchema,
  extractTraceContext,
  fleetBackoffDelay,
  isBatchWait,
  isTerminalRun,
  messagingAttributes,
  recordJobStart,
  withSpan,
  type PhaseJobData,
  type PhaseJobResult,
  type RunMeta,
  type RunState,
  type SchedulerEvent,
  type StepAction,
  type TokenUsage,
  FleetError,
  abortError,
  toFleetError,
  finalJobError,
  toJobOutcome,
  unrecoverableJob,
  type FleetErrorCode,
  systemClock,
  type Clock,
} from '@agentfleet/core';
import {
  COMMIT_FAILURE_MESSAGE,
  isEventRejected,
  type ManagerQueue,
  type RunDriver,
} from '@agentfleet/core/internal';
import { randomUUID } from 'node:crypto';
import { SpanKind } from '@opentelemetry/api';
import type { Job, MinimalJob } from 'bullmq';

/**
 * Committing an attempt's outcome failed (Redis) for longer than {@link COMMIT_RETRY_LIMIT_MS}. The
 * work itself did not fail, so the attempt is not reported as failed: the job is retried by BullMQ as
 * is, and whatever the run's earlier commits left undone is in its outbox.
 */
export class CommitFailure extends Error {
  constructor(cause: unknown) {
    super(`${COMMIT_FAILURE_MESSAGE}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'CommitFailure';
  }
}

/**
 * How long a worker keeps an attempt's outcome and retries its commit while Redis refuses or fails it
 * (out of memory, a connection lost), ms, before it gives the job back to BullMQ.
 */
export const COMMIT_RETRY_LIMIT_MS = 10 * 60_000;
/** The first wait between commit tries, ms; it doubles up to {@link COMMIT_RETRY_MAX_DELAY_MS}, with jitter. */
export const COMMIT_RETRY_BASE_DELAY_MS = 50;
export const COMMIT_RETRY_MAX_DELAY_MS = 2000;

/**
 * Run `commit` until it succeeds, waiting with exponential backoff and jitter between tries while it
 * fails on anything but a {@link FleetError} that is not retryable (the run is gone): the outcome is
 * kept in memory meanwhile, so an outage of Redis costs the outage and no attempt.
 *
 * @param onRetry - told of each failed try and the wait before the next, ms.
 * @throws the last error once `limitMs` ms have passed without a success.
 */
export async function commitWithRetry<T>(
  commit: () => Promise<T>,
  onRetry: (err: unknown, waitMs: number) => void,
  limitMs = COMMIT_RETRY_LIMIT_MS,
  now: () => number = Date.now,
): Promise<T> {
  const until = now() + limitMs;
  for (let tries = 0; ; tries++) {
    try {
      return await commit();
    } catch (err) {
      if (err instanceof FleetError && !err.retryable) throw err;
      if (now() >= until) throw err;
      const cap = Math.min(COMMIT_RETRY_MAX_DELAY_MS, COMMIT_RETRY_BASE_DELAY_MS * 2 ** Math.min(tries, 10));
      const waitMs = Math.round(cap / 2 + Math.random() * (cap / 2));
      onRetry(err, waitMs);
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
  }
}


/** An attempt still working after this long has its start written to the run on its own, ms. */
export const START_RECORD_AFTER_MS = 25;

/** The abort signal of one attempt; see {@link attemptSignal}. */
export interface AttemptSignal {
  signal: AbortSignal;
  /** Whether the signal was aborted by the timeout (not by a cancel). */
  timedOut(): boolean;
  /** Clear the timer and the listener: call when the attempt ends. */
  dispose(): void;
}

/**
 * One signal for an attempt: aborted after `timeoutMs` ms with a `TimeoutError` DOMException (the
 * reason `AbortSignal.timeout` gives), or when `cancel` (BullMQ's job signal) aborts, with its reason.
 * Unlike `AbortSignal.timeout`, whose timer lives on until it fires (minutes, for every job), the
 * timer is cleared when the attempt ends. The timer runs on `clock` (the worker host's).
 */
export function attemptSignal(timeoutMs: number, cancel: AbortSignal | undefined, clock: Clock = systemClock): AttemptSignal {
  const controller = new AbortController();
  let timedOut = false;
  const cancelTimer = clock.setTimer(timeoutMs, () => {
    if (controller.signal.aborted) return;
    timedOut = true;
    controller.abort(new DOMException(`the attempt ran out of its ${timeoutMs} ms`, 'TimeoutError'));
  });
  const onCancel = (): void => controller.abort(cancel?.reason);
  if (cancel?.aborted) onCancel();
  else cancel?.addEventListener('abort', onCancel, { once: true });
  return {
    signal: controller.signal,
    timedOut: () => timedOut,
    dispose() {
      cancelTimer();
      cancel?.removeEventListener('abort', onCancel);
    },
  };
}

/** The outcome of an attempt, as the scheduler takes it. */
export type AttemptOutcome = Extract<SchedulerEvent, { type: 'phase_completed' | 'phase_attempt_failed' | 'phase_budget_wait' | 'phase_batch_waiting' }>;

/** What the work of a phase job is given. */
export interface PhaseJobContext {
  data: PhaseJobData;
  /** Logical attempt number: 1 on the first try (BullMQ's `attemptsMade` + 1). */
  attempt: number;
  ref: { run_id: string; phase: string; iteration: number };
  meta: RunMeta;
  state: RunState;
  /** The shared context's phase outputs when the job was taken. */
  outputs: Record<string, unknown>;
  /** When the worker took the job, epoch ms: the phase's time includes reading its inputs. */
  started: number;
  /**
   * Aborted when the attempt is to stop as cancelled: by the manager ({@link PhaseJobHost.cancel}),
   * or when the run turns out to have ended this iteration after the work began (its reason is then a
   * FleetError `PHASE_CANCELLED`). Give it to {@link attemptSignal}.
   */
  cancel: AbortSignal;
  /**
   * Commit the attempt's outcome (with its start, unless already written) and carry out the decision.
   * @param output - the phase output, for a completion.
   * @returns false when the run refused it (the phase had ended meanwhile: cancelled, timed out).
   */
  commit(outcome: AttemptOutcome, output?: unknown): Promise<boolean>;
  /** {@link commit} a completion with `output`: what the attempt billed, the model, a step action. */
  complete(output: unknown, outcome: { usage: TokenUsage; model: string; action?: StepAction | undefined; cacheHit?: boolean }): Promise<boolean>;
  /**
   * Before the work's first side effect (a tool call): whether the run still wants this iteration,
   * for a run taken from this process's memory (one read of its version, once an attempt; true at
   * once for a run read when the job was taken). False when the stored run ended the iteration while
   * the job waited: the work then returns `{reported: false}` without doing anything, as for a run
   * read that way at the take.
   * @throws Redis errors; FleetError `RUN_NOT_FOUND`.
   */
  confirmCurrent(): Promise<boolean>;
}

export interface PhaseJobHost {
  driver: RunDriver;
  manager: ManagerQueue;
  queueName: string;
  /** The role serving the queue (`tools` for the tools pool). */
  role: string;
  /** How long an outcome's commit is retried, ms. @defaultValue {@link COMMIT_RETRY_LIMIT_MS} */
  commitRetryLimitMs?: number | undefined;
  /** Told of each failed commit try (Redis trouble) and the wait before the next, ms. */
  onCommitRetry?: ((err: unknown, waitMs: number) => void) | undefined;
  /** BullMQ's cancel signal of the job (aborted by the manager's cancel). */
  cancel?: AbortSignal | undefined;
  /**
   * Make sure a remembered run is still the stored one before the work starts (one read of its
   * version): for a pool whose work's side effects begin at once (the tools pool's call), so none
   * begins for an iteration the run already ended. Without it, the commits are the check (see the
   * module's notes), and work with side effects later calls {@link PhaseJobContext.confirmCurrent}
   * before the first. @defaultValue false
   */
  checkBeforeWork?: boolean | undefined;
}

/** A run as read (or remembered) with its shared context's outputs. */
type RunRead = { meta: RunMeta; state: RunState; outputs: Record<string, unknown> };

/** Whether the run, as `state` shows it, still wants the job's iteration worked on. */
function stillWanted(state: RunState, data: PhaseJobData): boolean {
  const p = state.phases[data.phase];
  // A phase waiting for its message batch is still in flight: its job came back to go on.
  return !isTerminalRun(state.status) && p !== undefined && p.iteration === data.iteration && (IN_FLIGHT_PHASE_STATUSES.includes(p.status) || isBatchWait(p));
}

/**
 * `remembered`, or the stored run when it moved on from it (another commit since: a cancel, another
 * process's), after dropping the remembered copy. The version costs a few bytes to read, the run and
 * its context only when it moved.
 * @throws Redis errors; FleetError `RUN_NOT_FOUND`.
 */
async function currentRun(driver: RunDriver, runId: string, remembered: RunRead): Promise<RunRead> {
  if ((await driver.store.getVersion(runId)) === remembered.state.version) return remembered;
  // Unless this process has committed the run since (its copy is then newer than the stored version read).
  if (driver.recentRun(runId) === remembered) driver.forgetRun(runId);
  return driver.store.getRunWithOutputs(runId);
}

/** The error that aborts the work of an iteration the run ended while it was being worked on. */
function endedMeanwhile(data: PhaseJobData): FleetError {
  return new FleetError('PHASE_CANCELLED', `run ${data.run_id} ended phase "${data.phase}" iteration ${data.iteration} while it was being worked on`);
}

/**
 * Abort `to` with `from`'s reason when `from` aborts (at once if it has). Returns the function that
 * stops forwarding: call it when `to`'s owner is done, so `from` (a long-lived signal) holds no
 * listener for it.
 */
function forwardAbort(from: AbortSignal | undefined, to: AbortController): () => void {
  if (!from) return () => undefined;
  const forward = (): void => to.abort(from.reason);
  if (from.aborted) {
    forward();
    return () => undefined;
  }
  from.addEventListener('abort', forward, { once: true });
  return () => from.removeEventListener('abort', forward);
}

/**
 * Run `work` for one phase job inside its consumer span. Returns `{reported: false}` without calling
 * `work` when the run or this iteration ended while the job waited (cancelled, failed, deadline).
 *
 * @throws UnrecoverableError (`INVALID_INPUT`, never retried) when the job data does not match {@link PhaseJobDataSchema}.
 */
export async function withPhaseJob(
  job: Job<PhaseJobData, PhaseJobResult>,
  host: PhaseJobHost,
  work: (ctx: PhaseJobContext) => Promise<PhaseJobResult>,
): Promise<PhaseJobResult> {
  const parsed = PhaseJobDataSchema.safeParse(job.data);
  if (!parsed.success) throw unrecoverableJob('INVALID_INPUT', `job ${job.id} has invalid data: ${parsed.error.message}`);
  const data = parsed.data;
  const attempt = job.attemptsMade + 1;
  const ref = { run_id: data.run_id, phase: data.phase, iteration: data.iteration };
  // Queue wait of a first take only: a job taken again (stalled, or back from waiting on its message
  // batch) did not wait in the queue all that time.
  if (job.attemptsStarted <= 1) recordJobStart(host.role, job);
  return withSpan(
    `process ${host.queueName}`,
    {
      kind: SpanKind.CONSUMER,
      parent: extractTraceContext(data.trace),
      attributes: {
        ...messagingAttributes({ operationType: 'process', operationName: 'process', destination: host.queueName, messageId: job.id }),
        [FleetAttributes.RunId]: data.run_id,
        [FleetAttributes.PhaseName]: data.phase,
        [FleetAttributes.PhaseIteration]: data.iteration,
        [FleetAttributes.PhaseAttempt]: attempt,
        [FleetAttributes.AgentRole]: host.role,
      },
    },
    async () => {
      const started = Date.now();
      // Aborted when the manager cancels the job (`host.cancel`) or when the run turns out to have
      // ended this iteration after the work began. One controller the job's signal is forwarded to,
      // not `AbortSignal.any`: a composite signal per job cost more CPU than the rest of this setup.
      const superseded = new AbortController();
      const cancel = superseded.signal;
      const unlink = forwardAbort(host.cancel, superseded);
      try {
        let known: { meta: RunMeta; state: RunState; outputs?: Record<string, unknown> } | undefined;
        let startWrite: Promise<void> | undefined;
        // The run as this process committed it last, when that shows this iteration queued (this process
        // finished the phase before it); else one read. A first take only: a job taken again after a
        // crash reads what is stored.
        const recent = job.attemptsStarted <= 1 ? host.driver.recentRun(data.run_id) : undefined;
        const recentPhase = recent?.state.phases[data.phase];
        let run: RunRead | undefined = recentPhase?.iteration === data.iteration && recentPhase.status === 'queued' ? recent : undefined;
        // Otherwise a remembered run is used as it is: a queued iteration's inputs (its upstream
        // outputs) do not change while it stays queued, and the commits are fenced by the version (a
        // stale remembered run costs a commit one more try, never a wrong one; see the module's notes).
        if (run && host.checkBeforeWork) run = await currentRun(host.driver, data.run_id, run);
        // A run still unconfirmed: one taken from memory unchecked, until confirmCurrent reads its version.
        let unconfirmed: RunRead | undefined = host.checkBeforeWork ? undefined : run;
        run ??= await host.driver.store.getRunWithOutputs(data.run_id);
        const { meta, state, outputs } = run;
        const phaseState = state.phases[data.phase];
        if (!phaseState || !stillWanted(state, data)) {
          // Taken again after its first holder died: that holder may have committed the outcome and died
          // before carrying out its other effects (cancels, follow-ups), which its commit left in the run's outbox.
          if (job.attemptsStarted > 1) await host.driver.reconcile(data.run_id);
          return { reported: false, attempt };
        }
        const start: SchedulerEvent = { type: 'phase_started', at: started, phase: data.phase, iteration: data.iteration, attempt, agent: host.role };
        // A job taken again whose attempt already shows as running (a rate-limit deferral, a stalled
        // re-take) records no new start.
        const alreadyStarted = (phaseState.status === 'running' || isBatchWait(phaseState)) && phaseState.attempts === attempt;
        known ??= { meta, state, outputs };
        const timer = alreadyStarted
          ? undefined
          : setTimeout(() => {
              startWrite = host.driver.apply(data.run_id, start, { known }).then(
                (applied) => {
                  // With the outputs as committed (a commit grouped with this one may have written another phase's).
                  // Either way the start was decided on the stored run: nothing is left to confirm.
                  unconfirmed = undefined;
                  if (applied.decision.accepted) {
                    known = { meta, state: applied.decision.state, outputs: applied.outputs };
                    return;
                  }
                  known = undefined;
                  // Refused on the stored run (the fence read it again when the remembered one was stale):
                  // when that run ended this iteration (cancelled, failed, past its deadline), its work stops.
                  if (!stillWanted(applied.decision.state, data)) superseded.abort(endedMeanwhile(data));
                },
                // The outcome's commit decides without it.
                () => void (known = undefined),
              );
            }, START_RECORD_AFTER_MS);
        const commit = async (outcome: AttemptOutcome, output?: unknown): Promise<boolean> => {
          clearTimeout(timer);
          const events: SchedulerEvent[] = alreadyStarted || startWrite ? [outcome] : [start, outcome];
          await startWrite;
          let tryKnown = known;
          // One commit id for every try: a try refused as a duplicate of an earlier one that landed
          // unseen carries out that one's effects.
          const commitId = randomUUID();
          try {
            // A failed try may have committed (its reply lost): the next one reads the run again, and a
            // refusal as a duplicate carries out what the commit left in the outbox (RunDriver).
            const applied = await commitWithRetry(
              () => {
                const attemptKnown = tryKnown;
                tryKnown = undefined;
                return host.driver.apply(data.run_id, events, {
                  known: attemptKnown,
                  commitId,
                  // The job finishes once the commit lands (the commit added the next phase jobs itself; its
                  // other effects wait in the outbox until they are carried out).
                  effectsAfterReply: true,
                  ...(outcome.type === 'phase_completed' ? { output: { phase: data.phase, value: output } } : {}),
                });
              },
              (err, waitMs) => host.onCommitRetry?.(err, waitMs),
              host.commitRetryLimitMs,
            );
            return applied.decision.accepted;
          } catch (err) {
            // An outcome the scheduler could not decide is refused for good (recorded on the run): the
            // attempt fails with that error instead of being kept for another commit.
            if (isEventRejected(err)) throw err;
            throw new CommitFailure(err);
          }
        };
        const complete: PhaseJobContext['complete'] = (output, outcome) =>
          commit(
            {
              type: 'phase_completed',
              at: Date.now(),
              phase: data.phase,
              iteration: data.iteration,
              attempt,
              usage: outcome.usage,
              model: outcome.model,
              action: outcome.action,
              cacheHit: outcome.cacheHit === true ? true : undefined,
              startedAt: started,
              agent: host.role,
            },
            output,
          );
        let confirmed: Promise<boolean> | undefined;
        const confirmCurrent = (): Promise<boolean> =>
          (confirmed ??= (async () => {
            const remembered = unconfirmed;
            if (!remembered) return true;
            const stored = await currentRun(host.driver, data.run_id, remembered);
            if (stored === remembered) return true;
            if (!stillWanted(stored.state, data)) return false;
            // Moved on but still wanting the iteration (a sibling phase committed): the commits start from it.
            if (!startWrite) known = stored;
            return true;
          })());
        try {
          return await work({ data, attempt, ref, meta, state, outputs, started, cancel, commit, complete, confirmCurrent });
        } finally {
          clearTimeout(timer);
        }
      } finally {
        unlink();
      }
    },
  );
}

/**
 * The error of an attempt that threw `err`: when the attempt's signal aborted and `err` is not a
 * {@link FleetError} already, `PHASE_TIMEOUT` or `PHASE_CANCELLED` as the attempt signal says
 * (`abortError`); else `err` as a FleetError, `fallback` for anything else.
 */
export function attemptError(err: unknown, attempt: AttemptSignal, fallback: FleetErrorCode = 'INTERNAL'): FleetError {
  if (attempt.signal.aborted && !(err instanceof FleetError)) return abortError(attempt.signal, { what: 'the attempt', timedOut: attempt.timedOut() });
  return toFleetError(err, fallback);
}

/**
 * Commit a failed attempt and end the job the way BullMQ needs ({@link toJobOutcome}, the one error
 * boundary): a retryable error with attempts left is rethrown (BullMQ backs off and retries),
 * anything else ends the job for good.
 *
 * @param usage - tokens the provider billed for the failed attempt (counted once).
 * @param log - told whether the attempt will be retried, before the job ends.
 */
export async function failAttempt(
  job: Job<PhaseJobData, PhaseJobResult>,
  ctx: PhaseJobContext,
  error: FleetError,
  usage: TokenUsage,
  log: (willRetry: boolean) => void,
): Promise<never> {
  const outcome = toJobOutcome(error, ctx.attempt, job.opts.attempts ?? ctx.data.max_attempts);
  const willRetry = outcome.willRetry;
  // The backoff is chosen here, recorded with the attempt (the run's `phase_retry` event) and handed to
  // BullMQ through the thrown error (see scheduledBackoff), so the delay the run shows is the one used.
  const retryDelayMs = willRetry ? fleetBackoffDelay(ctx.attempt, backoffBaseMs(job), outcome.error) : undefined;
  const committed = ctx.commit({
    type: 'phase_attempt_failed',
    at: Date.now(),
    phase: ctx.ref.phase,
    iteration: ctx.ref.iteration,
    attempt: ctx.attempt,
    error: outcome.error.toJSON(),
    willRetry,
    retryDelayMs,
    usage,
    startedAt: ctx.started,
    agent: ctx.data.role,
  });
  // A failure the scheduler could not decide either ends the job (no further attempt); the phase's
  // deadline settles it.
  await committed.catch((err: unknown) => {
    throw isEventRejected(err) ? finalJobError(err) : err;
  });
  log(willRetry);
  if (retryDelayMs !== undefined) scheduledDelays.set(outcome.thrown, retryDelayMs);
  throw outcome.thrown;
}

/** The backoff {@link failAttempt} chose for the error it throws to BullMQ, ms. */
const scheduledDelays = new WeakMap<Error, number>();

/** The job's base backoff, ms (the phase's `retry_delay`). */
function backoffBaseMs(job: MinimalJob): number {
  return Number((job.opts.backoff as { delay?: number } | undefined)?.delay ?? 1000);
}

/**
 * BullMQ's backoff strategy for phase jobs: the delay {@link failAttempt} chose and recorded, else
 * (an error thrown past it) `fleetBackoffDelay`, ms.
 */
export function scheduledBackoff(attemptsMade: number, err: Error | undefined, job: MinimalJob | undefined): number {
  const chosen = err ? scheduledDelays.get(err) : undefined;
  if (chosen !== undefined) return chosen;
  return fleetBackoffDelay(attemptsMade, job ? backoffBaseMs(job) : 1000, err);
}
