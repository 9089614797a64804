/**
 * The manager's check for phases nobody will take: a phase that waits in the queue of a role no
 * live pool serves (the pools' heartbeats) is said so in its run's events (`reportUnservedPhases`),
 * instead of being left queued without a word.
 */
import { agentQueuesKey, FleetError, reportUnservedPhases, servedRoles } from '@agentfleet/core';
import type { RunDriver, RunStore } from '@agentfleet/core/internal';
import type { Redis } from 'ioredis';

/** What {@link checkUnservedPhases} works with. */
export interface UnservedCheckOptions {
  redis: Redis;
  prefix: string;
  store: RunStore;
  /** Gives the role queues to look into. */
  driver: RunDriver;
  /** Where each unserved phase is reported, besides its run's events. */
  warn: (message: string) => void;
}

/**
 * Look once for runs with a phase queued for a role no live pool serves, and report each. Only the
 * queues of unserved roles are read (their first 100 waiting jobs), so a fleet whose roles are all
 * served pays one HGETALL and one SMEMBERS.
 *
 * @throws Redis errors.
 */
export async function checkUnservedPhases(options: UnservedCheckOptions): Promise<void> {
  const { redis, prefix, store, driver, warn } = options;
  const served = await servedRoles(redis, prefix);
  const roles = (await redis.smembers(agentQueuesKey(prefix))).filter((r) => !served.has(r));
  for (const role of roles) {
    const jobs = await driver.queueFor(role).getJobs(['wait', 'prioritized'], 0, 99);
    const runIds = new Set(jobs.map((j) => (j?.data as { run_id?: unknown } | undefined)?.run_id).filter((id): id is string => typeof id === 'string'));
    for (const runId of runIds) {
      const reported = await reportUnservedPhases(redis, store, prefix, runId).catch((err: unknown) => {
        if (err instanceof FleetError && err.code === 'RUN_NOT_FOUND') return [];
        throw err;
      });
      for (const u of reported) warn(`run ${runId}: phase ${u.phase} is queued but ${u.message}`);
    }
  }
}
