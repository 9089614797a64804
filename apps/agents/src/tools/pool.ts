/**
 * The tools pool: a BullMQ worker on the `agent-tools` queue that runs tool phases. For each job it
 * reads the run's context, renders every string of the phase's `parameters` with the run's templates,
 * validates them against the tool's schema, runs the tool under the phase timeout (an AbortSignal,
 * also aborted when the phase is cancelled), and commits the outcome to the run exactly as an agent
 * pool does: same fencing, retries, deadlines and `continue_on_error`.
 *
 * Spans: `process agent-tools` (consumer) with an `execute_tool <name>` child carrying
 * `gen_ai.operation.name = execute_tool` and `gen_ai.tool.name`.
 */
import {
  FleetAttributes,
  FleetError,
  GenAiAttributes,
  GenAiOperationNames,
  ManagerQueue,
  RunStore,
  TOOLS_ROLE,
  type RunDriver,
  agentQueueName,
  cancelChannel,
  createLogger,
  createRedis,
  createRepeatLimiter,
  repeatKey,
  observeQueues,
  redactRedisUrl,
  renderTemplate,
  startPoolHeartbeat,
  toFleetError,
  withSpan,
  type FleetLogger,
  type PhaseJobData,
  type PhaseJobResult,
  type TemplateContext,
} from '@agentfleet/core';
import { CommitFailure, attemptSignal, failAttempt, scheduledBackoff, withPhaseJob } from '../phase-job.js';
import { SpanKind } from '@opentelemetry/api';
import { Worker, type Job } from 'bullmq';
import { MAX_STALLED_COUNT, createWorkerDriver } from '../pool.js';
import { isStallLimitFailure, recoverStalledOut } from '../stall-limit.js';
import { createToolRegistry, type ToolRegistry } from './registry.js';
import { loadToolSettings, type ToolSettings } from './settings.js';
import type { FleetTool } from './tool.js';

export interface ToolPoolOptions {
  redisUrl: string;
  /** The fleet's key prefix (`FLEET_QUEUE_PREFIX`). */
  prefix: string;
  /** Tool jobs in flight in this process. @defaultValue 4 */
  concurrency?: number;
  /** Allowed hosts, artifacts directory, user modules. @defaultValue `loadToolSettings()` (the environment) */
  settings?: ToolSettings;
  /** Tools to add besides the built-ins and `settings.modules` (tests, embedding). */
  tools?: FleetTool[];
  /** BullMQ lock duration, ms. @defaultValue 30000 */
  lockDurationMs?: number;
  /** How often stalled jobs are looked for, ms. @defaultValue 30000 */
  stalledIntervalMs?: number;
  onError?: (err: Error) => void;
  logger?: FleetLogger;
  /** Extra time past `timeout × attempts + backoff` for the deadlines of phases this pool enqueues, ms. @defaultValue 30000 */
  deadlineGraceMs?: number | undefined;
}

export interface ToolPool {
  /** Names of the tools this pool runs. */
  readonly tools: string[];
  /** Stop taking jobs, let jobs in flight finish (up to `graceMs`), close connections. */
  close(graceMs?: number): Promise<void>;
}

/** Every string inside `value` rendered with the run's templates (objects and arrays walked). */
export function renderParameters(value: unknown, ctx: TemplateContext): unknown {
  if (typeof value === 'string') return renderTemplate(value, ctx);
  if (Array.isArray(value)) return value.map((v) => renderParameters(v, ctx));
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderParameters(v, ctx)]));
  return value;
}

/**
 * Start a tools pool in this process.
 *
 * @throws FleetError `INVALID_INPUT` when a user tool module cannot be loaded.
 * @example
 * const tools = await startToolPool({ redisUrl, prefix: '{fleet}' });
 * process.on('SIGTERM', () => void tools.close());
 */
export async function startToolPool(options: ToolPoolOptions): Promise<ToolPool> {
  const settings = options.settings ?? loadToolSettings();
  const registry = await createToolRegistry(settings.modules, options.tools ?? []);
  const log = options.logger ?? createLogger({ name: 'tools' });
  // The same error from every connection and command while Redis is down or full: one line per
  // distinct error every 10 s, with the count held back (`repeated`).
  const limitRepeats = createRepeatLimiter();
  const onError =
    options.onError ??
    ((err: Error) => {
      const verdict = limitRepeats(repeatKey(err));
      if (verdict.emit) log.error({ err, ...(verdict.suppressed > 0 ? { repeated: verdict.suppressed } : {}) }, err.message);
    });
  const redis = createRedis(options.redisUrl, { forWorker: true, name: 'fleet-tools' });
  const subscriber = createRedis(options.redisUrl, { forWorker: true, name: 'fleet-tools-sub' });
  redis.on('error', onError);
  subscriber.on('error', onError);
  const store = new RunStore(redis, options.prefix);
  const manager = new ManagerQueue(redis, options.prefix);
  const driver = createWorkerDriver(redis, options.prefix, store, manager, log, options.deadlineGraceMs);
  const queueName = agentQueueName(TOOLS_ROLE);
  const concurrency = options.concurrency ?? 4;
  const worker = new Worker<PhaseJobData, PhaseJobResult>(queueName, (job, _token, signal) => processToolJob(job, signal, { driver, manager, registry, settings, queueName, log }), {
    connection: redis,
    prefix: options.prefix,
    concurrency,
    lockDuration: options.lockDurationMs ?? 30_000,
    stalledInterval: options.stalledIntervalMs ?? 30_000,
    maxStalledCount: MAX_STALLED_COUNT,
    autorun: true,
    settings: {
      backoffStrategy: (attemptsMade, _type, err, job) => scheduledBackoff(attemptsMade, err, job),
    },
  });
  worker.on('error', onError);
  worker.on('failed', (job, err) => {
    if (!job || !isStallLimitFailure(err)) return;
    recoverStalledOut(job, { driver, manager, role: TOOLS_ROLE, log, maxStalledCount: MAX_STALLED_COUNT }).catch(onError);
  });
  await subscriber.subscribe(cancelChannel(options.prefix));
  subscriber.on('message', (_channel, jobId) => worker.cancelJob(jobId, 'cancelled by the manager'));
  await worker.waitUntilReady();
  const heartbeat = startPoolHeartbeat(redis, options.prefix, [TOOLS_ROLE], concurrency);
  const queueMetrics = observeQueues({ redis, prefix: options.prefix, roles: () => [TOOLS_ROLE] });
  log.info({ redis: redactRedisUrl(options.redisUrl), prefix: options.prefix, tools: registry.names(), allowed_hosts: settings.allowedHosts }, 'tools pool started');

  let closing: Promise<void> | undefined;
  return {
    tools: registry.names(),
    close(graceMs = 30_000) {
      closing ??= (async () => {
        const within = async (work: Promise<unknown>, ms: number) => {
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([work.catch(() => undefined), new Promise((r) => (timer = setTimeout(r, Math.max(0, ms))))]);
          clearTimeout(timer);
        };
        await within(worker.close(), graceMs);
        await within(Promise.all([manager.close(), driver.close(), heartbeat.stop(), queueMetrics.close()]), 1000);
        subscriber.disconnect();
        redis.disconnect();
      })();
      return closing;
    },
  };
}

