/**
 * The manager's outbox sweep: carries out what commits left in their runs' outboxes
 * (`<p>:run:<id>:outbox`) when the committer did not, through {@link RunDriver.reconcile}. While the
 * manager runs, an outbox older than the lease is taken for a crashed committer's; when a manager
 * starts, every pending outbox is carried out, however young. At start it also starts the runs an
 * earlier version created without an outbox entry for their start, which nothing else would start.
 */
import { FleetError, type FleetLogger } from '@agentfleet/core';
import type { RunDriver, RunStore } from '@agentfleet/core/internal';

/** What {@link OutboxSweep} works with. */
export interface OutboxSweepOptions {
  store: RunStore;
  driver: RunDriver;
  /**
   * How old an outbox may get before the sweep carries it out, ms: its committer had that long and is
   * taken for dead. The run stays leased to this manager for as long while it is carried out.
   */
  leaseMs: number;
  log: FleetLogger;
  /** Where a run whose outbox could not be carried out is reported (it is tried again on the next sweep). */
  warn: (message: string) => void;
}

/** Runs looked at together when looking for runs without a start. */
const UNSTARTED_CHUNK = 50;

/** Carries out outboxes their committers left, and starts runs that have no outbox entry for their start. */
export class OutboxSweep {
  constructor(private readonly options: OutboxSweepOptions) {}

  /**
   * Carry out the outbox of every run whose committer left it longer than a lease before `now`
   * (epoch ms): it crashed, or lost Redis, between its commit and its effects. Each run is leased to
   * this manager meanwhile. Errors are warned about per run; the run comes due again after the lease.
   */
  async reconcileStale(now: number): Promise<void> {
    const { store, driver, leaseMs, warn } = this.options;
    const stale = await store.claimStaleOutboxes(now - leaseMs, now + leaseMs);
    await Promise.all(stale.map((runId) => driver.reconcile(runId).catch((err: unknown) => warn(`outbox of ${runId}: ${(err as Error).message}`))));
  }

  /**
   * Carry out every run's pending outbox, however young, one run after another: runs whose client
   * died before starting them, and whatever a crashed committer (this manager among them) left
   * undone, a finished run's follow-ups (its end action, its parent's report) included. Every effect
   * a commit sets off is in its outbox until carried out (the outbox is written in the commit
   * itself, and cleared only after its effects), so the outboxes are all there is to redo.
   */
  async reconcilePending(): Promise<void> {
    const { store, driver, warn } = this.options;
    for (const runId of await store.pendingOutboxRunIds()) {
      await driver.reconcile(runId).catch((err: unknown) => warn(`reconcile ${runId}: ${(err as Error).message}`));
    }
  }

  /**
   * Start every run that is still `created` and has no outbox entry: a run an earlier version
   * created (its create wrote no `start_run` entry) whose client died before starting it. Started
   * the way its client would have (`RunDriver.startCreated`: admitted against its concurrency key,
   * then `run_started` committed with its first phase jobs).
   *
   * A run's outbox is read before its state: a run created by this version keeps its create's entry
   * until its start has moved it out of `created`, so a run seen without an entry and then seen
   * `created` has none to wait for.
   *
   * @returns the ids of the runs started (queued ones included: their concurrency key starts them).
   */
  async startUnstarted(): Promise<string[]> {
    const { store, log, warn } = this.options;
    const pending = new Set(await store.pendingOutboxRunIds());
    const candidates = (await store.activeRunIds()).filter((id) => !pending.has(id));
    const started: string[] = [];
    for (let i = 0; i < candidates.length; i += UNSTARTED_CHUNK) {
      await Promise.all(
        candidates.slice(i, i + UNSTARTED_CHUNK).map(async (runId) => {
          try {
            if (await this.startIfUnstarted(runId)) started.push(runId);
          } catch (err) {
            warn(`start of run ${runId}: ${(err as Error).message}`);
          }
        }),
      );
    }
    if (started.length > 0) log.info({ runs: started.length }, 'runs created without a start in their outbox were started');
    return started;
  }

  /** Start run `runId` when it is `created` with an empty outbox; whether it did. */
  private async startIfUnstarted(runId: string): Promise<boolean> {
    const { store, driver } = this.options;
    if ((await store.readOutbox(runId)).length > 0) return false;
    let run;
    try {
      run = await store.getRunWithOutputs(runId);
    } catch (err) {
      // Gone since the active set was read (expired, deleted): nothing to start.
      if (err instanceof FleetError && err.code === 'RUN_NOT_FOUND') return false;
      throw err;
    }
    if (run.state.status !== 'created') return false;
    await driver.startCreated(run.meta, run.state, run.outputs);
    return true;
  }
}
