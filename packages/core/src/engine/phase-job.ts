/**
 * A phase iteration's BullMQ job: what is asked of BullMQ (name, data, options), and the arguments
 * of BullMQ's add script for it, for the commit that adds it itself (../store/commands.ts,
 * `apply-decision-7`).
 */
import type { Queue } from 'bullmq';
import { FLEET_BACKOFF } from '../queues/backoff.js';
import { JOB_SIZE_LIMITS, phaseJobId, type PhaseJobData } from '../queues/contracts.js';
import type { RunMeta } from '../result.js';
import type { PhaseDefinition } from '../workflow/definition.js';

/**
 * A phase iteration's job as BullMQ is asked to add it: name, data (the contract the agent pools
 * parse, ../queues/contracts.ts) and options, the priority left to the caller. The data is built from
 * the compiled workflow (whose schema checked every value) and typed as the contract, so it is not
 * parsed here: the agent pool parses it when it takes the job, which is where a malformed job
 * (written by hand, or by another version) is refused.
 * @param trace - the W3C trace context the worker's spans continue.
 */
export function phaseJobRequest(meta: RunMeta, def: PhaseDefinition, iteration: number, role: string, trace: Record<string, string>): { name: string; data: PhaseJobData; opts: PhaseJobOptions } {
  const data: PhaseJobData = {
    run_id: meta.run_id,
    phase: def.name,
    iteration,
    role,
    timeout_ms: def.timeoutMs,
    max_attempts: def.retries + 1,
    cache_ttl_ms: def.cache ? meta.workflow.cacheTtlMs : 0,
    trace,
    ...(def.model !== undefined ? { model: def.model } : {}),
  };
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

/** BullMQ's `addPrioritizedJob-9` KEYS, in order: the queue's keys of these types. */
const ADD_PRIORITIZED_JOB_KEYS = ['marker', 'meta', 'id', 'prioritized', 'delayed', 'completed', 'active', 'events', 'pc'] as const;

/**
 * The options of a phase job as BullMQ stores them, but for the priority (the commit computes it:
 * the fair priority). None of their names is one BullMQ shortens (`optsEncodeMap`: deduplication,
 * keepLogs, …), so their JSON is what `Job#addJob` packs.
 */
export interface PhaseJobOptions {
  jobId: string;
  sizeLimit: number;
  attempts: number;
  backoff: { type: string; delay: number };
  removeOnComplete: boolean;
  removeOnFail: { age: number; count: number };
}

/**
 * The arguments the commit (`apply-decision-7`) needs to add a phase job with BullMQ's own
 * `addPrioritizedJob-9` script: its 9 KEYS (BullMQ's key names of the queue), then the job's name,
 * its timestamp (epoch ms), its data JSON and its options JSON. The script sets the options'
 * priority and packs BullMQ's arguments and options (msgpack) itself, so every argument of the
 * commit is a string: a Buffer among them puts ioredis's whole command in buffer mode, whose
 * encoding cost five times as much CPU (`Command#toWritable`, measured alone on a commit's
 * arguments: 30 against 6 µs). The job is stored as `queue.add` stores it (commands.test.ts
 * compares the two hashes).
 * @param now - the job's timestamp, epoch ms (wall clock, as `queue.add` takes it).
 * @throws Error, with BullMQ's own messages, where `Job#addJob` refuses the job: the data JSON is over
 *   `opts.sizeLimit` bytes, or the job id is an integer or has a `:` (a run id with one).
 */
export function phaseJobAddArguments(queue: Queue, name: string, data: PhaseJobData, opts: PhaseJobOptions, now: number): string[] {
  const json = JSON.stringify(data);
  if (Buffer.byteLength(json) > opts.sizeLimit) throw new Error(`The size of job ${name} exceeds the limit ${opts.sizeLimit} bytes`);
  // BullMQ's job id rules (Job#validateOptions): an id of three `:`-separated parts is its old repeatable form.
  if (`${parseInt(opts.jobId, 10)}` === opts.jobId) throw new Error('Custom Id cannot be integers');
  if (opts.jobId.includes(':') && opts.jobId.split(':').length !== 3) throw new Error('Custom Id cannot contain :');
  // The queue's keys as BullMQ computed them once (`queue.keys`), not built again for every job.
  const keys = queue.keys;
  return [...ADD_PRIORITIZED_JOB_KEYS.map((type) => keys[type] ?? queue.toKey(type)), name, String(now), json, JSON.stringify(opts)];
}
