/**
 * The run driver: applies one thing that happened to a run and carries out what it sets off. Used by
 * whoever learns of the event first: the worker that finished a phase attempt (its completion, the
 * next decision and the next phase jobs, with no hop through the manager), and the manager (run
 * submissions, deadlines, cancellations, external events).
 *
 * One apply is one fenced Lua call ({@link RunStore.apply}): the new state, the phase output, the run
 * events, the phase deadlines and the jobs of the phases it queues (BullMQ's own add script, run
 * inside the commit; deterministic job ids, so adding one whose job exists is a no-op) commit
 * together or not at all. Each job gets a `send <queue>` span under its phase span, emitted once the
 * commit landed. Then, in this order:
 * 1. phases cancelled by the decision have their waiting jobs removed and running ones aborted;
 * 2. phase and run spans that the decision ends are emitted, and run metrics recorded;
 * 3. everything else (child runs, a finished run's parent report, fallback and end action) goes to
 *    `followUp`: the manager does it itself; a worker hands it to the manager queue.
 *
 * The commit also writes the effects it did not carry out itself into the run's outbox
 * (`<p>:run:<id>:outbox`, one entry per committed version), and the committer clears its entry once
 * it carried them out. Whatever a commit left undone is carried out by {@link RunDriver.reconcile}
 * from that outbox: by the committer itself when its commit comes back refused (a duplicate: possibly
 * its own commit, resent after a lost reply), by a worker that takes a job again after its first
 * holder died, and by the manager for any outbox older than a lease (a committer that crashed
 * between its commit and its effects). A commit whose only effects are phase jobs leaves no entry.
 *
 * Several commits for one run that meet in one process are grouped into one write (see {@link RunDriver.apply}),
 * decided together by {@link decideBatch} (../scheduler/decide-batch.ts), where their merge rule lives.
 */
