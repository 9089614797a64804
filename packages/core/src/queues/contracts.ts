/**
 * One contract per queue: its name, its job data schema and its result schema (STYLE.md habit 1).
 * Producers validate on add, consumers validate on take.
 *
 * Queues (all under the fleet's key prefix, e.g. `{fleet}`):
 * - `agent-<role>`: one per agent role; a job runs one phase iteration. Job id `<runId>.<phase>.<iteration>`.
 * - `manager`: what only the manager does for a run (submission, cancellation, external events, a
 *   child run's outcome, follow-ups of a worker's decision, repairs), consumed by the manager(s).
 *   Durable: a manager that was down sees the reports when it starts. Phase outcomes do not pass
 *   through it: the worker commits them to the run itself (`RunDriver`).
 */
import { z } from 'zod';
import { FLEET_ERROR_CODES, type FleetErrorCode } from '../errors.js';

export const MANAGER_QUEUE = 'manager';

/**
 * Byte bounds on job data (BullMQ `sizeLimit`, UTF-8 bytes of the JSON): an add over the bound throws
 * instead of filling Redis. Phase outputs over {@link MAX_INLINE_OUTPUT_BYTES} travel apart from the
 * report (staged in Redis, the report carries `output_ref`).
 */
export const JOB_SIZE_LIMITS = { phaseJob: 16 * 1024, managerReport: 128 * 1024 } as const;
/** Largest phase output sent inside a report, bytes of JSON. */
export const MAX_INLINE_OUTPUT_BYTES = 64 * 1024;

/** Name of the queue that serves an agent role. */
export function agentQueueName(role: string): string {
  return `agent-${role}`;
}

/**
 * The set of roles whose queues have had phase jobs added (`<prefix>:agent-queues`): every process
 * that enqueues adds a role the first time it uses its queue, so a manager can observe queues that no
 * pool serves yet.
 */
export function agentQueuesKey(prefix: string): string {
  return `${prefix}:agent-queues`;
}

/** Deterministic job id of a phase iteration, so a repeated enqueue never runs a phase twice. */
export function phaseJobId(runId: string, phase: string, iteration: number): string {
  return `${runId}.${phase}.${iteration}`;
}

const errorCodes = Object.keys(FLEET_ERROR_CODES) as [FleetErrorCode, ...FleetErrorCode[]];

export const SerializedErrorSchema = z.object({
  code: z.enum(errorCodes),
  message: z.string(),
  category: z.enum(['user', 'system', 'provider']),
  retryable: z.boolean(),
  details: z.record(z.string(), z.unknown()).optional(),
});

/** Tokens billed by an attempt (input excludes cached tokens) and their cost in USD. */
export const TokenUsageSchema = z.object({
  input_tokens: z.number().int().min(0),
  output_tokens: z.number().int().min(0),
  cache_read_input_tokens: z.number().int().min(0).optional(),
  cache_creation_input_tokens: z.number().int().min(0).optional(),
  cost_usd: z.number().min(0).optional(),
  thinking_tokens: z.number().int().min(0).optional(),
});

/** Data of a job on an `agent-<role>` queue. Durations in ms. */
export const PhaseJobDataSchema = z.object({
  run_id: z.string().min(1),
  phase: z.string().min(1),
  iteration: z.number().int().min(1),
  role: z.string().min(1),
  /** Per-attempt timeout, ms: the LLM call is aborted when it passes. */
  timeout_ms: z.number().int().positive(),
  /** Total attempts BullMQ makes (retries + 1). */
  max_attempts: z.number().int().min(1),
  /** Reuse cached agent results for this long, ms; 0 turns caching off. */
  cache_ttl_ms: z.number().int().min(0).default(0),
  /** W3C trace context (`traceparent`, `tracestate`) of the manager's phase span. */
  trace: z.record(z.string(), z.string()).default({}),
  /** The phase's `model:`: overrides the role's model for this phase's calls. */
  model: z.string().min(1).optional(),
});
export type PhaseJobData = z.infer<typeof PhaseJobDataSchema>;

/** What an agent job returns to BullMQ (the output itself travels to the manager queue). */
export const PhaseJobResultSchema = z.object({
  /** false when the manager refused the report (the phase had already ended). */
  reported: z.boolean(),
  attempt: z.number().int(),
});
export type PhaseJobResult = z.infer<typeof PhaseJobResultSchema>;

