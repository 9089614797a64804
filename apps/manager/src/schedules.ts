/**
 * The manager's part in schedules: at start it makes the BullMQ job schedulers match the stored
 * schedules, and its worker on the `schedules` queue takes each fire and starts the run
 * (`ScheduleRunner.fire`). Several managers may run: BullMQ hands each fire job to one of them, and
 * should a fire be processed twice (its manager died holding it) its decision, made once in Redis,
 * names the same run, which is created once.
 */
import {
  FleetError,
  SCHEDULES_QUEUE,
  ScheduleFireJobDataSchema,
  ScheduleRunner,
  fireTimeOfJobId,
  toFleetError,
  toJobOutcome,
  unrecoverableJob,
  type FleetClient,
  type FleetLogger,
  type WorkflowDefinition,
} from '@agentfleet/core';
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';

/**
 * How often the job schedulers are compared with the stored schedules again, ms: a change whose
 * second write did not get through (a process died between storing a schedule and registering its
 * scheduler, or between a pause and the scheduler's removal) is repaired within this.
 */
const SCHEDULER_RECONCILE_MS = 60_000;

export interface ScheduleWorkerOptions {
  redis: Redis;
  prefix: string;
  client: FleetClient;
  log: FleetLogger;
  resolveWorkflow: (name: string) => Promise<WorkflowDefinition>;
  lockDurationMs?: number | undefined;
  stalledIntervalMs?: number | undefined;
  onError: (err: Error) => void;
  clock: { now(): number };
}

export interface ScheduleWorker {
  close(): Promise<void>;
}

/**
 * Start taking fires. Reconciles the job schedulers with the stored schedules first, and again every
 * {@link SCHEDULER_RECONCILE_MS} (a right scheduler is left alone, so a fire already due is kept).
 */
export async function startScheduleWorker(options: ScheduleWorkerOptions): Promise<ScheduleWorker> {
  const runner = new ScheduleRunner(options.redis, options.prefix, options.client, { resolveWorkflow: options.resolveWorkflow });
  async function reconcile(): Promise<void> {
    const reconciled = await runner.store.reconcileSchedulers();
    if (reconciled.registered.length > 0 || reconciled.removed.length > 0) options.log.info(reconciled, 'job schedulers reconciled with the stored schedules');
  }
  await reconcile();
  let reconciling: Promise<void> | undefined;
  const reconcileTimer = setInterval(() => {
    if (reconciling) return;
    reconciling = reconcile()
      .catch((err: unknown) => options.onError(err as Error))
      .finally(() => (reconciling = undefined));
  }, SCHEDULER_RECONCILE_MS);
  reconcileTimer.unref();

  async function handle(job: Job): Promise<unknown> {
    const parsed = ScheduleFireJobDataSchema.safeParse(job.data);
    const fireTime = fireTimeOfJobId(job.id);
    if (!parsed.success || fireTime === undefined) throw unrecoverableJob('INVALID_INPUT', `schedule fire ${job.id} is not a fire of a job scheduler: ${parsed.error?.message ?? 'no fire time in its id'}`);
    try {
      const outcome = await runner.fire({ schedule: parsed.data.schedule, scheduleId: parsed.data.schedule_id, fireTime, now: options.clock.now() });
      options.log.info({ schedule: parsed.data.schedule, fire_time: new Date(fireTime).toISOString(), ...outcome }, 'schedule fired');
      return outcome;
    } catch (err) {
      // The failure names the schedule and the fire time; whether it is tried again is toJobOutcome's rule.
      const error = toFleetError(err);
      const named = new FleetError(error.code, `schedule "${parsed.data.schedule}" fire at ${new Date(fireTime).toISOString()}: ${error.message}`, {
        cause: err,
        retryable: error.retryable,
        ...(error.details ? { details: error.details } : {}),
      });
      throw toJobOutcome(named, job.attemptsMade + 1, job.opts.attempts ?? 1).thrown;
    }
  }

  const worker = new Worker(SCHEDULES_QUEUE, handle, {
    connection: options.redis,
    prefix: options.prefix,
    concurrency: 8,
    lockDuration: options.lockDurationMs ?? 30_000,
    stalledInterval: options.stalledIntervalMs ?? 30_000,
    autorun: true,
  });
  worker.on('error', options.onError);
  worker.on('failed', (job, err) => {
    if (job && job.attemptsMade >= (job.opts.attempts ?? 1)) options.log.warn({ job_id: job.id, err: err.message }, 'schedule fire failed for good');
  });
  await worker.waitUntilReady();
  return {
    async close() {
      clearInterval(reconcileTimer);
      await reconciling;
      await worker.close();
      await runner.close();
    },
  };
}
