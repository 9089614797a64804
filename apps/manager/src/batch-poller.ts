/**
 * The manager's poller of open message batches (`mode: batch` phases): every `pollMs` it takes the
 * batches due in `<p>:batches:open` (leased, so several managers share the work and a restarted
 * manager takes up what its predecessor left), asks the Batches API about each, and when one has
 * ended brings its phase job back at once (BullMQ `promote` of the delayed job), so a worker takes
 * the attempt up with the result. A batch nobody waits on any more (the run ended or moved on) is
 * cancelled and dropped.
 *
 * Nothing here changes a run: the worker that takes the job commits the attempt's outcome as for a
 * direct call.
 */
import {
  FleetError,
  IN_FLIGHT_PHASE_STATUSES,
  isBatchWait,
  isTerminalRun,
  phaseJobId,
  systemClock,
  type AnthropicBatches,
  type Clock,
  type FleetLogger,
  type RunState,
} from '@agentfleet/core';
import {
  BatchStore,
  type OpenBatch,
  type RunDriver,
  type RunStore,
} from '@agentfleet/core/internal';
import type { Redis } from 'ioredis';

/** How often open batches are asked about, ms (`FLEET_BATCH_POLL_MS`). */
export const DEFAULT_BATCH_POLL_MS = 30_000;

export interface BatchPollerOptions {
  redis: Redis;
  prefix: string;
  store: RunStore;
  driver: RunDriver;
  /** The Batches API (Anthropic), asked for each open batch's status. */
  batches: Pick<AnthropicBatches, 'status' | 'cancel'>;
  /** @defaultValue {@link DEFAULT_BATCH_POLL_MS} */
  pollMs?: number | undefined;
  log: FleetLogger;
  onError: (err: Error) => void;
  /**
   * The clock the poller ticks on and reads the time with (epoch ms): which batches are due, and when
   * each is asked about again. A {@link TestClock} advanced by `pollMs` runs the next tick at once.
   * @defaultValue {@link systemClock}
   */
  clock?: Clock | undefined;
}

export interface BatchPoller {
  /** Ask about every due batch once (what each tick does). */
  pollOnce(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Whether a phase attempt still waits on (or is about to wait on) open batch `batch`, from the run's
 * stored state: the phase is in the batch's iteration and attempt and either waits on this batch,
 * or is still in flight (its start perhaps not recorded yet), or waits on an earlier batch of the
 * same attempt. The last two cover a worker between submitting a batch and recording the wait on it: in a tool loop, each model call
 * is its own batch, so the phase still shows the previous call's wait while the next one is
 * submitted. A batch of an earlier attempt or iteration, or of an ended run, is awaited by nobody.
 */
export function batchAwaited(state: Pick<RunState, 'status' | 'phases'>, batch: Pick<OpenBatch, 'phase' | 'iteration' | 'attempt' | 'batch_id'>): boolean {
  const phase = state.phases[batch.phase];
  if (isTerminalRun(state.status) || !phase || phase.iteration !== batch.iteration) return false;
  const waitingOnIt = isBatchWait(phase) && (phase.waitingFor?.prompt as { batch_id?: string } | undefined)?.batch_id === batch.batch_id;
  // The attempt's start (`phase_started`) may be committed after its first batch was submitted: the
  // phase then still shows the attempt before it, queued or retrying.
  const startPending = (phase.status === 'queued' || phase.status === 'retrying') && phase.attempts === batch.attempt - 1;
  const sameAttempt = phase.attempts === batch.attempt || startPending;
  return waitingOnIt || (sameAttempt && (IN_FLIGHT_PHASE_STATUSES.includes(phase.status) || isBatchWait(phase)));
}

/** Start polling; stop with {@link BatchPoller.stop}. */
export function startBatchPoller(options: BatchPollerOptions): BatchPoller {
  const pollMs = options.pollMs ?? DEFAULT_BATCH_POLL_MS;
  const index = new BatchStore(options.redis, options.prefix);
  const clock = options.clock ?? systemClock;
  let stopped = false;
  let cancelTimer: (() => void) | undefined;
  let running: Promise<void> | undefined;

  async function handle(batch: OpenBatch): Promise<void> {
    let run;
    try {
      run = await options.store.getRun(batch.run_id);
    } catch (err) {
      if (err instanceof FleetError && err.code === 'RUN_NOT_FOUND') {
        await options.batches.cancel(batch.batch_id);
        await index.drop(batch);
        return;
      }
      throw err;
    }
    if (!batchAwaited(run.state, batch)) {
      await options.batches.cancel(batch.batch_id);
      await index.drop(batch);
      options.log.info({ run_id: batch.run_id, phase: batch.phase, batch_id: batch.batch_id }, 'message batch no longer awaited: cancelled');
      return;
    }
    const status = await options.batches.status(batch.batch_id);
    if (status === 'ended') {
      const def = run.meta.workflow.phases.find((p) => p.name === batch.phase);
      const job = def ? await options.driver.findPhaseJob(def, batch.role, phaseJobId(batch.run_id, batch.phase, batch.iteration)) : undefined;
      if (job && (await job.isDelayed())) {
        await job.promote();
        options.log.info({ run_id: batch.run_id, phase: batch.phase, batch_id: batch.batch_id }, 'message batch ended: phase job resumed');
      }
    }
    // Asked about again until the worker takes the result (which drops it from the index).
    await index.reschedule(batch, clock.now() + pollMs);
  }

  async function pollOnce(): Promise<void> {
    const now = clock.now();
    const due = await index.claimOpen(now, now + Math.max(4 * pollMs, 10_000));
    for (const batch of due) {
      if (stopped) return;
      await handle(batch).catch((err: unknown) => {
        options.onError(err instanceof Error ? err : new Error(String(err)));
        return index.reschedule(batch, clock.now() + pollMs).catch(() => undefined);
      });
    }
  }

  const tick = (): void => {
    if (stopped) return;
    running = pollOnce()
      .catch((err: unknown) => options.onError(err instanceof Error ? err : new Error(String(err))))
      .finally(() => {
        running = undefined;
        if (!stopped) cancelTimer = clock.setTimer(pollMs, tick);
      });
  };
  cancelTimer = clock.setTimer(0, tick);

  return {
    pollOnce,
    async stop() {
      stopped = true;
      cancelTimer?.();
      await running;
    },
  };
}