/** A step action as agents may return it in their output (`step_action`). */
export const StepActionSchema = z.object({
  type: z.enum(['continue', 'repeat', 'jump', 'wait', 'complete']),
  target: z.string().optional(),
  note: z.string().optional(),
  event: z.string().optional(),
  prompt: z.unknown().optional(),
});

const phaseRef = { run_id: z.string().min(1), phase: z.string().min(1), iteration: z.number().int().min(1) };

/** A scheduler action carried out by the manager on a worker's behalf (`run_followup`). */
const FollowUpActionSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('start_child_run'), phase: z.string().min(1), iteration: z.number().int().min(1), workflow: z.string().min(1) }),
  z.object({ type: z.literal('finish_run'), status: z.enum(['completed', 'failed', 'cancelled']) }),
  z.object({ type: z.literal('start_fallback'), workflow: z.string().min(1) }),
  z.object({ type: z.literal('cancel_phase'), phase: z.string().min(1), iteration: z.number().int().min(1) }),
]);

/** Data of a job on the `manager` queue: one thing that happened to a run. Times are epoch ms. */
export const ManagerJobDataSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('phase_completed'),
    ...phaseRef,
    attempt: z.number().int().min(1),
    at: z.number(),
    /** The role's validated output, when it is small enough to travel in the report. */
    output: z.unknown().optional(),
    /** Where a larger output was staged (a Redis key under the fleet prefix); read and deleted by the manager. */
    output_ref: z.string().min(1).optional(),
    usage: TokenUsageSchema,
    model: z.string(),
    /** A step action the agent asked for (its output's `step_action`). */
    action: StepActionSchema.optional(),
    cache_hit: z.boolean().optional(),
    /** The role that ran it (when chosen at run time). */
    agent: z.string().optional(),
    /** When the attempt started, epoch ms. */
    started_at: z.number().optional(),
  }),
  z.object({
    type: z.literal('phase_attempt_failed'),
    ...phaseRef,
    attempt: z.number().int().min(1),
    at: z.number(),
    error: SerializedErrorSchema,
    will_retry: z.boolean(),
    usage: TokenUsageSchema,
    started_at: z.number().optional(),
    agent: z.string().optional(),
  }),
  /**
   * The child run of a `workflow:` phase iteration finished (sent by the manager that finished it;
   * job id `<phaseJobId>.child`). `completed` carries the child's result as `output` (or `output_ref`,
   * staged like a phase's); `failed` and `cancelled` carry `error`. `usage` is the child's tokens,
   * `model` its last model (`none` or absent: it made no model call).
   */
  z.object({
    type: z.literal('child_run_finished'),
    ...phaseRef,
    child_run_id: z.string().min(1),
    status: z.enum(['completed', 'failed', 'cancelled']),
    at: z.number(),
    output: z.unknown().optional(),
    output_ref: z.string().min(1).optional(),
    error: SerializedErrorSchema.optional(),
    usage: TokenUsageSchema,
    model: z.string().optional(),
  }),
  /** A phase's deadline (`<prefix>:deadlines`) came due: checked, and applied if the phase is really overdue. */
  z.object({ type: z.literal('phase_deadline'), ...phaseRef, at: z.number() }),
  z.object({ type: z.literal('cancel_requested'), run_id: z.string().min(1), reason: z.string(), at: z.number() }),
  z.object({
    type: z.literal('external_event'),
    run_id: z.string().min(1),
    event: z.string().min(1).max(64),
    data: z.unknown(),
    /** Idempotency key: the run applies an event with a given id once. */
    id: z.string().min(1).max(64).optional(),
    at: z.number(),
  }),
  z.object({ type: z.literal('resume_requested'), run_id: z.string().min(1), at: z.number() }),
  /**
   * What a worker's committed decision leaves to the manager (see `RunDriver`): child runs, a finished
   * run's parent report, fallback and end action. Idempotent, so a redelivery does no harm.
   */
  z.object({ type: z.literal('run_followup'), run_id: z.string().min(1), at: z.number(), actions: z.array(FollowUpActionSchema).min(1) }),
]);
export type ManagerJobData = z.infer<typeof ManagerJobDataSchema>;
