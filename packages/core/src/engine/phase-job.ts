/**
 * A phase iteration's BullMQ job: what is asked of BullMQ (name, data, options), and the arguments
 * of BullMQ's add script for it, for the commit that adds it itself (../store/commands.ts,
 * `apply-decision-7`).
 */
import { Job, type JobsOptions, type Queue } from 'bullmq';
import { FLEET_BACKOFF } from '../queues/backoff.js';
import { JOB_SIZE_LIMITS, PhaseJobDataSchema, phaseJobId, type PhaseJobData } from '../queues/contracts.js';
import type { RunMeta } from '../result.js';
import { BULLMQ_ADD_PRIORITIZED_JOB_KEYS } from '../store/commands.js';
import type { PhaseDefinition } from '../workflow/definition.js';

/**
 * A phase iteration's job as BullMQ is asked to add it: name, data (the contract the agent pools
 * parse, ../queues/contracts.ts) and options, the priority left to the caller.
 * @param trace - the W3C trace context the worker's spans continue.
 */
export function phaseJobRequest(meta: RunMeta, def: PhaseDefinition, iteration: number, role: string, trace: Record<string, string>): { name: string; data: PhaseJobData; opts: JobsOptions & { jobId: string } } {
  const data = PhaseJobDataSchema.parse({
    run_id: meta.run_id,
    phase: def.name,
    iteration,
    role,
    timeout_ms: def.timeoutMs,
    max_attempts: def.retries + 1,
    cache_ttl_ms: def.cache ? meta.workflow.cacheTtlMs : 0,
    trace,
    ...(def.model !== undefined ? { model: def.model } : {}),
  });
  const opts = {
    jobId: phaseJobId(meta.run_id, def.name, iteration),
    sizeLimit: JOB_SIZE_LIMITS.phaseJob,
    attempts: def.retries + 1,
    backoff: { type: FLEET_BACKOFF, delay: def.retryDelayMs },
    // The run state, not a retained job, says whether a phase iteration is still wanted: a
    // completed job is gone at once (its outcome is already committed to the run).
    removeOnComplete: true,
    removeOnFail: { age: 7 * 24 * 3600, count: 50_000 },
  };
  return { name: def.name, data, opts };
}

/**
 * The arguments of BullMQ's `addPrioritizedJob-9` script for a job, built by BullMQ itself
 * (`Job#addJob` with a client that keeps the arguments instead of sending them), so the job is
 * stored exactly as `queue.add` stores it. `opts.priority` must be at least 1 (BullMQ adds a job
 * without a priority with another script).
 * @throws BullMQ's option validation errors (a job over its `sizeLimit`); Error when BullMQ did not
 *   build a prioritized add of 12 arguments (a BullMQ whose add changed shape).
 */
export function bullmqAddArguments(queue: Queue, name: string, data: PhaseJobData, opts: JobsOptions & { jobId: string }): Array<string | Buffer> {
  let built: { command: string; args: Array<string | Buffer> } | undefined;
  const keeper = {
    runCommand: (command: string, args: Array<string | Buffer>) => {
      built = { command, args };
      return Promise.resolve(opts.jobId);
    },
  };
  // addJob validates synchronously and hands the command to the client before its first await.
  void new Job(queue, name, data, opts, opts.jobId).addJob(keeper as never).catch(() => undefined);
  if (!built || !built.command.startsWith('addPrioritizedJob:') || built.args.length !== BULLMQ_ADD_PRIORITIZED_JOB_KEYS + 3) {
    throw new Error(`BullMQ built "${built?.command ?? 'nothing'}" with ${built?.args.length ?? 0} arguments for phase job ${opts.jobId}; the commit adds jobs with addPrioritizedJob (${BULLMQ_ADD_PRIORITIZED_JOB_KEYS} keys and 3 arguments)`);
  }
  return built.args;
}