import { randomUUID } from 'node:crypto';
import { SpanKind } from '@opentelemetry/api';
import { Queue, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { systemClock, type Clock } from '../clock.js';
import { agentQueueName, agentQueuesKey, phaseJobId } from '../queues/contracts.js';
import type { ManagerQueue } from '../queues/manager-queue.js';
import type { RunMeta, RunResult } from '../result.js';
import { decide, isBatchWait, isTerminalRun, needsOutputs } from '../scheduler/decide.js';
import { decideBatch } from '../scheduler/decide-batch.js';
import { DEFAULT_DEADLINE_GRACE_MS, phaseDeadlineAfterMs } from '../scheduler/deadlines.js';
import { IN_FLIGHT_PHASE_STATUSES, type Decision, type PhaseState, type RunState, type SchedulerAction, type SchedulerEvent } from '../scheduler/types.js';
import { isOutboxEffect, type CommitPhaseJob, type DeadlineChanges, type DeadlineRef, type OutboxEffect, type RunStore } from '../store/run-store.js';
import type { FleetLogger } from '../telemetry/logger.js';
import { recordRunEvents } from '../telemetry/metrics.js';
import { beginSpanRef, carrierUnder, contextOfSpanRef, emitPhaseSpan, emitRunSpan, emitSendSpan, sendCarrier, sendSpanAttributes, type SpanRef } from '../telemetry/run-spans.js';
import { withSpan } from '../telemetry/trace.js';
import type { PhaseDefinition } from '../workflow/definition.js';
import { FleetError } from '../errors.js';
import { admitRun, releaseConcurrency, withConcurrencyRelease, type ReleaseConcurrency } from './concurrency.js';
import { PRIORITY_BAND_WIDTH, fairGroupKey, fairPriority, runBandStart } from './fair-priority.js';
import { phaseJobAddArguments, phaseJobRequest } from './phase-job.js';

/**
 * How the failure of a phase job whose outcome could not be committed begins (the work did not fail):
 * the manager takes such a job up again instead of timing the phase out.
 */
export const COMMIT_FAILURE_MESSAGE = "could not commit the attempt's outcome";

export { DEFAULT_DEADLINE_GRACE_MS };

/** Actions the driver leaves to {@link RunDriverOptions.followUp}. */
export type FollowUpAction = Extract<SchedulerAction, { type: 'start_child_run' | 'finish_run' | 'start_fallback' | 'cancel_phase' }>;

export interface RunDriverOptions {
  /**
   * The connection the phase queues use (job removals, a reconciler's adds, queue depths); a
   * commit's own phase jobs are written by the commit, on the store's connection.
   */
  redis: Redis;
  /** The fleet's key prefix. */
  prefix: string;
  store: RunStore;
  log: FleetLogger;
  /** @defaultValue {@link DEFAULT_DEADLINE_GRACE_MS} */
  deadlineGraceMs?: number | undefined;
  /**
   * The clock commits are dated with: the deadlines they set (phase deadlines, approval timeouts), the
   * age of their outbox (which the manager's outbox lease is counted from) and the result's times.
   * @defaultValue {@link systemClock}
   */
  clock?: Clock | undefined;
  /**
   * Keep each run as this driver last committed it ({@link RunDriver.recentRun}), for workers that
   * take the next phase of a run they just finished. @defaultValue false
   */
  rememberRuns?: boolean | undefined;
  /**
   * Carry out what only the manager does: start child runs, cancel child runs, report a finished run
   * to its parent, start the fallback, run the end action. Called after the commit, with the run's
   * result when the decision finished it.
   */
  followUp: (meta: RunMeta, actions: FollowUpAction[], state: RunState, result: RunResult | undefined) => Promise<void>;
  /**
   * Called before each effect of a commit's outbox is carried out, by the committer and by
   * {@link RunDriver.reconcile} alike. For fault tests: throwing stops the carrying out there, as a
   * crash of the committer would (the rest stays in the outbox).
   */
  beforeEffect?: ((runId: string, effect: OutboxEffect) => void) | undefined;
  /**
   * Called before each event is decided. For fault tests: throwing stands for the scheduler throwing
   * on that event (a bug, or input it cannot take), which refuses that event for good (see
   * {@link RunDriver.apply}).
   */
  beforeDecide?: ((runId: string, event: SchedulerEvent) => void) | undefined;
}

/** What {@link RunDriver.apply} committed. */
export interface Applied {
  decision: Decision;
  meta: RunMeta;
  result: RunResult | undefined;
  /** Every output of the shared context as of the committed version, when the commit saw them all. */
  outputs?: Record<string, unknown> | undefined;
  /** For a commit that creates the run ({@link KnownRun.create}): whether it did (false: a run with its id existed). */
  created?: boolean | undefined;
}

/**
 * The error of an event whose decision threw: refused for good (`EVENT_REJECTED`, not retryable), with
 * the event's type and phase and the thrown message in `details`.
 */
export function eventRejectedError(event: SchedulerEvent, err: unknown): FleetError {
  const thrown = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  const phase = 'phase' in event ? event.phase : undefined;
  return new FleetError('EVENT_REJECTED', `the ${event.type} event${phase !== undefined ? ` of phase "${phase}"` : ''} could not be decided and was refused: ${thrown}`, {
    details: { event: event.type, ...(phase !== undefined ? { phase } : {}), thrown },
    cause: err,
  });
}

/** Whether an error is a refusal of an event whose decision threw ({@link eventRejectedError}). */
export function isEventRejected(err: unknown): err is FleetError {
  return err instanceof FleetError && err.code === 'EVENT_REJECTED';
}

/** The channel on which phase jobs in flight are aborted (payload: the job id). */
export function cancelChannel(prefix: string): string {
  return `${prefix}:cancel`;
}

/** How long after its enqueue the manager checks on a phase, ms: {@link phaseDeadlineAfterMs} of the iteration. */
export function phaseDeadlineMs(def: PhaseDefinition, graceMs: number): number {
  return phaseDeadlineAfterMs(def, graceMs);
}

const balancedRolesOf = new WeakMap<RunMeta['workflow'], string[]>();

/** The roles `load_balanced` phases of a workflow choose among, in order of first mention (found once per definition: read on every commit). */
function balancedRoles(definition: RunMeta['workflow']): string[] {
  let roles = balancedRolesOf.get(definition);
  if (!roles) {
    const found = new Set<string>();
    for (const p of definition.phases) if (p.agentSelect?.type === 'load_balanced') p.agentSelect.agents.forEach((r) => found.add(r));
    roles = [...found];
    balancedRolesOf.set(definition, roles);
  }
  return roles;
}

/** Whether a run's workflow has an end action to carry out (not absent, not `none`). */
export function hasEndAction(meta: RunMeta): boolean {
  const action = meta.workflow.endAction;
  return Boolean(action && action.type !== 'none' && action.target);
}

/**
 * Whether a finished run has anything for its `finish_run` follow-up to do: a parent run to report
 * to, or an end action. Without either, the finish leaves nothing in the outbox and nothing is sent
 * to the manager.
 */
export function finishNeedsFollowUp(meta: RunMeta): boolean {
  return meta.links?.parent !== undefined || hasEndAction(meta);
}

/**
 * The follow-up of a decision made outside the manager (a worker, a client), handed to the manager
 * queue with an id per run version, so a repeat adds nothing. A finished run needs the manager only
 * for its parent or its end action; otherwise nothing is sent.
 * @param clock - dates the report (`at`, epoch ms). @defaultValue the system clock
 */
export function followUpThroughManager(manager: ManagerQueue, clock: Clock = systemClock): RunDriverOptions['followUp'] {
  return async (meta, actions, state) => {
    const needed = actions.filter((a) => a.type !== 'finish_run' || finishNeedsFollowUp(meta));
    if (needed.length === 0) return;
    await manager.report({ type: 'run_followup', run_id: meta.run_id, at: clock.now(), actions: needed }, { jobId: `${meta.run_id}.followup.${state.version}` });
  };
}

const active = (p: PhaseState | undefined): boolean => p !== undefined && (IN_FLIGHT_PHASE_STATUSES.includes(p.status) || p.status === 'waiting');
/** Whether a phase's current iteration has its job in a role queue (in flight, or delayed waiting for its message batch). */
const holdsJob = (p: PhaseState | undefined): boolean => p !== undefined && (IN_FLIGHT_PHASE_STATUSES.includes(p.status) || isBatchWait(p));

/** The run as a caller last read it (with its context's outputs when it read them all). */
export interface KnownRun {
  meta: RunMeta;
  state: RunState;
  outputs?: Record<string, unknown> | undefined;
  /** Not stored yet: the commit creates the run with its decision ({@link RunStore.apply}'s `create`). */
  create?: boolean | undefined;
}

/** A run as a driver remembers it after committing it: stored, with all its outputs. */
export type RememberedRun = Required<Omit<KnownRun, 'create'>>;

/** A call of {@link RunDriver.apply} waiting for its run's commit. */
interface PendingApply {
  /** This call's commit id, recorded in the outbox entry of the commit that carries it. */
  commitId: string;
  /** The call may be answered once the commit landed, before its effects are carried out. */
  effectsAfter: boolean;
  events: SchedulerEvent[];
  output: { phase: string; value: unknown } | undefined;
  /** Versions of earlier outbox entries this call carries out, dropped by its commit. */
  carriesOut: readonly number[];
  resolve: (applied: Applied) => void;
  reject: (err: unknown) => void;
}

/** A phase job with its queue and priority chosen, not yet added. */
interface PlacedPhaseJob {
  def: PhaseDefinition;
  iteration: number;
  jobId: string;
  role: string;
  queue: Queue;
  priority: number;
}

/** A phase job its decision's commit adds ({@link RunDriver.commitJobs}), and what its send span needs. */
interface CommitJob {
  job: CommitPhaseJob;
  role: string;
  queue: string;
  phaseSpan: SpanRef | undefined;
  sendRef: SpanRef;
  /** Epoch ms. */
  start: number;
}

/**
 * Whether the commit that wrote `state` is the try that built `job`: the phase's iteration and its
 * span identity (chosen at random for each try, ../telemetry/run-spans.ts `beginSpanRef`) are the job's.
 */
function landedWith(state: RunState, job: CommitJob): boolean {
  const phase = state.phases[job.job.phase];
  return job.phaseSpan !== undefined && phase?.iteration === job.job.iteration && phase.span?.span_id === job.phaseSpan.span_id && phase.span.trace_id === job.phaseSpan.trace_id;
}

/** Whether an outbox effect still fits the run as `state` shows it now. */
function stillDue(effect: OutboxEffect, state: RunState): boolean {
  switch (effect.type) {
    case 'enqueue_phase':
    case 'start_child_run': {
      const p = state.phases[effect.phase];
      return !isTerminalRun(state.status) && p !== undefined && p.iteration === effect.iteration && IN_FLIGHT_PHASE_STATUSES.includes(p.status);
    }
    case 'start_run':
      // A run queued behind its concurrency key is started by the release of a finishing run of the key.
      return state.status === 'created';
    case 'cancel_phase':
      return true;
    case 'finish_run':
    case 'start_fallback':
      return isTerminalRun(state.status);
    case 'release_concurrency':
      // Idempotent, and the slot was the finished run's whatever happened since (a resume runs outside the limit).
      return true;
  }
}

/** The same effect left by several commits (a run finished twice around a resume) is carried out once. */
function dedupeEffects(effects: readonly OutboxEffect[]): OutboxEffect[] {
  const seen = new Set<string>();
  return effects.filter((e) => {
    const key = JSON.stringify(e);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Runs whose last commit {@link RunDriver.recentRun} keeps, when asked to (`rememberRuns`). */
const RECENT_RUNS = 256;

export class RunDriver {
  private readonly queues = new Map<string, Queue>();
  /** Runs with a commit in flight from this driver, and the calls waiting for it. */
  private readonly waiting = new Map<string, PendingApply[]>();
  /** The run as this driver last committed it, with all its outputs (insertion order: oldest first). */
  private readonly recent = new Map<string, RememberedRun>();
  private readonly graceMs: number;
  private readonly clock: Clock;
  /** Carry-outs still running after their callers were answered (`effectsAfterReply`). */
  private readonly carryingOut = new Set<Promise<void>>();

  constructor(private readonly options: RunDriverOptions) {
    this.graceMs = options.deadlineGraceMs ?? DEFAULT_DEADLINE_GRACE_MS;
    this.clock = options.clock ?? systemClock;
  }

  get store(): RunStore {
    return this.options.store;
  }

  /**
   * The run as this process last committed it (state and every output, as stored: JSON values), while
   * it is going and when `rememberRuns` is on. It may be stale (another process committed since):
   * the commits of a worker that starts from it are fenced by the stored version, which refuses one
   * decided on a stale copy and decides it again on the stored run (as Temporal's sticky workers keep
   * a workflow's state), and a refused commit of the run drops it. Do not mutate it.
   */
  recentRun(runId: string): RememberedRun | undefined {
    return this.recent.get(runId);
  }

  /** Drop a remembered run (found stale, or refused by a commit). */
  forgetRun(runId: string): void {
    this.recent.delete(runId);
  }

  private remember(runId: string, run: RememberedRun | undefined): void {
    this.recent.delete(runId);
    if (!this.options.rememberRuns || !run || isTerminalRun(run.state.status)) return;
    if (this.recent.size >= RECENT_RUNS) this.recent.delete(this.recent.keys().next().value as string);
    this.recent.set(runId, run);
  }

  /**
   * The queue of an agent role (one BullMQ `Queue` per role, on the driver's connection); the first
   * use records the role in {@link agentQueuesKey}.
   */
  queueFor(role: string): Queue {
    let q = this.queues.get(role);
    if (!q) {
      q = new Queue(agentQueueName(role), { connection: this.options.redis, prefix: this.options.prefix });
      q.on('error', () => undefined); // failures surface through the rejected add; unheard, BullMQ prints each one
      this.queues.set(role, q);
      // Sent ahead of the first job on this connection, so an observer sees the queue once it has one.
      this.options.redis.sadd(agentQueuesKey(this.options.prefix), role).catch(() => undefined);
    }
    return q;
  }

  /**
   * Apply `events` to the run, in order, as one decision under the run's version fence, then carry it
   * out. A worker passes its attempt's start and outcome together when it had not recorded the start
   * yet; an event the scheduler refuses (a start already recorded) is left out of the decision.
   *
   * Group commit: while a commit of this run is in flight from this process, later calls wait and are
   * then committed together, in one decision and one write (the fan-in of a wide DAG commits its
   * completions in a few writes instead of racing on the version fence). Each caller learns whether
   * its own events were accepted.
   *
   * @param options.output - the phase output a `phase_completed` event carries, written into the
   *   shared context when that event is accepted.
   * @param options.known - the run as the caller read it; saves a read when nothing changed since.
   * @param options.commitId - identifies this call's commit in the run's outbox (random by default).
   *   A caller that tries the same events again after an error passes the same id each time: when a
   *   try is refused as a duplicate of an earlier one that landed unseen, the earlier one's effects
   *   are carried out from the outbox.
   * @param options.effectsAfterReply - answer once the commit has landed, and carry out its effects
   *   (cancels, follow-ups, the outbox clear, spans; the next phase jobs are in the commit itself)
   *   after that instead of before. For a worker finishing a job: its finish then goes to Redis as
   *   soon as the commit lands. Safe because the commit wrote the effects into the outbox: should they fail, they are
   *   tried again from there ({@link reconcile}, a few times with backoff), and should this process
   *   die first, the manager carries them out after its outbox lease. When every call of a grouped
   *   commit asks for it; {@link close} waits for carry-outs still running.
   * @param options.carriesOut - committed versions of earlier outbox entries this call carries out
   *   (a created run's start entry, carried out by its `run_started`): dropped by the commit, if it lands.
   * @returns the decision (`accepted`: whether any of this call's events was accepted; false when all
   *   were refused: stale, duplicate, run ended).
   * @throws FleetError `EVENT_REJECTED` (not retryable) when deciding on one of this call's events
   *   threw: none of this call's events is committed, the refusal is appended to the run's events
   *   (`event_rejected`), and the run, and the calls committed with this one, go on as if the call
   *   had not been made. FleetError `RUN_NOT_FOUND`; Redis errors (nothing was committed, or the commit stands and
   *   only follow-up steps failed: both are safe to retry, the retry being refused as a duplicate).
   */
  apply(
    runId: string,
    events: SchedulerEvent | SchedulerEvent[],
    options: {
      output?: { phase: string; value: unknown } | undefined;
      known?: KnownRun | undefined;
      commitId?: string | undefined;
      effectsAfterReply?: boolean | undefined;
      carriesOut?: readonly number[] | undefined;
    } = {},
  ): Promise<Applied> {
    return new Promise<Applied>((resolve, reject) => {
      const entry: PendingApply = {
        commitId: options.commitId ?? randomUUID(),
        effectsAfter: options.effectsAfterReply === true,
        events: Array.isArray(events) ? events : [events],
        output: options.output,
        carriesOut: options.carriesOut ?? [],
        resolve,
        reject,
      };
      const waiting = this.waiting.get(runId);
      if (waiting) {
        waiting.push(entry);
        return;
      }
      this.waiting.set(runId, []);
      void this.drain(runId, [entry], options.known);
    });
  }

  /** Commit `batch`, then whatever queued up for the run meanwhile, until nothing waits. */
  private async drain(runId: string, first: PendingApply[], firstKnown: KnownRun | undefined): Promise<void> {
    let batch = first;
    let known = firstKnown;
    for (;;) {
      try {
        const { applied, accepted, rejected, state, outputs } = await this.commit(runId, batch, known);
        // The next batch decides on what this one committed, without reading it again.
        known = state ? { meta: applied.meta, state, outputs } : undefined;
        batch.forEach((entry, i) => {
          const refusal = rejected[i];
          if (refusal) entry.reject(refusal);
          else entry.resolve({ ...applied, decision: { ...applied.decision, accepted: accepted[i] === true } });
        });
      } catch (err) {
        known = undefined;
        for (const entry of batch) entry.reject(err);
      }
      batch = this.waiting.get(runId) ?? [];
      if (batch.length === 0) {
        this.waiting.delete(runId);
        return;
      }
      this.waiting.set(runId, []);
    }
  }

  private async commit(
    runId: string,
    batch: readonly PendingApply[],
    known: KnownRun | undefined,
  ): Promise<{ applied: Applied; accepted: boolean[]; rejected: Array<FleetError | undefined>; state: RunState | undefined; outputs: Record<string, unknown> | undefined }> {
    const now = this.clock.now();
    // The phase jobs of the try being committed, which the commit adds itself ({@link RunDriver.commitJobs}).
    let jobs: CommitJob[] = [];
    let accepted: boolean[] = [];
    let rejected: Array<{ error: FleetError; event: SchedulerEvent } | undefined> = [];
    const applied = await this.store.apply(
      runId,
      async (meta, state, outputs) => {
        // Read before deciding (each try): decide picks `load_balanced` roles by these depths.
        const queueDepths = await this.queueDepths(meta);
        // Every entry's events in order, as one decision (the merge rule is decide's, ../scheduler/decide-batch.ts).
        const hook = this.options.beforeDecide;
        const decideEvent: typeof decide = hook
          ? (definition, st, event, ctx) => {
              hook(runId, event);
              return decide(definition, st, event, ctx);
            }
          : decide;
        const { entries, rejected: refusals, ...batched } = decideBatch(
          meta.workflow,
          state,
          batch,
          { requirements: meta.requirements, variables: meta.variables, outputs, deadlineGraceMs: this.graceMs, ...(queueDepths ? { queueDepths } : {}) },
          decideEvent,
        );
        accepted = entries;
        rejected = refusals.map((r) => (r ? { error: eventRejectedError(r.event, r.thrown), event: r.event } : undefined));
        let decision: Decision = batched;
        // A run with a concurrency limit releases its slot from the outbox of the commit that finishes it.
        decision = withConcurrencyRelease(meta, decision);
        if (decision.accepted) this.assignSpans(meta, decision);
        return decision;
      },
      {
        loadOutputs: (m) => needsOutputs(m.workflow),
        known,
        create: known?.create,
        commitIds: batch.map((e) => e.commitId),
        deadlines: (meta, before, decision) => this.deadlineChanges(meta, before, decision, now),
        jobsEnded: (meta, before, decision) => this.jobsEnded(meta, before, decision),
        nothingToDo: (meta, effect) => effect.type === 'finish_run' && !finishNeedsFollowUp(meta),
        carriesOut: [...new Set(batch.flatMap((e) => e.carriesOut))],
        phaseJobs: (meta, decision) => {
          jobs = this.commitJobs(meta, decision, this.clock.now());
          return jobs.map((j) => j.job);
        },
        now: () => this.clock.now(),
      },
    );
    const { decision, meta, result, before } = applied;
    if (decision.accepted) {
      this.jobsCommitted(meta, jobs, this.clock.now());
      // Remembered before the callers are answered, so the next job this process takes finds it.
      this.remember(runId, applied.outputs ? { meta, state: decision.state, outputs: applied.outputs } : undefined);
      const carryOut = async (): Promise<void> => {
        await this.carryOut(meta, before, decision, result);
        if (applied.outbox) await this.store.clearOutbox(runId, [applied.outbox.version], this.clock.now());
      };
      if (batch.every((e) => e.effectsAfter)) this.carryOutAfterReply(runId, carryOut, batch.filter((_, i) => accepted[i] === true).map((e) => e.commitId));
      else await carryOut();
    } else {
      // A refused commit may have been decided on a stale remembered copy (read again since): the
      // next job of the run reads it rather than start from that copy.
      this.forgetRun(runId);
    }
    // A call refused as a duplicate may be this very commit landed earlier unseen: resent by ioredis
    // after its reply was lost (the connection dropped after Redis ran it), or a caller's retry of a
    // try that failed. What that commit left undone is in the outbox under its commit id.
    // A create that found its run (this very create, landed unseen and sent again) committed none of
    // its events, whatever the decision on the fresh state said.
    if (applied.created === false) accepted = accepted.map(() => false);
    const refused = batch.filter((_, i) => accepted[i] !== true && rejected[i] === undefined).map((e) => e.commitId);
    if (refused.length > 0) {
      await this.reconcile(runId, refused);
      // The jobs such a commit added itself: those of the try whose phase span identities (chosen at
      // random each try) the stored state holds. Their send spans are emitted now, so the worker's
      // spans of those jobs have their parent.
      if (!decision.accepted) this.jobsCommitted(meta, jobs.filter((j) => landedWith(before, j)), this.clock.now());
    }
    // Each refused event is recorded on the run; a record lost to Redis leaves the refusal to the caller.
    // A create that did not create the run has no run of its own to record it on.
    const recordsRefusals = !known?.create || applied.created === true;
    for (const r of rejected) {
      if (!r) continue;
      const { event, error } = r;
      this.options.log.warn({ run_id: runId, event: event.type, err: error.message }, 'event refused: its decision threw');
      if (!recordsRefusals) continue;
      await this.store
        .appendEvent(runId, {
          type: 'event_rejected',
          at: this.clock.now(),
          event: event.type,
          ...('phase' in event ? { phase: event.phase } : {}),
          ...('iteration' in event ? { iteration: event.iteration } : {}),
          error: error.toJSON(),
        })
        .catch((err: unknown) => this.options.log.warn({ run_id: runId, err: err instanceof Error ? err.message : String(err) }, 'could not record a refused event'));
    }
    const outputs = decision.accepted ? applied.outputs : undefined;
    return { applied: { decision, meta, result, outputs, ...(applied.created !== undefined ? { created: applied.created } : {}) }, accepted, rejected: rejected.map((r) => r?.error), state: decision.accepted ? decision.state : undefined, outputs };
  }

  /**
   * Run a commit's carry-out after its callers were answered. A failure (Redis) is tried again from
   * the outbox under the commit's ids ({@link reconcile}), waiting 50 ms, doubling, up to 5 tries in
   * all; what is still left then stays in the outbox for the manager's sweep, as after a crash.
   */
  private carryOutAfterReply(runId: string, carryOut: () => Promise<void>, commitIds: readonly string[]): void {
    const running = (async () => {
      for (let tries = 1; ; tries++) {
        try {
          if (tries === 1) await carryOut();
          else await this.reconcile(runId, commitIds);
          return;
        } catch (err) {
          if (tries === 5) {
            this.options.log.warn({ run_id: runId, err: err instanceof Error ? err.message : String(err) }, "could not carry out a commit's effects; they stay in the run's outbox for the manager");
            return;
          }
          await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** (tries - 1)));
        }
      }
    })();
    this.carryingOut.add(running);
    void running.finally(() => this.carryingOut.delete(running));
  }

  /** Choose span identities for a run that starts and for phases that are queued (see ../telemetry/run-spans.ts). */
  private assignSpans(meta: RunMeta, decision: Decision): void {
    const state = decision.state;
    // A resumed run's second round gets a span of its own (the first one was emitted when it ended).
    if ((decision.events.some((e) => e.type === 'run_started') && !state.span) || decision.events.some((e) => e.type === 'run_resumed')) {
      state.span = beginSpanRef(meta.trace);
    }
    if (!state.span) return;
    for (const action of decision.actions) {
      if (action.type !== 'enqueue_phase' && action.type !== 'start_child_run') continue;
      const phase = state.phases[action.phase];
      if (phase) phase.span = beginSpanRef(state.span);
    }
  }

  private deadlineChanges(meta: RunMeta, before: RunState, decision: Decision, now: number): DeadlineChanges {
    const runId = meta.run_id;
    const set: DeadlineChanges['set'] = [];
    const remove: DeadlineRef[] = [];
    // The scheduler gives each deadline as a duration; it is dated here, with the commit's clock.
    for (const d of decision.deadlines ?? []) set.push({ run_id: runId, phase: d.phase, iteration: d.iteration, at: now + d.after_ms });
    for (const [name, was] of Object.entries(before.phases)) {
      if (!active(was)) continue;
      const now_ = decision.state.phases[name];
      if (active(now_) && now_?.iteration === was.iteration) continue;
      remove.push({ run_id: runId, phase: name, iteration: was.iteration });
    }
    return { set, remove };
  }

  /**
   * The phase jobs `decision` ends, each with its fairness zset ({@link fairGroupKey}): the job of
   * every agent or tool phase iteration that held one before and does not after (completed, failed
   * for good, cancelled, superseded by a new iteration, or waiting without its job: a budget wait or
   * a `wait` step action end the job, while a phase waiting for its message batch keeps it, delayed).
   * Its queue is that of the role the state recorded for the iteration, else the phase's own, as
   * {@link placePhaseJob} chose it.
   */
  private jobsEnded(meta: RunMeta, before: RunState, decision: Decision): Array<readonly [string, string]> {
    const ended: Array<readonly [string, string]> = [];
    for (const [name, was] of Object.entries(before.phases)) {
      if (!holdsJob(was)) continue;
      const now = decision.state.phases[name];
      if (holdsJob(now) && now?.iteration === was.iteration) continue;
      const def = meta.workflow.phases.find((p) => p.name === name);
      if (!def || (def.kind !== 'agent' && def.kind !== 'tool')) continue;
      ended.push([fairGroupKey(this.store.prefix, agentQueueName(was.agent ?? def.agent), meta), phaseJobId(meta.run_id, name, was.iteration)]);
    }
    return ended;
  }

  /**
   * The phase jobs a decision queues, for its commit to add (../store/run-store.ts `CommitPhaseJob`):
   * each one's role queue, the arguments of BullMQ's add script, and its send span's identity
   * (chosen now, emitted once the commit landed, {@link jobsCommitted}). An `enqueue_phase` of a
   * phase the workflow does not have is skipped, as the reconciler skips it.
   * @param now - epoch ms, the send spans' start.
   * @throws Error when BullMQ would refuse a job (its data over the size limit, a `:` in its id): the
   *   commit is then not sent.
   */
  private commitJobs(meta: RunMeta, decision: Decision, now: number): CommitJob[] {
    const jobs: CommitJob[] = [];
    const bandStart = runBandStart(meta);
    for (const action of decision.actions) {
      if (action.type !== 'enqueue_phase') continue;
      const def = meta.workflow.phases.find((p) => p.name === action.phase);
      if (!def) continue;
      // decide names the role of every `load_balanced` enqueue.
      const role = action.agent ?? def.agent;
      const queue = this.queueFor(role);
      const jobId = phaseJobId(meta.run_id, def.name, action.iteration);
      const phaseSpan = decision.state.phases[def.name]?.span;
      const sendRef = beginSpanRef(phaseSpan);
      const { name, data, opts } = phaseJobRequest(meta, def, action.iteration, role, sendCarrier(phaseSpan, sendRef));
      jobs.push({
        job: {
          phase: def.name,
          iteration: action.iteration,
          group: fairGroupKey(this.store.prefix, queue.name, meta),
          jobKeyPrefix: queue.toKey(''),
          jobId,
          bandStart,
          bandWidth: PRIORITY_BAND_WIDTH,
          // The commit sets the job's priority: the fair one. The job's timestamp is the wall clock's,
          // as queue.add dates a job (the queue-wait metric compares it with the worker's clock).
          add: phaseJobAddArguments(queue, name, data, opts, Date.now()),
        },
        role,
        queue: queue.name,
        phaseSpan,
        sendRef,
        start: now,
      });
    }
    return jobs;
  }

  /** After a commit that added `jobs`: their send spans (ending `now`, epoch ms) and log lines. */
  private jobsCommitted(meta: RunMeta, jobs: readonly CommitJob[], now: number): void {
    for (const j of jobs) {
      emitSendSpan({ runId: meta.run_id, phase: j.job.phase, phaseSpan: j.phaseSpan, ref: j.sendRef, queue: j.queue, jobId: j.job.jobId, start: j.start, end: now });
      this.options.log.info({ run_id: meta.run_id, phase: j.job.phase, iteration: j.job.iteration, role: j.role, job_id: j.job.jobId }, 'phase enqueued');
    }
  }

  /** Carry out a commit's effects (the phase jobs it added itself are not among them), then its spans and metrics. */
  private async carryOut(meta: RunMeta, before: RunState, decision: Decision, result: RunResult | undefined): Promise<void> {
    const effects = decision.actions.filter(isOutboxEffect).filter((a) => a.type !== 'enqueue_phase');
    await this.carryOutEffects(meta, decision.state, effects, result);
    this.emitSpans(meta, before, decision);
    recordRunEvents(meta.workflow, decision.state, decision.events);
  }

  /**
   * Carry out a commit's effects against the run as `state` shows it: phase jobs added and cancelled
   * here (independent phases together), the rest handed to `followUp`. Idempotent: job ids are
   * deterministic, and every follow-up is.
   */
  private async carryOutEffects(
    meta: RunMeta,
    state: RunState,
    effects: readonly OutboxEffect[],
    result: RunResult | undefined,
    lookFirst = false,
    outputs?: Record<string, unknown>,
  ): Promise<void> {
    const followUps: FollowUpAction[] = [];
    const work: Array<Promise<void>> = [];
    let stopped: Error | undefined;
    for (const effect of effects) {
      try {
        this.options.beforeEffect?.(meta.run_id, effect);
      } catch (err) {
        stopped = err instanceof Error ? err : new Error(String(err));
        break;
      }
      const def = 'phase' in effect ? meta.workflow.phases.find((p) => p.name === effect.phase) : undefined;
      if (effect.type === 'enqueue_phase' && def) {
        work.push(this.enqueueOnce(meta, state, def, effect.iteration, effect.agent, lookFirst));
      } else if (effect.type === 'start_run') {
        work.push(this.startRun(meta, state, outputs).then(() => undefined));
      } else if (effect.type === 'release_concurrency') {
        work.push(this.releaseSlot(meta.run_id, effect));
      } else if (effect.type === 'cancel_phase' && def && (def.kind === 'agent' || def.kind === 'tool')) {
        work.push(this.cancelPhaseJob(def, state.phases[effect.phase]?.agent, phaseJobId(meta.run_id, effect.phase, effect.iteration)));
      } else if (effect.type !== 'enqueue_phase') {
        followUps.push(effect);
      }
    }
    // What was started is finished (or failed) before anything is reported, a stop included.
    const failed = (await Promise.allSettled(work)).find((r) => r.status === 'rejected');
    if (stopped !== undefined) throw stopped;
    if (failed) throw failed.reason as Error;
    if (followUps.length > 0) await this.options.followUp(meta, followUps, state, result);
  }

  /** Add a phase job; with `lookFirst`, not when a load-balanced phase's job is already in one of its queues. */
  private async enqueueOnce(meta: RunMeta, state: RunState, def: PhaseDefinition, iteration: number, chosen: string | undefined, lookFirst: boolean): Promise<void> {
    // A reconciler takes the role the state recorded when the effect names none (the committer's choice).
    const agent = chosen ?? (lookFirst ? state.phases[def.name]?.agent : undefined);
    if (lookFirst && agent === undefined && def.agentSelect?.type === 'load_balanced') {
      if (await this.findPhaseJob(def, agent, phaseJobId(meta.run_id, def.name, iteration))) return;
    }
    await this.enqueuePhase(meta, state, def, iteration, agent);
  }

  /**
   * Create a run and start it in one commit: its `run_started`, decided on its first state, is
   * committed together with the create (the run's record, index entries, first event and the
   * context it starts with) and its first phase jobs, so no start is left to carry out and nothing
   * is written unless all of it is. For a run with no concurrency limit: one with a limit is created
   * with its start in the outbox and admitted first ({@link startCreated}). Answers once the commit
   * landed; effects the commit could not do itself (a first phase that starts a child run) are
   * carried out after, from the outbox should that fail ({@link apply}'s `effectsAfterReply`).
   *
   * @param state - the run's first state (`created`, or a rerun's with its reused phases completed).
   * @param outputs - the shared context the run starts with.
   * @returns false when a run with its id existed and this commit wrote nothing: a repeated
   *   deterministic id, or this create sent again by ioredis after its reply was lost (the run is
   *   then this create's, and what it left in the outbox is carried out here).
   * @throws Error when the run has a concurrency limit; FleetError `EVENT_REJECTED` when deciding the
   *   start threw (nothing written); Redis errors: nothing was written, unless the connection dropped
   *   after Redis ran the commit and ioredis did not send it again (then the run exists, started:
   *   retry with the same run id, which is refused as a duplicate).
   */
  async createStarted(meta: RunMeta, state: RunState, outputs: Record<string, unknown>): Promise<boolean> {
    if (meta.concurrency?.limit !== undefined) throw new Error(`run "${meta.run_id}" has a concurrency limit: create it with its start in the outbox (RunStore.createRun, then startCreated), so it is admitted first`);
    const applied = await this.apply(meta.run_id, { type: 'run_started', at: this.clock.now() }, { known: { meta, state, outputs, create: true }, effectsAfterReply: true });
    return applied.created === true;
  }

  /**
   * Carry out a run's create (its first commit, see {@link RunStore.createRun}): its `start_run`
   * effect, whose `run_started` commit drops that outbox entry in the same step (or, when the run is
   * queued behind its concurrency key, a clear after the admission). Should this process die or fail
   * before the end, the entry stays and the manager's reconcile starts the run.
   *
   * @param outputs - the shared context the run was created with (saves a read when deciding).
   * @throws Redis errors; FleetError `RUN_NOT_FOUND`.
   */
  async startCreated(meta: RunMeta, state: RunState, outputs: Record<string, unknown>): Promise<void> {
    this.options.beforeEffect?.(meta.run_id, { type: 'start_run' });
    // The start commit drops the create's entry itself; a run queued behind its concurrency key, or
    // one whose start was refused (already started), has it dropped here.
    if (!(await this.startRun(meta, state, outputs, [state.version]))) await this.store.clearOutbox(meta.run_id, [state.version]);
  }

  /**
   * Start a `created` run: admit it against its concurrency key (a run over the limit is `queued`,
   * and a finishing run of its key starts it), then commit its `run_started` (which adds the first
   * phase jobs itself). A run already started is refused as a duplicate.
   * @param carriesOut - outbox entries the start commit drops (the create's).
   * @returns whether the start was committed (false: queued behind its key, or refused).
   */
  private async startRun(meta: RunMeta, state: RunState, outputs?: Record<string, unknown>, carriesOut?: readonly number[]): Promise<boolean> {
    if ((await admitRun(this.options.store, meta, state, this.clock.now())) !== 'admitted') return false;
    const applied = await this.apply(meta.run_id, { type: 'run_started', at: this.clock.now() }, { known: { meta, state, outputs }, carriesOut });
    return applied.decision.accepted;
  }

  /**
   * Free a finished run's concurrency slot and start the key's runs it admitted, oldest first (see
   * ./concurrency.ts). A repeat starts the same runs, whose second start is refused as a duplicate.
   */
  private async releaseSlot(runId: string, effect: ReleaseConcurrency): Promise<void> {
    const admitted = await releaseConcurrency(this.options.store, runId, effect);
    for (const next of admitted) {
      try {
        await this.apply(next, { type: 'run_started', at: this.clock.now() });
      } catch (err) {
        // A queued run deleted meanwhile has nothing left to start.
        if (!(err instanceof FleetError && err.code === 'RUN_NOT_FOUND')) throw err;
      }
      this.options.log.info({ run_id: next, concurrency_key: effect.key, released_by: runId }, 'queued run admitted');
    }
  }

  /**
   * Carry out what the run's outbox still holds, then clear it: the commits whose committer died or
   * failed after committing, or whose reply was lost. Each effect is checked against the run as it is
   * now (a phase job is added only while that iteration is still in flight, a finished run's
   * follow-ups only while it is finished), so an old entry never undoes a later commit. Idempotent,
   * and safe beside the committer doing the same.
   *
   * @param commits - only the entries of these commit ids (a committer's own, see
   *   {@link RunDriver.apply}'s `commitId`); all entries when absent (a dead committer's).
   * @returns how many outbox entries were carried out.
   * @throws Redis errors (the outbox stays, for the next reconcile).
   */
  async reconcile(runId: string, commits?: readonly string[]): Promise<number> {
    const all = await this.store.readOutbox(runId);
    const entries = commits ? all.filter((e) => e.commits.some((c) => commits.includes(c))) : all;
    if (entries.length === 0) return 0;
    let run;
    try {
      run = await this.store.getRun(runId);
    } catch (err) {
      // The run is gone (expired, deleted): nothing of it is left to carry out.
      if (err instanceof FleetError && err.code === 'RUN_NOT_FOUND') {
        await this.store.clearOutbox(runId, entries.map((e) => e.version), this.clock.now());
        return entries.length;
      }
      throw err;
    }
    const { meta, state, result } = run;
    const due = entries.flatMap((e) => e.effects).filter((effect) => stillDue(effect, state));
    await this.carryOutEffects(meta, state, dedupeEffects(due), result, true);
    await this.store.clearOutbox(runId, entries.map((e) => e.version), this.clock.now());
    this.options.log.info({ run_id: runId, versions: entries.map((e) => e.version), effects: due.length }, 'outbox reconciled');
    return entries.length;
  }

  /**
   * Emit the spans of phases the decision ended (their iteration's identity is in the state before
   * it), and the run's span when it finished: whichever process commits the end emits the span.
   */
  private emitSpans(meta: RunMeta, before: RunState, decision: Decision): void {
    const runRef = decision.state.span ?? before.span;
    if (!runRef) return;
    for (const e of decision.events) {
      if (e.type === 'phase_completed' || e.type === 'phase_failed' || e.type === 'phase_cancelled' || e.type === 'phase_skipped') {
        const was = before.phases[e.phase];
        if (!was?.span || !active(was)) continue;
        const def = meta.workflow.phases.find((p) => p.name === e.phase);
        const dependencies: Record<string, SpanRef> = {};
        for (const dep of def?.dependsOn ?? []) {
          const ref = before.phases[dep.phase]?.span;
          if (ref) dependencies[dep.phase] = ref;
        }
        emitPhaseSpan({
          runId: meta.run_id,
          run: runRef,
          ref: was.span,
          phase: e.phase,
          iteration: was.iteration,
          role: was.agent ?? def?.agent ?? 'unknown',
          start: was.queuedAt ?? e.at,
          end: e.at,
          dependencies,
          attempt: e.type === 'phase_completed' ? e.attempt : undefined,
          error: e.type === 'phase_failed' ? e.error.message : undefined,
        });
      } else if (e.type === 'run_finished') {
        emitRunSpan({
          runId: meta.run_id,
          workflow: meta.workflow.name,
          version: meta.workflow.version,
          parent: meta.trace,
          ref: runRef,
          start: decision.state.startedAt ?? meta.created_at,
          end: e.at,
          status: e.status,
        });
      }
    }
  }

  /** Jobs waiting in a role's queue (waiting, prioritized, delayed): what `load_balanced` balances. */
  private async queueDepth(role: string): Promise<number> {
    return this.queueFor(role).getJobCountByTypes('waiting', 'prioritized', 'delayed');
  }

  /**
   * The depths of the queues the workflow's `load_balanced` phases choose among (role → jobs
   * waiting), the scheduler's input for that choice; undefined when it has no such phase.
   */
  private async queueDepths(meta: RunMeta): Promise<Record<string, number> | undefined> {
    const roles = balancedRoles(meta.workflow);
    if (roles.length === 0) return undefined;
    const counts = await Promise.all(roles.map((r) => this.queueDepth(r)));
    return Object.fromEntries(roles.map((r, i) => [r, counts[i] as number]));
  }

  /**
   * Add a phase iteration's job to its role's queue (id `<run>.<phase>.<iteration>`: adding it again
   * is a no-op), inside a `send <queue>` producer span whose context travels in the job data.
   */
  async enqueuePhase(meta: RunMeta, state: RunState, def: PhaseDefinition, iteration: number, chosen?: string): Promise<void> {
    await this.sendPhaseJob(meta, state, await this.placePhaseJob(meta, def, iteration, chosen));
  }

  /** Where a phase iteration's job goes (its role's queue) and its priority (./fair-priority.ts). */
  private async placePhaseJob(meta: RunMeta, def: PhaseDefinition, iteration: number, chosen: string | undefined): Promise<PlacedPhaseJob> {
    const jobId = phaseJobId(meta.run_id, def.name, iteration);
    // decide names the role of every `load_balanced` enqueue; one from an outbox entry an older version
    // wrote names none and goes to the phase's default role (the first listed).
    const role = chosen ?? def.agent;
    const queue = this.queueFor(role);
    // Urgent runs first, and concurrency keys taking turns.
    const priority = await fairPriority(this.options.store, queue, jobId, meta);
    return { def, iteration, jobId, role, queue, priority };
  }

  /** Add a placed phase job inside a `send <queue>` producer span, whose context travels in the job data. */
  private async sendPhaseJob(meta: RunMeta, state: RunState, placed: PlacedPhaseJob): Promise<void> {
    const { def, iteration, jobId, role, queue, priority } = placed;
    const runId = meta.run_id;
    const phaseSpan = state.phases[def.name]?.span;
    await withSpan(
      `send ${queue.name}`,
      {
        kind: SpanKind.PRODUCER,
        parent: contextOfSpanRef(phaseSpan),
        attributes: sendSpanAttributes(queue.name, jobId, runId, def.name),
      },
      async () => {
        // The send span's context; in a process without an SDK (a client that only submits), the phase span's.
        const { name, data, opts } = phaseJobRequest(meta, def, iteration, role, carrierUnder(phaseSpan));
        await queue.add(name, data, { ...opts, priority });
        this.options.log.info({ run_id: runId, phase: def.name, iteration, role, job_id: jobId }, 'phase enqueued');
      },
    );
  }

  /** Remove a phase job that still waits; abort it through {@link cancelChannel} if a worker holds it. */
  async cancelPhaseJob(def: PhaseDefinition, chosen: string | undefined, jobId: string): Promise<void> {
    const job = await this.findPhaseJob(def, chosen, jobId);
    if (job) {
      const state = await job.getState();
      if (state === 'waiting' || state === 'delayed' || state === 'prioritized') await job.remove().catch(() => undefined);
    }
    await this.options.redis.publish(cancelChannel(this.options.prefix), jobId);
  }

  /**
   * The job of a phase iteration: in the queue of `chosen` (the role the run's state recorded for
   * the iteration, then the phase's default role) when given, else in whichever of the phase's possible role queues it is (an
   * iteration queued by a version that did not record a `load_balanced` choice).
   */
  async findPhaseJob(def: PhaseDefinition, chosen: string | undefined, jobId: string): Promise<Job | undefined> {
    const roles = new Set(chosen !== undefined ? [chosen, def.agent] : [def.agent, ...(def.agentSelect?.type === 'load_balanced' ? def.agentSelect.agents : [])]);
    for (const role of roles) {
      const found = await this.queueFor(role).getJob(jobId);
      if (found) return found;
    }
    return undefined;
  }

  /** Agent queues this driver has used so far (their metrics are observed by the manager). */
  roles(): IterableIterator<string> {
    return this.queues.keys();
  }

  /** Wait for carry-outs still running after their callers were answered, then close the queues. */
  async close(): Promise<void> {
    await Promise.all([...this.carryingOut]);
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}
