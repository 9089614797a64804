/**
 * The manager: consumes the `manager` queue (run submissions, worker reports, deadlines,
 * cancellations), applies each to the run with the pure scheduler under the store's version fence,
 * and carries out the resulting actions: enqueue phase jobs (deterministic ids), cancel jobs,
 * set manager-side deadlines.
 *
 * Several managers may run against one Redis: the version fence makes every event apply once, and
 * deterministic job ids make every enqueue idempotent.
 */
import {
  MANAGER_QUEUE,
  ManagerJobDataSchema,
  ManagerQueue,
  PhaseJobDataSchema,
  RunStore,
  FleetAttributes,
  FLEET_BACKOFF,
  IN_FLIGHT_PHASE_STATUSES,
  agentQueueName,
  createRedis,
  decide,
  injectTraceContext,
  isTerminalRun,
  messagingAttributes,
  phaseJobId,
  createLogger,
  observeQueues,
  recordRunEvents,
  redactRedisUrl,
  withSpan,
  type Decision,
  type FleetLogger,
  type ManagerJobData,
  type PhaseDefinition,
  type RunMeta,
  type SchedulerEvent,
} from '@agentfleet/core';
import { SpanKind } from '@opentelemetry/api';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { RunSpans } from './spans.js';

/** Extra time, ms, a phase gets past `timeout × attempts + backoff` before the manager gives up on it. */
const DEADLINE_GRACE_MS = 30_000;

export interface ManagerOptions {
  redisUrl: string;
  /** The fleet's key prefix (`FLEET_QUEUE_PREFIX`). */
  prefix: string;
  /** Manager-queue jobs processed at once. @defaultValue 16 */
  concurrency?: number;
  /** Reported problems that belong to no run (connection errors). */
  onError?: (err: Error) => void;
  /**
   * BullMQ lock on a manager-queue job being processed, ms: after a manager dies, the reports it held
   * are taken over by another (or a restarted) manager once this lock expires. @defaultValue 30000
   */
  lockDurationMs?: number;
  /** How often manager-queue jobs held by a dead manager are looked for, ms. @defaultValue 30000 */
  stalledIntervalMs?: number;
  /** Structured JSON logs (pino). @defaultValue `createLogger({ name: 'manager' })`: JSON lines on stderr */
  logger?: FleetLogger;
  /** Where warnings go (e.g. Redis `maxmemory-policy` is not `noeviction`). @defaultValue `logger.warn` */
  warn?: (message: string) => void;
}

export interface Manager {
  /** Re-issue what a crash may have lost: submissions not yet started, phase jobs and deadlines of phases in flight. */
  reconcile(): Promise<void>;
  /** Stop taking manager jobs (finishing those in flight) and close connections. */
  close(): Promise<void>;
}

/**
 * Start a manager in this process.
 *
 * @example
 * const manager = await startManager({ redisUrl: 'redis://127.0.0.1:6379', prefix: '{fleet}' });
 * process.on('SIGTERM', () => void manager.close());
 */