interface ToolProcessContext {
  driver: RunDriver;
  manager: ManagerQueue;
  registry: ToolRegistry;
  settings: ToolSettings;
  queueName: string;
  log: FleetLogger;
}

/** Run one attempt of one tool phase iteration and report it. */
async function processToolJob(job: Job<PhaseJobData, PhaseJobResult>, bullSignal: AbortSignal | undefined, ctx: ToolProcessContext): Promise<PhaseJobResult> {
  const host = {
    driver: ctx.driver,
    manager: ctx.manager,
    queueName: ctx.queueName,
    role: TOOLS_ROLE,
    onCommitRetry: (err: unknown, waitMs: number) => ctx.log.warn({ job_id: job.id, wait_ms: waitMs, err: (err as Error).message }, 'commit failed on a Redis error; the outcome is kept and the commit retried'),
  };
  return withPhaseJob(job, host, async (phase) => {
    const { data, attempt, ref, meta, state, outputs } = phase;
      const def = meta.workflow.phases.find((p) => p.name === data.phase);
      const toolName = def?.tool ?? '(none)';
      const attemptSig = attemptSignal(data.timeout_ms, bullSignal);
      const signal = attemptSig.signal;
      try {
        if (!def || def.kind !== 'tool' || !def.tool) throw new FleetError('INVALID_WORKFLOW', `phase "${data.phase}" of run ${data.run_id} is not a tool phase, but it was queued for the tools pool`);
        const registered = ctx.registry.get(def.tool);
        if (!registered) {
          throw new FleetError('UNKNOWN_TOOL', `no tool "${def.tool}" in this tools pool; tools: ${ctx.registry.names().join(', ')}; register it with FLEET_TOOL_MODULES`);
        }
        const params = registered.validate(renderParameters(def.parameters ?? {}, { requirements: meta.requirements, variables: meta.variables, outputs, errors: state.errors }));
        const output = await withSpan(
          `${GenAiOperationNames.ExecuteTool} ${def.tool}`,
          {
            kind: SpanKind.INTERNAL,
            attributes: {
              [GenAiAttributes.OperationName]: GenAiOperationNames.ExecuteTool,
              [GenAiAttributes.ToolName]: def.tool,
              [FleetAttributes.RunId]: data.run_id,
              [FleetAttributes.PhaseName]: data.phase,
            },
          },
          async () => {
            const result: unknown = await registered.tool.handler(params, { signal, artifactsDir: ctx.settings.artifactsDir(data.run_id), runId: data.run_id, phase: data.phase, settings: ctx.settings });
            if (signal.aborted) throw signal.reason;
            return result;
          },
        );
        // The output travels as JSON: anything else (a Date, a Map) becomes what JSON makes of it.
        const json: unknown = JSON.parse(JSON.stringify(output ?? null));
        const reported = await phase.complete(json, { usage: { input_tokens: 0, output_tokens: 0 }, model: 'none' });
        ctx.log.info({ ...ref, attempt, tool: toolName, reported }, 'tool phase attempt completed');
        return { reported, attempt };
      } catch (err) {
        // The work succeeded and only its commit failed: no failed attempt, BullMQ retries the job.
        if (err instanceof CommitFailure) throw err;
        const error = signal.aborted && !(err instanceof FleetError) ? toFleetError(signal.reason, attemptSig.timedOut() ? 'PHASE_TIMEOUT' : 'PHASE_CANCELLED') : toFleetError(err, 'TOOL_FAILED');
        return failAttempt(job, phase, error, { input_tokens: 0, output_tokens: 0 }, (willRetry) =>
          // A cancelled attempt was asked for (Ctrl-C, fleet cancel): news, not a warning.
          ctx.log[error.code === 'PHASE_CANCELLED' ? 'info' : 'warn']({ ...ref, attempt, tool: toolName, will_retry: willRetry, error: error.toJSON() }, 'tool phase attempt failed'),
        );
      } finally {
        attemptSig.dispose();
      }
  });
}
