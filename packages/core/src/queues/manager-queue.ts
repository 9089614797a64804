import { Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { JOB_SIZE_LIMITS, MANAGER_QUEUE, ManagerJobDataSchema, type ManagerJobData } from './contracts.js';

/**
 * Manager-queue jobs are removed once processed: every report is applied under the run's version
 * fence, so a repeated one is refused by the scheduler and needs no retained job to dedupe it (and an
 * outcome report carries the phase output, which the run's context already holds). Failed ones stay
 * a week for inspection.
 */
const MANAGER_JOB_DEFAULTS: JobsOptions = {
  attempts: 10,
  backoff: { type: 'exponential', delay: 200, jitter: 0.5 },
  removeOnComplete: true,
  removeOnFail: { age: 7 * 24 * 3600 },
};

/**
 * The producer side of the `manager` queue: how workers, clients and the manager itself report what
 * happened to a run. Every report is validated against {@link ManagerJobDataSchema} before it is added.
 */
export class ManagerQueue {
  readonly queue: Queue;

  constructor(connection: Redis, prefix: string) {
    this.queue = new Queue(MANAGER_QUEUE, { connection, prefix });
    // A Redis outage fails each report (the caller sees it); without a listener BullMQ would also print every connection error.
    this.queue.on('error', () => undefined);
  }

  /**
   * Add one report.
   *
   * @param jobId - a deterministic id makes the report idempotent (BullMQ ignores an add whose id exists).
   * @param delayMs - deliver after this many ms (manager-side deadlines).
   */
  async report(data: ManagerJobData, options: { jobId?: string; delayMs?: number } = {}): Promise<void> {
    const valid = ManagerJobDataSchema.parse(data);
    await this.queue.add(valid.type, valid, {
      ...MANAGER_JOB_DEFAULTS,
      sizeLimit: JOB_SIZE_LIMITS.managerReport,
      ...(options.jobId ? { jobId: options.jobId } : {}),
      ...(options.delayMs ? { delay: options.delayMs } : {}),
    });
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
