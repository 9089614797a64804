/**
 * The archiver: writes each finished run to the {@link HistoryStore}, from a durable queue.
 *
 * The commit that finishes a run adds it to `<p>:archive:pending` (same Lua call, so no finished run
 * is missed). This module claims due members with a lease and adds one BullMQ job per run
 * (deterministic id), whose worker reads the run from Redis, writes it to PostgreSQL in one
 * transaction (an upsert by run id) and then lets Redis expire it. A manager killed mid-write, or
 * PostgreSQL down, leaves the run pending: the job is retried (backoff capped at `retryMaxDelayMs`),
 * and should the job itself be lost, the lease brings the run due again. A repeated write overwrites
 * the same rows, so nothing is lost and nothing is duplicated.
 */
import { FleetError, RunLabelStore, historyRunOf, systemClock, type Clock, type StoredRunEvent } from '@agentfleet/core';
import type { RunStore } from '@agentfleet/core/internal';
import { Queue, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { HistoryStore } from './history-store.js';

/** The archive queue (manager-internal: only managers add and take its jobs). */
export const ARCHIVE_QUEUE = 'archive';

export interface ArchiverOptions {
  /** How often pending runs are looked for, ms. @defaultValue 250 */
  pollMs?: number;
  /** How long a claimed pending run waits before it is queued again (its job lost), ms. @defaultValue 300000 */
  leaseMs?: number;
  /** The clock pending runs and their leases are read with (the clock that dated the finishing commits). @defaultValue {@link systemClock} */
  clock?: Clock;
  /** Longest wait between two tries of one run's write, ms (PostgreSQL down). @defaultValue 30000 */
  retryMaxDelayMs?: number;
  /** Runs written at once. @defaultValue 4 */
  concurrency?: number;
  /** BullMQ lock of a write in progress, ms: a killed manager's write is taken over once it expires. @defaultValue 30000 */
  lockDurationMs?: number;
  /** How often writes held by a dead manager are looked for, ms. @defaultValue 30000 */
  stalledIntervalMs?: number;
  /** Called after each run was written (tests, metrics). */
  onArchived?: (runId: string) => void;
  /** Called when a write failed and will be tried again. */
  onRetry?: (runId: string, err: Error) => void;
}

export interface Archiver {
  close(): Promise<void>;
}

/** Start archiving finished runs of the fleet under `store.prefix` to `history`. */
export async function startArchiver(redis: Redis, store: RunStore, history: HistoryStore, options: ArchiverOptions = {}): Promise<Archiver> {
  const labels = new RunLabelStore(redis, store.prefix);
  const leaseMs = options.leaseMs ?? 300_000;
  const maxDelay = options.retryMaxDelayMs ?? 30_000;
  const queue = new Queue<{ run_id: string }>(ARCHIVE_QUEUE, { connection: redis, prefix: store.prefix });
  queue.on('error', () => undefined); // failures surface through the rejected add; unheard, BullMQ prints each one

  async function archive(job: Job<{ run_id: string }>): Promise<void> {
    const id = job.data.run_id;
    let run;
    try {
      run = await store.getRun(id);
    } catch (err) {
      // Purged meanwhile: nothing to archive.
      if (err instanceof FleetError && err.code === 'RUN_NOT_FOUND') {
        await store.markArchived(id);
        return;
      }
      throw err;
    }
    if (!run.result) {
      // Reopened (resumed) since it finished: it is queued again when it finishes again.
      await store.markArchived(id);
      return;
    }
    const [result, runLabels, events] = await Promise.all([store.getResult(id), labels.get(id), readAllEvents(store, id)]);
    await history.write({ result, labels: runLabels as Record<string, unknown>, events, history: historyRunOf(run.meta, run.state) });
    await store.markArchived(id);
    options.onArchived?.(id);
  }

  const worker = new Worker<{ run_id: string }>(ARCHIVE_QUEUE, archive, {
    connection: redis,
    prefix: store.prefix,
    concurrency: options.concurrency ?? 4,
    lockDuration: options.lockDurationMs ?? 30_000,
    stalledInterval: options.stalledIntervalMs ?? 30_000,
    // A killed manager must never make a write fail for good.
    maxStalledCount: 1_000_000,
    settings: { backoffStrategy: (attemptsMade: number) => Math.min(250 * 2 ** Math.max(0, attemptsMade - 1), maxDelay) },
  });
  worker.on('error', () => undefined);
  worker.on('failed', (job, err) => {
    if (job) options.onRetry?.(job.data.run_id, err);
  });

  let stopped = false;
  let polling: Promise<void> | undefined;
  async function poll(): Promise<void> {
    const now = (options.clock ?? systemClock).now();
    const due = await store.claimArchivePending(now, now + leaseMs);
    if (due.length === 0) return;
    await queue.addBulk(
      due.map((run_id) => ({
        name: 'archive_run',
        data: { run_id },
        opts: { jobId: `archive.${run_id}`, attempts: 1_000_000, backoff: { type: 'custom' }, removeOnComplete: true, removeOnFail: true },
      })),
    );
  }
  const timer = setInterval(() => {
    if (polling || stopped) return;
    polling = poll()
      .catch(() => undefined)
      .finally(() => (polling = undefined));
  }, options.pollMs ?? 250);
  await worker.waitUntilReady();

  return {
    async close() {
      stopped = true;
      clearInterval(timer);
      await polling;
      await worker.close();
      await queue.close();
    },
  };
}

/** Every event of a run's stream, in order. */
async function readAllEvents(store: RunStore, id: string): Promise<StoredRunEvent[]> {
  const out: StoredRunEvent[] = [];
  let after = '0';
  for (;;) {
    const batch = await store.readEvents(id, after);
    if (batch.length === 0) return out;
    out.push(...batch);
    after = (batch[batch.length - 1] as StoredRunEvent).id;
  }
}
