/**
 * The agent worker host: one BullMQ worker per role, each taking phase jobs from its role's queue,
 * running the role against the LLM, and committing the outcome to the run (`RunDriver`: the output,
 * the next decision and the next phase jobs in one fenced write, then the enqueues).
 *
 * Delivery is at least once (BullMQ); exactly-once *results* come from the run's version fence: the
 * first accepted completion of a phase iteration wins and later ones (a zombie attempt, a stalled
 * job taken twice) are refused.
 */
import {
  FleetAttributes,
  FleetError,
  GenAiAttributes,
  genAiProviderName,
  GenAiOperationNames,
  ManagerQueue,
  RunDriver,
  RunStore,
  agentQueueName,
  cancelChannel,
  followUpThroughManager,
  createRedis,
  toFleetError,
  withSpan,
  createLogger,
  RedisRateLimiter,
  tighterBudget,
  type ModelPrice,
  type RateLimits,
  observeQueues,
  redactRedisUrl,
  startPoolHeartbeat,
  type FleetLogger,
  type LlmClient,
  type PhaseJobData,
  type PhaseJobResult,
} from '@agentfleet/core';
import { SpanKind } from '@opentelemetry/api';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { AgentRole } from './roles/role.js';
import { CommitFailure, attemptSignal, failAttempt, scheduledBackoff, withPhaseJob } from './phase-job.js';
import { buildRoleInput, splitOutput } from './role-input.js';
import { billedUsage, redisResultCache, runRole, type CallGate } from './run-role.js';
import { budgetGate, rateLimitGate, RateLimitDeferral } from './gates.js';
import { isStallLimitFailure, recoverStalledOut } from './stall-limit.js';

/**
 * Times a phase job may be put back after its holder died before BullMQ fails it; the failure is then
 * taken up as a lost attempt of the phase (see `recoverStalledOut`).
 */
export const MAX_STALLED_COUNT = 2;

export interface AgentPoolOptions {
  redisUrl: string;
  /** The fleet's key prefix (`FLEET_QUEUE_PREFIX`). */
  prefix: string;
  /** Roles this pool serves; one BullMQ worker each. */
  roles: AgentRole[];
  /** Jobs in flight per role in this process. @defaultValue 4 */
  concurrency?: number;
  llm: LlmClient;
  /** Output token cap per LLM call. @defaultValue 8192 */
  maxTokens?: number;
  /** BullMQ lock duration, ms: a worker silent for this long is considered stalled. @defaultValue 30000 */
  lockDurationMs?: number;
  /** How often stalled jobs are looked for, ms. @defaultValue 30000 */
  stalledIntervalMs?: number;
  /** Called with problems that do not belong to any job (connection errors). @defaultValue `logger.error` */
  onError?: (err: Error) => void;
  /** Structured JSON logs (pino). @defaultValue `createLogger({ name: 'agents' })`: JSON lines on stderr */
  logger?: FleetLogger;
  /** The client for a role (per-role provider and model, see `createRoleLlmClients`). @defaultValue `llm` for every role */
  llmFor?: ((role: string) => LlmClient) | undefined;
  /**
   * Fleet-wide limits per provider and model (requests, input and output tokens per window), kept in
   * Redis and shared with every pool on the prefix. @defaultValue none (no limiter)
   */
  rateLimits?: RateLimits | undefined;
  /** Price table for `cost_usd` and budgets. @defaultValue MODEL_PRICES */
  prices?: Readonly<Record<string, ModelPrice>> | undefined;
  /** Extra time past `timeout × attempts + backoff` for the deadlines of phases this pool enqueues, ms. @defaultValue 30000 */
  deadlineGraceMs?: number | undefined;
}

export interface AgentPool {
  readonly roles: string[];
  /**
   * Stop taking jobs, let jobs in flight finish (up to `graceMs`, ms), then close connections. Resolves
   * within about `graceMs` even when Redis is unreachable; jobs still running then are abandoned (their
   * locks expire and another worker takes them over), so the caller should exit the process.
   */
  close(graceMs?: number): Promise<void>;
}

