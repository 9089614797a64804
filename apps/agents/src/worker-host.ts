/**
 * The one worker host of phase jobs, which the agent pools and the tools pool configure: its Redis
 * connections, the run store and the {@link RunDriver} outcomes are committed with, one BullMQ
 * worker per served role with the same lock, stall and backoff settings, the recovery of jobs that
 * ran out of their stall limit, the cancel subscriber, the pool heartbeat (`fleet workers`), the
 * queue metrics, and a graceful close bounded by a grace period on an injectable {@link Clock}.
 *
 * What a pool adds is only its processor: what one attempt of one of its phase jobs does, inside
 * {@link withPhaseJob} with the {@link PhaseJobHost} the host hands it.
 */
import {
  agentQueueName,
  createLogger,
  createRedis,
  createRepeatLimiter,
  observeQueues,
  redactRedisUrl,
  repeatKey,
  settledWithin,
  startPoolHeartbeat,
  systemClock,
  type Clock,
  type FleetLogger,
  type PhaseJobData,
  type PhaseJobResult,
  type PoolHeartbeatHandle,
  type QueueObserver,
} from '@agentfleet/core';
import {
  ManagerQueue,
  RunDriver,
  RunStore,
  cancelChannel,
  followUpThroughManager,
} from '@agentfleet/core/internal';
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { scheduledBackoff, type PhaseJobHost } from './phase-job.js';
import { isStallLimitFailure, recoverStalledOut } from './stall-limit.js';

/**
 * Times a phase job may be put back after its holder died before BullMQ fails it; the failure is then
 * taken up as a lost attempt of the phase (see `recoverStalledOut`).
 */
export const MAX_STALLED_COUNT = 2;

/** Settings every worker host shares (the agent pools' and the tools pool's options include them). */
export interface WorkerHostSettings {
  redisUrl: string;
  /** The fleet's key prefix (`FLEET_QUEUE_PREFIX`). */
  prefix: string;
  /** Jobs in flight per role in this process. @defaultValue 4 */
  concurrency?: number | undefined;
  /** BullMQ lock duration, ms: a worker silent for this long is considered stalled. @defaultValue 30000 */
  lockDurationMs?: number | undefined;
  /** How often stalled jobs are looked for, ms. @defaultValue 30000 */
  stalledIntervalMs?: number | undefined;
  /** Called with problems that do not belong to any job (connection errors). @defaultValue `logger.error`, one line per distinct error every 10 s */
  onError?: ((err: Error) => void) | undefined;
  /** Structured JSON logs (pino). @defaultValue `createLogger({ name })`: JSON lines on stderr */
  logger?: FleetLogger | undefined;
  /** Extra time past `timeout × attempts + backoff` for the deadlines of phases this host enqueues, ms. @defaultValue 30000 */
  deadlineGraceMs?: number | undefined;
  /** The clock attempt timeouts and the graceful close are timed with, and the host's commits (deadlines, outbox ages, follow-up reports) dated with. @defaultValue {@link systemClock} */
  clock?: Clock | undefined;
}

/** Options of {@link createWorkerHost}. */
export interface WorkerHostOptions extends WorkerHostSettings {
  /** Names the connections (`fleet-<name>`, `-sub`, `-bull`) and the default logger, e.g. `agents`, `tools`. */
  name: string;
}

/** What a processor is lent for one job besides the job and its signal. */
export interface HostedJob {
  /** Hand to {@link withPhaseJob}: the driver, the manager queue, the queue and role, commit-retry logging. */
  phaseHost: PhaseJobHost;
  /** BullMQ's lock token of the job (for `moveToDelayed`). */
  token: string | undefined;
  /** BullMQ's cancel signal of the job (aborted by the manager's cancel, see {@link cancelChannel}). */
  signal: AbortSignal | undefined;
  /** Hold the role's queue for `ms` (BullMQ's rate limit: no worker takes its jobs meanwhile). */
  rateLimit(ms: number): Promise<void>;
  /** The host's clock: time the attempt's timeout with it (`attemptSignal`). */
  clock: Clock;
}