export async function startManager(options: ManagerOptions): Promise<Manager> {
  const log = options.logger ?? createLogger({ name: 'manager' });
  const warn = options.warn ?? ((m: string) => log.warn(m));
  const onError = options.onError ?? ((err: Error) => warn(err.message));
  const redis = createRedis(options.redisUrl, { forWorker: true, name: 'fleet-manager' });
  redis.on('error', onError);
  await checkEvictionPolicy(redis, warn);

  const store = new RunStore(redis, options.prefix);
  const managerQueue = new ManagerQueue(redis, options.prefix);
  const agentQueues = new Map<string, Queue>();
  const spans = new RunSpans(store);
  const queueMetrics = observeQueues({ redis, prefix: options.prefix, roles: () => agentQueues.keys() });
  const queueFor = (role: string): Queue => {
    let q = agentQueues.get(role);
    if (!q) {
      q = new Queue(agentQueueName(role), { connection: redis, prefix: options.prefix });
      agentQueues.set(role, q);
    }
    return q;
  };

  async function enqueuePhase(meta: RunMeta, def: PhaseDefinition, iteration: number, at: number): Promise<void> {
    const runId = meta.run_id;
    const jobId = phaseJobId(runId, def.name, iteration);
    const runCtx = spans.runContext(runId, await store.getRunTrace(runId));
    const phaseCtx = await spans.startPhase(runId, runCtx, def.name, def.agent, iteration, at, def.dependsOn.map((d) => d.phase));
    const queue = queueFor(def.agent);
    await withSpan(
      `send ${queue.name}`,
      {
        kind: SpanKind.PRODUCER,
        parent: phaseCtx,
        attributes: {
          ...messagingAttributes({ operationType: 'send', operationName: 'add', destination: queue.name, messageId: jobId }),
          [FleetAttributes.RunId]: runId,
          [FleetAttributes.PhaseName]: def.name,
        },
      },
      async () => {
        const data = PhaseJobDataSchema.parse({
          run_id: runId,
          phase: def.name,
          iteration,
          role: def.agent,
          timeout_ms: def.timeoutMs,
          max_attempts: def.retries + 1,
          trace: injectTraceContext(),
        });
        await queue.add(def.name, data, {
          jobId,
          attempts: def.retries + 1,
          backoff: { type: FLEET_BACKOFF, delay: def.retryDelayMs },
          // Completed jobs are kept a day so a repeated enqueue of the same id stays a no-op.
          removeOnComplete: { age: 24 * 3600, count: 50_000 },
          removeOnFail: { age: 7 * 24 * 3600, count: 50_000 },
        });
        log.info({ run_id: runId, phase: def.name, iteration, role: def.agent, job_id: jobId }, 'phase enqueued');
      },
    );
    await setDeadline(runId, def, iteration);
  }

  async function setDeadline(runId: string, def: PhaseDefinition, iteration: number): Promise<void> {
    const attempts = def.retries + 1;
    const backoffMs = def.retryDelayMs * (2 ** attempts - 1);
    const delayMs = def.timeoutMs * attempts + backoffMs + DEADLINE_GRACE_MS;
    await managerQueue.report(
      { type: 'phase_deadline', run_id: runId, phase: def.name, iteration, at: Date.now() + delayMs },
      { jobId: `${phaseJobId(runId, def.name, iteration)}.deadline`, delayMs },
    );
  }

  async function cancelPhase(meta: RunMeta, phase: string, iteration: number): Promise<void> {
    const def = meta.workflow.phases.find((p) => p.name === phase);
    if (!def) return;
    const jobId = phaseJobId(meta.run_id, phase, iteration);
    const job = await queueFor(def.agent).getJob(jobId);
    if (job) {
      const state = await job.getState();
      if (state === 'waiting' || state === 'delayed' || state === 'prioritized') await job.remove().catch(() => undefined);
    }
    // A job in flight is aborted by the worker holding it (BullMQ cancelJob → AbortSignal).
    await redis.publish(`${options.prefix}:cancel`, jobId);
    await removeDeadline(meta.run_id, phase, iteration);
  }

  async function removeDeadline(runId: string, phase: string, iteration: number): Promise<void> {
    await managerQueue.queue.remove(`${phaseJobId(runId, phase, iteration)}.deadline`).catch(() => 0);
  }

  async function carryOut(meta: RunMeta, decision: Decision): Promise<void> {
    for (const action of decision.actions) {
      switch (action.type) {
        case 'enqueue_phase': {
          const def = meta.workflow.phases.find((p) => p.name === action.phase);
          if (def) await enqueuePhase(meta, def, action.iteration, Date.now());
          break;
        }
        case 'cancel_phase':
          await cancelPhase(meta, action.phase, action.iteration);
          break;
        case 'finish_run':
          break;
      }
    }
    for (const e of decision.events) {
      if (e.type === 'phase_completed' || e.type === 'phase_failed') {
        const iteration = decision.state.phases[e.phase]?.iteration ?? 0;
        await removeDeadline(meta.run_id, e.phase, iteration);
      }
    }
  }

  /**
   * Make sure every phase in flight has its job and deadline. Adds are idempotent (deterministic ids),
   * so this is safe to repeat; it repairs an apply whose follow-up enqueue was lost to a crash.
   */
  async function ensureInFlight(runId: string): Promise<void> {
    const { meta, state } = await store.getRun(runId);
    if (state.status === 'created') {
      await managerQueue.report({ type: 'run_submitted', run_id: runId, at: meta.created_at }, { jobId: `${runId}.submit` });
      return;
    }
    if (isTerminalRun(state.status)) return;
    for (const def of meta.workflow.phases) {
      const p = state.phases[def.name];
      if (!p || !IN_FLIGHT_PHASE_STATUSES.includes(p.status)) continue;
      const jobId = phaseJobId(runId, def.name, p.iteration);
      const existing = await queueFor(def.agent).getJob(jobId);
      if (!existing) await enqueuePhase(meta, def, p.iteration, Date.now());
    }
  }

  async function handle(job: Job<ManagerJobData>): Promise<void> {
    const parsed = ManagerJobDataSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`manager job ${job.id} has invalid data: ${parsed.error.message}`);
    const data = parsed.data;
    const event = toSchedulerEvent(data);
    const output = data.type === 'phase_completed' ? { phase: data.phase, value: data.output } : undefined;
    const { decision, meta } = await store.apply(data.run_id, (m, state) => decide(m.workflow, state, event), output);
    if (!decision.accepted) {
      // A duplicate or stale report, or a replay after a crash between apply and enqueue.
      await ensureInFlight(data.run_id);
      return;
    }
    if (decision.events.some((e) => e.type === 'run_started')) {
      await store.setRunTrace(meta.run_id, spans.startRun(meta, event.at));
    }
    await carryOut(meta, decision);
    spans.onEvents(meta.run_id, decision.events);
    recordRunEvents(meta.workflow, decision.state, decision.events);
  }

  const worker = new Worker<ManagerJobData>(MANAGER_QUEUE, handle, {
    connection: redis,
    prefix: options.prefix,
    concurrency: options.concurrency ?? 16,
    lockDuration: options.lockDurationMs ?? 30_000,
    stalledInterval: options.stalledIntervalMs ?? 30_000,
    autorun: true,
  });
  worker.on('error', onError);
  worker.on('failed', (job, err) => {
    if (job && job.attemptsMade >= (job.opts.attempts ?? 1)) warn(`report ${job.id} (${job.name}) failed for good: ${err.message}`);
  });
  await worker.waitUntilReady();
  log.info({ redis: redactRedisUrl(options.redisUrl), prefix: options.prefix, concurrency: options.concurrency ?? 16 }, 'manager started');

  const manager: Manager = {
    async reconcile() {
      for (const runId of await store.activeRunIds()) {
        await ensureInFlight(runId).catch((err: unknown) => warn(`reconcile ${runId}: ${(err as Error).message}`));
      }
    },
    async close() {
      await worker.close();
      await queueMetrics.close();
      await Promise.all([...agentQueues.values()].map((q) => q.close()));
      await managerQueue.close();
      redis.disconnect();
    },
  };
  await manager.reconcile();
  return manager;
}