/**
 * Start the worker pools for `options.roles` in this process.
 *
 * @example
 * const pool = await startAgentPool({ redisUrl, prefix: '{fleet}', roles: [planner, coder], llm });
 * process.on('SIGTERM', () => void pool.close());
 */
export async function startAgentPool(options: AgentPoolOptions): Promise<AgentPool> {
  const redis = createRedis(options.redisUrl, { forWorker: true, name: 'fleet-agents' });
  const subscriber = createRedis(options.redisUrl, { forWorker: true, name: 'fleet-agents-sub' });
  // BullMQ's own commands (take, finish, extend locks) on a socket apart from the run store's, so a
  // phase's reads and commit never queue behind another worker's fetch.
  const bull = createRedis(options.redisUrl, { forWorker: true, name: 'fleet-agents-bull' });
  const log = options.logger ?? createLogger({ name: 'agents' });
  const onError = options.onError ?? ((err: Error) => log.error({ err }, err.message));
  redis.on('error', onError);
  subscriber.on('error', onError);
  bull.on('error', onError);
  const store = new RunStore(redis, options.prefix);
  const manager = new ManagerQueue(redis, options.prefix);
  const driver = createWorkerDriver(redis, options.prefix, store, manager, log, options.deadlineGraceMs);
  const workers: Worker[] = [];
  const limits = options.rateLimits;
  const limiter = limits && (limits.requests || limits.inputTokens || limits.outputTokens) ? new RedisRateLimiter(redis, options.prefix, limits) : undefined;

  for (const role of options.roles) {
    const queueName = agentQueueName(role.name);
    const worker: Worker<PhaseJobData, PhaseJobResult> = new Worker<PhaseJobData, PhaseJobResult>(
      queueName,
      (job, _token, signal): Promise<PhaseJobResult> =>
        processPhaseJob(job, signal, {
          role,
          driver,
          manager,
          llm: options.llmFor?.(role.name) ?? options.llm,
          roleModel: options.llmFor ? undefined : role.model,
          maxTokens: options.maxTokens ?? 8192,
          queueName,
          log,
          limiter,
          prices: options.prices,
          rateLimitQueue: (ms: number): Promise<void> => worker.rateLimit(ms),
        }),
      {
        connection: bull,
        prefix: options.prefix,
        concurrency: options.concurrency ?? 4,
        lockDuration: options.lockDurationMs ?? 30_000,
        stalledInterval: options.stalledIntervalMs ?? 30_000,
        maxStalledCount: MAX_STALLED_COUNT,
        autorun: true,
        // BullMQ honours a manual rate limit (RateLimitDeferral below) only with a limiter set; this
        // one never limits by itself.
        ...(limiter ? { limiter: { max: 1_000_000, duration: 1000 } } : {}),
        settings: {
          backoffStrategy: (attemptsMade, _type, err, job) => scheduledBackoff(attemptsMade, err, job),
        },
      },
    );
    worker.on('error', onError);
    worker.on('failed', (job, err) => {
      if (!job || !isStallLimitFailure(err)) return;
      recoverStalledOut(job, { driver, manager, role: role.name, log, maxStalledCount: MAX_STALLED_COUNT }).catch(onError);
    });
    workers.push(worker);
  }

  await subscriber.subscribe(cancelChannel(options.prefix));
  subscriber.on('message', (_channel, jobId) => {
    for (const w of workers) w.cancelJob(jobId, 'cancelled by the manager');
  });
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  const heartbeat = startPoolHeartbeat(redis, options.prefix, options.roles.map((r) => r.name), options.concurrency ?? 4);
  const queueMetrics = observeQueues({ redis, prefix: options.prefix, roles: () => options.roles.map((r) => r.name) });
  log.info({ redis: redactRedisUrl(options.redisUrl), prefix: options.prefix, roles: options.roles.map((r) => r.name), provider: options.llm.provider, model: options.llm.model }, 'agent pool started');

  let closing: Promise<void> | undefined;
  return {
    roles: options.roles.map((r) => r.name),
    close(graceMs = 30_000) {
      closing ??= (async () => {
        // Bounded by graceMs even when Redis is gone (closing a worker or queue then never ends).
        // BullMQ memoizes the first close(), so a later close(true) cannot cut a graceful one short:
        // jobs still in flight at the deadline are abandoned instead, exactly as after a crash: their
        // locks expire and another worker takes them over; a late report from them is refused by fencing.
        const deadline = Date.now() + graceMs;
        const within = async (work: Promise<unknown>, ms: number): Promise<boolean> => {
          let timer: NodeJS.Timeout | undefined;
          const timeout = new Promise<false>((resolve) => {
            timer = setTimeout(() => resolve(false), Math.max(0, ms));
          });
          const done = await Promise.race([work.then(() => true, () => true), timeout]);
          clearTimeout(timer);
          return done;
        };
        if (await within(Promise.all(workers.map((w) => w.close())), graceMs)) {
          await within(Promise.all([manager.close(), driver.close()]), Math.max(1000, deadline - Date.now()));
        }
        await within(Promise.all([heartbeat.stop(), queueMetrics.close()]), 1000);
        subscriber.disconnect();
        bull.disconnect();
        redis.disconnect();
      })();
      return closing;
    },
  };
}