/** One attempt of one phase job of a role the host serves. */
export type PhaseProcessor = (job: Job<PhaseJobData, PhaseJobResult>, hosted: HostedJob) => Promise<PhaseJobResult>;

/** A role the host serves and what its jobs do. */
export interface HostedRole {
  role: string;
  process: PhaseProcessor;
}

/** What {@link WorkerHost.start} is told besides the roles. */
export interface WorkerHostStart {
  /** Let processors hold their queue (`HostedJob.rateLimit`): BullMQ honours a manual rate limit only with a limiter set. @defaultValue false */
  rateLimited?: boolean | undefined;
  /** The "started" log line: its message and fields (the host adds `redis`, `prefix`, `roles`). */
  started: { message: string; fields?: Record<string, unknown> };
}

/** A worker host; see {@link createWorkerHost}. */
export interface WorkerHost {
  /** The host's connection for run-store commands (not BullMQ's). */
  readonly redis: Redis;
  readonly store: RunStore;
  readonly manager: ManagerQueue;
  /** What outcomes are committed with; what only the manager does goes to the manager queue. */
  readonly driver: RunDriver;
  readonly log: FleetLogger;
  /** The host's handler of errors that belong to no job. */
  readonly onError: (err: Error) => void;
  /**
   * Start one BullMQ worker per role, subscribe to cancels, start the heartbeat and the queue
   * metrics; resolves when every worker is ready.
   * @throws TypeError when called twice, or with no role.
   */
  start(roles: readonly HostedRole[], options: WorkerHostStart): Promise<void>;
  /**
   * Stop taking jobs, let jobs in flight finish (up to `graceMs`, ms, on the host's clock), then close
   * connections. Resolves within about `graceMs` even when Redis is unreachable; jobs still running
   * then are abandoned (their locks expire and another worker takes them over; a late report from
   * them is refused by the run's version fence), so the caller should exit the process.
   * @defaultValue graceMs 30000
   */
  close(graceMs?: number): Promise<void>;
}

/**
 * Open a worker host's connections and its driver; {@link WorkerHost.start} starts the workers.
 *
 * @example
 * const host = createWorkerHost({ name: 'tools', redisUrl, prefix: '{fleet}' });
 * await host.start([{ role: 'tools', process: (job, hosted) => withPhaseJob(job, hosted.phaseHost, work) }], { started: { message: 'tools pool started' } });
 * process.on('SIGTERM', () => void host.close());
 */