function toSchedulerEvent(data: ManagerJobData): SchedulerEvent {
  switch (data.type) {
    case 'run_submitted':
      return { type: 'run_started', at: data.at };
    case 'phase_started':
      return { type: 'phase_started', at: data.at, phase: data.phase, iteration: data.iteration, attempt: data.attempt };
    case 'phase_completed':
      return { type: 'phase_completed', at: data.at, phase: data.phase, iteration: data.iteration, attempt: data.attempt, usage: data.usage, model: data.model };
    case 'phase_attempt_failed':
      return {
        type: 'phase_attempt_failed',
        at: data.at,
        phase: data.phase,
        iteration: data.iteration,
        attempt: data.attempt,
        error: data.error,
        willRetry: data.will_retry,
        usage: data.usage,
      };
    case 'phase_deadline':
      return { type: 'phase_deadline', at: data.at, phase: data.phase, iteration: data.iteration };
    case 'cancel_requested':
      return { type: 'cancel_requested', at: data.at, reason: data.reason };
  }
}

/** Warn when Redis may evict keys: BullMQ and the run store need `maxmemory-policy noeviction`. */
async function checkEvictionPolicy(redis: Redis, warn: (m: string) => void): Promise<void> {
  try {
    const reply = (await redis.config('GET', 'maxmemory-policy'));
    const policy = reply[1];
    if (policy && policy !== 'noeviction') {
      warn(`Redis maxmemory-policy is "${policy}"; set it to "noeviction" (redis-server --maxmemory-policy noeviction), or runs and jobs may be evicted`);
    }
  } catch {
    // CONFIG may be disabled (managed Redis); nothing to check then.
  }
}
