/**
 * The longest-waiting job of a role queue, for the "oldest wait" gauges. Phase jobs carry a BullMQ
 * priority (../engine/fair-priority.ts), so they wait in the queue's `prioritized` set, ordered by
 * priority rather than by age; jobs added without one (by older versions) wait in its `wait` list.
 */
import type { Job, Queue } from 'bullmq';

/**
 * Of the oldest job in `wait` and the first and last in line in `prioritized` (the lowest priority
 * number, and the highest: the most urgent and the most deferred), the one added first. An estimate
 * that reads three jobs instead of the whole queue: the most deferred job is the one that waits
 * longest when one key or band holds the queue. Undefined when nothing waits.
 * @throws Redis errors.
 */
export async function longestWaitingJob(queue: Queue): Promise<Job | undefined> {
  const [wait, head, tail] = await Promise.all([
    queue.getJobs(['wait'], 0, 0, true),
    queue.getJobs(['prioritized'], 0, 0, true),
    queue.getJobs(['prioritized'], 0, 0, false),
  ]);
  const candidates = [wait[0], head[0], tail[0]].filter((j): j is Job => j !== undefined);
  return candidates.reduce<Job | undefined>((oldest, j) => (oldest === undefined || j.timestamp < oldest.timestamp ? j : oldest), undefined);
}
