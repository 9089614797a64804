/**
 * The `schedules` queue: the BullMQ job schedulers of every schedule live on it, and each fire is one
 * of its jobs, taken by a manager's schedule worker, which starts the run.
 *
 * Job ids are BullMQ's own for a scheduler's iterations, `repeat:<schedule name>:<fire time ms>`: one
 * job per fire time, however many managers run. A fire whose processing is repeated (a manager died
 * holding it) starts its run once all the same: the decision for a fire is written once (SET NX), see
 * `ScheduleStore.decideFire`.
 */
import { z } from 'zod';

export const SCHEDULES_QUEUE = 'schedules';

/** The data of a fire job (the job scheduler's template). */
export const ScheduleFireJobDataSchema = z.object({
  /** The schedule's name (also the job scheduler id). */
  schedule: z.string().min(1),
  /** Id of the schedule's definition: a fire of a schedule removed and added again under the same name is dropped. */
  schedule_id: z.string().min(1),
});
export type ScheduleFireJobData = z.infer<typeof ScheduleFireJobDataSchema>;

/**
 * The fire time (epoch ms) of a job scheduler's iteration, from its job id
 * (`repeat:<scheduler id>:<ms>`, BullMQ 6 `job-scheduler.ts`); undefined for any other id.
 */
export function fireTimeOfJobId(jobId: string | undefined): number | undefined {
  const m = jobId ? /^repeat:.+:(\d+)$/.exec(jobId) : null;
  return m ? Number(m[1]) : undefined;
}