export function createWorkerHost(options: WorkerHostOptions): WorkerHost {
  const clock = options.clock ?? systemClock;
  const log = options.logger ?? createLogger({ name: options.name });
  // The same error from every connection and command while Redis is down or full: one line per
  // distinct error every 10 s, with the count held back (`repeated`).
  const limitRepeats = createRepeatLimiter();
  const onError =
    options.onError ??
    ((err: Error) => {
      const verdict = limitRepeats(repeatKey(err));
      if (verdict.emit) log.error({ err, ...(verdict.suppressed > 0 ? { repeated: verdict.suppressed } : {}) }, err.message);
    });
  const redis = createRedis(options.redisUrl, { forWorker: true, name: `fleet-${options.name}` });
  const subscriber = createRedis(options.redisUrl, { forWorker: true, name: `fleet-${options.name}-sub` });
  // BullMQ's own commands (take, finish, extend locks) on a socket apart from the run store's, so a
  // phase's reads and commit never queue behind another worker's fetch.
  const bull = createRedis(options.redisUrl, { forWorker: true, name: `fleet-${options.name}-bull` });
  redis.on('error', onError);
  subscriber.on('error', onError);
  bull.on('error', onError);
  const store = new RunStore(redis, options.prefix);
  const manager = new ManagerQueue(redis, options.prefix);
  const driver = createWorkerDriver(redis, options.prefix, store, manager, log, options.deadlineGraceMs, clock);
  const concurrency = options.concurrency ?? 4;
  const workers: Worker<PhaseJobData, PhaseJobResult>[] = [];
  let started = false;
  let heartbeat: PoolHeartbeatHandle | undefined;
  let queueMetrics: QueueObserver | undefined;
  let closing: Promise<void> | undefined;

  const phaseHost = (job: Job, role: string, queueName: string, signal: AbortSignal | undefined): PhaseJobHost => ({
    driver,
    manager,
    queueName,
    role,
    cancel: signal,
    onCommitRetry: (err: unknown, waitMs: number) =>
      log.warn({ job_id: job.id, wait_ms: waitMs, err: (err as Error).message }, 'commit failed on a Redis error; the outcome is kept and the commit retried'),
  });

  return {
    redis,
    store,
    manager,
    driver,
    log,
    onError,
    async start(roles, startOptions) {
      if (started) throw new TypeError('WorkerHost.start: the host is already started');
      if (roles.length === 0) throw new TypeError('WorkerHost.start: give at least one role to serve');
      started = true;
      for (const { role, process } of roles) {
        const queueName = agentQueueName(role);
        const worker: Worker<PhaseJobData, PhaseJobResult> = new Worker<PhaseJobData, PhaseJobResult>(
          queueName,
          (job, token, signal) => process(job, { phaseHost: phaseHost(job, role, queueName, signal), token, signal, rateLimit: (ms) => worker.rateLimit(ms), clock }),
          {
            connection: bull,
            prefix: options.prefix,
            concurrency,
            lockDuration: options.lockDurationMs ?? 30_000,
            stalledInterval: options.stalledIntervalMs ?? 30_000,
            maxStalledCount: MAX_STALLED_COUNT,
            autorun: true,
            // A limiter that never limits by itself, so a manual rate limit (HostedJob.rateLimit) is honoured.
            ...(startOptions.rateLimited ? { limiter: { max: 1_000_000, duration: 1000 } } : {}),
            settings: {
              backoffStrategy: (attemptsMade, _type, err, job) => scheduledBackoff(attemptsMade, err, job),
            },
          },
        );
        worker.on('error', onError);
        worker.on('failed', (job, err) => {
          if (!job || !isStallLimitFailure(err)) return;
          recoverStalledOut(job, { driver, role, log, maxStalledCount: MAX_STALLED_COUNT }).catch(onError);
        });
        workers.push(worker);
      }
      await subscriber.subscribe(cancelChannel(options.prefix));
      subscriber.on('message', (_channel, jobId) => {
        for (const w of workers) w.cancelJob(jobId, 'cancelled by the manager');
      });
      await Promise.all(workers.map((w) => w.waitUntilReady()));
      const names = roles.map((r) => r.role);
      heartbeat = startPoolHeartbeat(redis, options.prefix, names, concurrency);
      queueMetrics = observeQueues({ redis, prefix: options.prefix, roles: () => names });
      log.info({ redis: redactRedisUrl(options.redisUrl), prefix: options.prefix, roles: names, ...startOptions.started.fields }, startOptions.started.message);
    },
    close(graceMs = 30_000) {
      closing ??= (async () => {
        // Bounded by graceMs even when Redis is gone (closing a worker or queue then never ends).
        // BullMQ memoizes the first close(), so a later close(true) cannot cut a graceful one short:
        // jobs still in flight at the deadline are abandoned instead, exactly as after a crash.
        const deadline = clock.now() + graceMs;
        if (await settledWithin(Promise.all(workers.map((w) => w.close())), graceMs, clock)) {
          await settledWithin(Promise.all([manager.close(), driver.close()]), Math.max(1000, deadline - clock.now()), clock);
        }
        await settledWithin(Promise.all([heartbeat?.stop(), queueMetrics?.close()]), 1000, clock);
        subscriber.disconnect();
        bull.disconnect();
        redis.disconnect();
      })();
      return closing;
    },
  };
}

/**
 * The driver a worker host commits outcomes with; what only the manager does goes to the manager queue.
 * @param clock - dates its commits (deadlines, outbox ages) and its follow-up reports. @defaultValue the system clock
 */
export function createWorkerDriver(redis: Redis, prefix: string, store: RunStore, manager: ManagerQueue, log: FleetLogger, deadlineGraceMs: number | undefined, clock: Clock = systemClock): RunDriver {
  return new RunDriver({ redis, prefix, store, log, deadlineGraceMs, clock, rememberRuns: true, followUp: followUpThroughManager(manager, clock) });
}
