/** Schedules: runs that start themselves on a cron or an interval (BullMQ job schedulers). */
export {
  CATCH_UP_POLICIES,
  DEFAULT_MISFIRE_GRACE_MS,
  MIN_EVERY_MS,
  OVERLAP_POLICIES,
  SCHEDULE_FIELDS,
  ScheduleInputSchema,
  compileSchedule,
  latestFireTime,
  nextFireTimes,
  scheduleToInput,
  type CatchUpPolicy,
  type OverlapPolicy,
  type ScheduleDefinition,
  type ScheduleInput,
} from './schedule-definition.js';
export {
  FIRE_DECISION_TTL_MS,
  FIRE_START_GRACE_MS,
  SCHEDULE_RUNS_KEPT,
  ScheduleStore,
  repeatOptions,
  type FireDecision,
  type ScheduleRecord,
  type ScheduleState,
  type ScheduleView,
} from './schedule-store.js';
export { ScheduleRunner, type FireInput, type FireOutcome } from './schedule-runner.js';
export { SCHEDULE_FIRES_METRIC, recordScheduleFire } from './schedule-metrics.js';
export { SCHEDULES_QUEUE, ScheduleFireJobDataSchema, fireTimeOfJobId, type ScheduleFireJobData } from '../queues/schedule-queue.js';