/** The driver a pool commits outcomes with; what only the manager does goes to the manager queue. */
export function createWorkerDriver(redis: Redis, prefix: string, store: RunStore, manager: ManagerQueue, log: FleetLogger, deadlineGraceMs: number | undefined): RunDriver {
  return new RunDriver({ redis, prefix, store, log, deadlineGraceMs, rememberRuns: true, followUp: followUpThroughManager(manager) });
}

interface ProcessContext {
  role: AgentRole;
  driver: RunDriver;
  manager: ManagerQueue;
  llm: LlmClient;
  /** The role's model to ask for per call, when `llm` is not already the role's own client. */
  roleModel: string | undefined;
  maxTokens: number;
  queueName: string;
  log: FleetLogger;
  limiter: RedisRateLimiter | undefined;
  prices: Readonly<Record<string, ModelPrice>> | undefined;
  /** Hold the role's queue for `ms` (BullMQ's rate limit: no worker takes its jobs meanwhile). */
  rateLimitQueue: (ms: number) => Promise<void>;
}

/** Run one attempt of one phase iteration. */
async function processPhaseJob(job: Job<PhaseJobData, PhaseJobResult>, bullSignal: AbortSignal | undefined, ctx: ProcessContext): Promise<PhaseJobResult> {
  const host = {
    driver: ctx.driver,
    manager: ctx.manager,
    queueName: ctx.queueName,
    role: ctx.role.name,
    onCommitRetry: (err: unknown, waitMs: number) => ctx.log.warn({ job_id: job.id, wait_ms: waitMs, err: (err as Error).message }, 'commit failed on a Redis error; the outcome is kept and the commit retried'),
  };
  const store = ctx.driver.store;
  return withPhaseJob(job, host, async (phase) => {
    const { data, attempt, ref, meta, state, outputs } = phase;
      const phaseDef = meta.workflow.phases.find((p) => p.name === data.phase);
      const phaseState = state.phases[data.phase];
      if (!phaseDef || !phaseState) throw new UnrecoverableError(`run ${data.run_id} has no phase "${data.phase}"`);
      const input = buildRoleInput(meta, state, phaseDef, outputs);

      const attemptSig = attemptSignal(data.timeout_ms, bullSignal);
      const signal = attemptSig.signal;
      try {
        const result = await withSpan(
          `${GenAiOperationNames.InvokeAgent} ${ctx.role.name}`,
          {
            kind: SpanKind.INTERNAL,
            attributes: {
              [GenAiAttributes.OperationName]: GenAiOperationNames.InvokeAgent,
              [GenAiAttributes.AgentName]: ctx.role.name,
              [GenAiAttributes.ProviderName]: genAiProviderName(ctx.llm.provider),
              [GenAiAttributes.RequestModel]: ctx.llm.model,
              [FleetAttributes.Offline]: ctx.llm.provider === 'offline',
            },
          },
          async (span) => {
            const cache = data.cache_ttl_ms > 0 ? redisResultCache(store.redis, store.prefix, data.cache_ttl_ms) : undefined;
            const gates: CallGate[] = [];
            const budget = budgetGate(
              [
                { name: 'the run', budget: tighterBudget(meta.workflow.budget, meta.budget), spent: state.usage, where: "the workflow's budget or the request's (fleet run --max-cost-usd / --max-tokens-budget, POST /api/runs budget)" },
                { name: `phase "${data.phase}"`, budget: phaseDef.budget, spent: phaseState.usage, where: `phases[${data.phase}].budget` },
              ],
              ctx.prices,
            );
            if (budget) gates.push(budget);
            if (ctx.limiter) gates.push(rateLimitGate(ctx.limiter));
            const r = await runRole(ctx.role, ctx.llm, input, {
              signal,
              maxTokens: ctx.maxTokens,
              cache,
              gates,
              prices: ctx.prices,
              stream: ctx.role.stream === true,
              // The phase's `model:` first; else the role's own model, unless the role's client (llmFor) already is on it.
              model: data.model ?? ctx.roleModel,
            });
            span.setAttribute(FleetAttributes.CacheHit, r.cacheHit);
            span.setAttributes({
              [GenAiAttributes.ResponseModel]: r.model,
              [GenAiAttributes.UsageInputTokens]: r.usage.input_tokens + (r.usage.cache_read_input_tokens ?? 0) + (r.usage.cache_creation_input_tokens ?? 0),
              [GenAiAttributes.UsageOutputTokens]: r.usage.output_tokens,
            });
            return r;
          },
        );
        const { output, action } = splitOutput(ctx.role, result.output, input);
        const reported = await phase.complete(output, { usage: result.usage, model: result.model, action, cacheHit: result.cacheHit });
        ctx.log.info({ ...ref, attempt, model: result.model, usage: result.usage, reported }, 'phase attempt completed');
        return { reported, attempt };
      } catch (err) {
        // The work succeeded and only its commit failed: no failed attempt, BullMQ retries the job.
        if (err instanceof CommitFailure) throw err;
        if (err instanceof RateLimitDeferral) {
          // Over the fleet-wide limit before any call: hold the queue and put the job back, no attempt
          // burnt. The hold is short (BullMQ keeps the last hold set on the queue, so a long one would
          // also stop jobs that fit sooner); the job asks the limiter again when it comes back.
          const windowMs = ctx.limiter?.windowMs ?? 60_000;
          await ctx.rateLimitQueue(Math.min(err.waitMs, Math.max(50, Math.min(1000, Math.round(windowMs / 20)))));
          // One `rate_limited` event per job and window, not one per re-check.
          const fresh = await store.redis.set(`${store.prefix}:ratelimit:event:${job.id ?? ''}`, '1', 'PX', windowMs, 'NX').catch(() => null);
          if (fresh) {
            await store
              .appendEvent(data.run_id, { type: 'rate_limited', at: Date.now(), phase: data.phase, iteration: data.iteration, wait_ms: err.waitMs, limit: err.limit, model: err.model })
              .catch(() => undefined);
          }
          ctx.log.info({ ...ref, wait_ms: err.waitMs, limit: err.limit, model: err.model }, 'rate limited: job waits');
          throw Worker.RateLimitError();
        }
        // An aborted attempt: the attempt signal tells a timeout from a cancellation (by the manager).
        const error = signal.aborted && !(err instanceof FleetError) ? toFleetError(signal.reason, attemptSig.timedOut() ? 'PHASE_TIMEOUT' : 'PHASE_CANCELLED') : toFleetError(err);
        return failAttempt(job, phase, error, billedUsage(err), (willRetry) =>
          // A cancelled attempt was asked for (Ctrl-C, fleet cancel): news, not a warning.
          ctx.log[error.code === 'PHASE_CANCELLED' ? 'info' : 'warn']({ ...ref, attempt, will_retry: willRetry, error: error.toJSON() }, 'phase attempt failed'),
        );
      } finally {
        attemptSig.dispose();
      }
  });
}
