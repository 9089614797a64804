import { Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { MANAGER_QUEUE, ManagerJobDataSchema, type ManagerJobData } from './contracts.js';

/** Retention of manager-queue jobs: long enough to dedupe repeated reports, short enough to stay small. */
const MANAGER_JOB_DEFAULTS: JobsOptions = {
  attempts: 10,
  backoff: { type: 'exponential', delay: 200, jitter: 0.5 },
  removeOnComplete: { age: 3600, count: 10_000 },
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
      ...(options.jobId ? { jobId: options.jobId } : {}),
      ...(options.delayMs ? { delay: options.delayMs } : {}),
    });
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
