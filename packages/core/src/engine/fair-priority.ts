/**
 * The BullMQ job priority of a phase job: urgent runs first, and keys (tenants) taking turns.
 *
 * BullMQ takes prioritized jobs lowest number first, and jobs of equal priority in the order they were
 * added; priorities run from 1 to 2^21 − 1 (`PRIORITY_LIMIT`; 0 means "no priority", and such jobs
 * are taken before every prioritized one, so every phase job gets a priority).
 * See https://docs.bullmq.io/guide/jobs/prioritized.
 *
 * That range is cut into 10 bands of {@link PRIORITY_BAND_WIDTH} priorities, one per run priority:
 * a run of priority 10 (most urgent) uses the first band, priority 1 the last. Within a band a job's
 * priority is the band's first value plus the number of jobs of its fairness key still in that role
 * queue (waiting, delayed or active), but never less than the largest priority a job of the same key
 * and band still holds (so a key's own jobs keep their order): a key with 200 jobs waiting gets 200
 * for its next job while a key with none gets 0, so the queue serves keys in turn (round robin)
 * instead of in arrival order. The fairness key is the run's concurrency key, or one shared group for
 * runs without one.
 *
 * Limits: a job's priority is fixed when it is added, so a key keeps its large numbers while it has a
 * backlog; a key with more than {@link PRIORITY_BAND_WIDTH} − 1 jobs waiting saturates at its band's
 * last value. The count is kept in `<p>:fair:<queue>:<key>` ({@link fairGroupKey}): the commit that
 * ends a job's phase iteration drops the job from it, and a job no commit ended (removed by hand) is
 * dropped when it reaches the head of the key's line.
 * User documentation: docs/concurrency-and-priority.md.
 */
import type { Queue } from 'bullmq';
import { storeCommand } from '../store/commands.js';
import type { RunStore } from '../store/run-store.js';
import type { RunMeta } from '../result.js';
import { DEFAULT_RUN_PRIORITY, MAX_RUN_PRIORITY, MIN_RUN_PRIORITY } from '../workflow/concurrency.js';

/** BullMQ's largest job priority (`PRIORITY_LIMIT` in bullmq's job.js). */
export const BULLMQ_PRIORITY_LIMIT = 2 ** 21 - 1;
/** Priorities per run-priority band: 209 715. */
export const PRIORITY_BAND_WIDTH = Math.floor(BULLMQ_PRIORITY_LIMIT / (MAX_RUN_PRIORITY - MIN_RUN_PRIORITY + 1));

/**
 * The first BullMQ priority of a run priority's band: 1 for priority 10, 1 + 9 × 209 715 for priority 1.
 * @param priority - 1 (least urgent) .. 10 (most urgent); out-of-range values are clamped.
 */
export function priorityBandStart(priority: number): number {
  const p = Math.min(MAX_RUN_PRIORITY, Math.max(MIN_RUN_PRIORITY, Math.round(priority)));
  return 1 + (MAX_RUN_PRIORITY - p) * PRIORITY_BAND_WIDTH;
}

/** The first BullMQ priority of the band of `meta`'s run: its priority, else its workflow's, else the default. */
export function runBandStart(meta: RunMeta): number {
  return priorityBandStart(meta.priority ?? meta.workflow.priority ?? DEFAULT_RUN_PRIORITY);
}

/** The fairness group of a run's phase jobs: its concurrency key, or `''` (one group for runs without one). */
export function fairnessKey(meta: RunMeta): string {
  return meta.concurrency?.key ?? '';
}

/**
 * The sorted set of a fairness group's jobs still in a role queue, `<p>:fair:<queue>:<key>` (job id →
 * its priority): added to by the commit that queues a job (`apply-decision-7`, or `fair-priority-1`
 * for a job a reconciler adds), dropped from by the commit that ends a job's phase
 * iteration (`apply-decision-7`).
 */
export function fairGroupKey(prefix: string, queueName: string, meta: RunMeta): string {
  return `${prefix}:fair:${queueName}:${fairnessKey(meta)}`;
}

type FairPriorityCommand = (groupKey: string, jobKeyPrefix: string, jobId: string, bandStart: string, bandWidth: string) => Promise<number>;

/**
 * The BullMQ priority for a phase job of `meta`'s run in `queue` that a reconciler adds from an
 * outbox entry (store script `fair-priority-1`; a commit computes its own jobs' priorities itself);
 * the same job id gets the same priority again.
 *
 * @returns an integer in 1 .. {@link BULLMQ_PRIORITY_LIMIT}.
 * @throws Redis errors.
 */
export async function fairPriority(store: RunStore, queue: Queue, jobId: string, meta: RunMeta): Promise<number> {
  const bandStart = runBandStart(meta);
  const command = storeCommand<FairPriorityCommand>(store.redis, 'fairPriority');
  const group = fairGroupKey(store.prefix, queue.name, meta);
  return Number(await command(group, queue.toKey(''), jobId, String(bandStart), String(PRIORITY_BAND_WIDTH)));
}
