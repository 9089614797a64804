/**
 * What every phase job goes through before its work, in the agent pools and the tools pool alike:
 * validate the job data, take the logical attempt number, open the consumer span (a child of the
 * manager's `send` span through the job's trace context), make sure the run still wants this
 * iteration, and record the attempt's start.
 */
import {
  FleetAttributes,
  IN_FLIGHT_PHASE_STATUSES,
  PhaseJobDataSchema,
  decide,
  extractTraceContext,
  isTerminalRun,
  messagingAttributes,
  needsOutputs,
  recordJobStart,
  withSpan,
  type ManagerQueue,
  type PhaseJobData,
  type PhaseJobResult,
  type RunMeta,
  type RunState,
  type RunStore,
  type SchedulerEvent,
  type TokenUsage,
  type FleetError,
} from '@agentfleet/core';
import { SpanKind } from '@opentelemetry/api';
import { UnrecoverableError, type Job } from 'bullmq';

/** What the work of a phase job is given. */
export interface PhaseJobContext {
  data: PhaseJobData;
  /** Logical attempt number: 1 on the first try (BullMQ's `attemptsMade` + 1). */
  attempt: number;
  ref: { run_id: string; phase: string; iteration: number };
  meta: RunMeta;
  state: RunState;
  /** When the worker took the job, epoch ms: the phase's time includes reading its inputs. */
  started: number;
  /** Resolves once the start is recorded; await it before reporting the outcome. */
  startRecorded: Promise<void>;
}

export interface PhaseJobHost {
  store: RunStore;
  manager: ManagerQueue;
  queueName: string;
  /** The role serving the queue (`tools` for the tools pool). */
  role: string;
}

/**
 * Run `work` for one phase job inside its consumer span. Returns `{reported: false}` without calling
 * `work` when the run or this iteration ended while the job waited (cancelled, failed, deadline).
 *
 * @throws UnrecoverableError when the job data does not match {@link PhaseJobDataSchema}.
 */
export async function withPhaseJob(
  job: Job<PhaseJobData, PhaseJobResult>,
  host: PhaseJobHost,
  work: (ctx: PhaseJobContext) => Promise<PhaseJobResult>,
): Promise<PhaseJobResult> {
  const parsed = PhaseJobDataSchema.safeParse(job.data);
  if (!parsed.success) throw new UnrecoverableError(`job ${job.id} has invalid data: ${parsed.error.message}`);
  const data = parsed.data;
  const attempt = job.attemptsMade + 1;
  const ref = { run_id: data.run_id, phase: data.phase, iteration: data.iteration };
  recordJobStart(host.role, job);
  return withSpan(
    `process ${host.queueName}`,
    {
      kind: SpanKind.CONSUMER,
      parent: extractTraceContext(data.trace),
      attributes: {
        ...messagingAttributes({ operationType: 'process', operationName: 'process', destination: host.queueName, messageId: job.id }),
        [FleetAttributes.RunId]: data.run_id,
        [FleetAttributes.PhaseName]: data.phase,
        [FleetAttributes.PhaseIteration]: data.iteration,
        [FleetAttributes.PhaseAttempt]: attempt,
        [FleetAttributes.AgentRole]: host.role,
      },
    },
    async () => {
      const started = Date.now();
      const { meta, state } = await host.store.getRun(data.run_id);
      const phaseState = state.phases[data.phase];
      if (isTerminalRun(state.status) || !phaseState || phaseState.iteration !== data.iteration || !IN_FLIGHT_PHASE_STATUSES.includes(phaseState.status)) {
        return { reported: false, attempt };
      }
      // Off the critical path: the outcome report carries `started_at` too, so the start is recorded even
      // if this write comes later. A job taken again whose attempt already shows as running (a rate-limit
      // deferral, a stalled re-take) records nothing new.
      const alreadyStarted = phaseState.status === 'running' && phaseState.attempts === attempt;
      const startRecorded = alreadyStarted
        ? Promise.resolve()
        : recordStart(host, data.run_id, { type: 'phase_started', at: started, phase: data.phase, iteration: data.iteration, attempt, agent: host.role });
      startRecorded.catch(() => undefined);
      return work({ data, attempt, ref, meta, state, started, startRecorded: startRecorded.catch(() => undefined) });
    },
  );
}

/**
 * Record an attempt's start in the run: applied here, fenced like any other write, instead of a
 * round trip through the manager queue, because a start never leads to an action (nothing is
 * enqueued or finished by it). Should a decision ever carry actions, the start goes to the manager.
 */
async function recordStart(host: PhaseJobHost, runId: string, event: Extract<SchedulerEvent, { type: 'phase_started' }>): Promise<void> {
  const { decision } = await host.store.apply(
    runId,
    (m, state, outputs) => {
      const d = decide(m.workflow, state, event, { requirements: m.requirements, variables: m.variables, outputs, errors: state.errors });
      return d.actions.length > 0 ? { ...d, accepted: false } : d;
    },
    { loadOutputs: (m) => needsOutputs(m.workflow) },
  );
  if (!decision.accepted && decision.actions.length > 0) {
    await host.manager.report({ type: 'phase_started', run_id: runId, phase: event.phase, iteration: event.iteration, attempt: event.attempt, at: event.at, agent: event.agent });
  }
}

/**
 * Report a failed attempt and end the job the way BullMQ needs: a retryable error with attempts left
 * is rethrown (BullMQ backs off and retries), anything else ends the job for good.
 *
 * @param usage - tokens the provider billed for the failed attempt (counted once).
 * @param log - told whether the attempt will be retried, before the job ends.
 */
export async function failAttempt(
  host: PhaseJobHost,
  job: Job<PhaseJobData, PhaseJobResult>,
  ctx: PhaseJobContext,
  error: FleetError,
  usage: TokenUsage,
  log: (willRetry: boolean) => void,
): Promise<never> {
  const willRetry = error.retryable && ctx.attempt < (job.opts.attempts ?? ctx.data.max_attempts);
  await ctx.startRecorded;
  await host.manager.report({
    type: 'phase_attempt_failed',
    ...ctx.ref,
    attempt: ctx.attempt,
    at: Date.now(),
    error: error.toJSON(),
    will_retry: willRetry,
    usage,
    started_at: ctx.started,
    agent: host.role,
  });
  log(willRetry);
  if (!willRetry) throw new UnrecoverableError(`${error.code}: ${error.message}`);
  throw error;
}
