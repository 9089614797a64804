/**
 * The manager: carries out outboxes their committer left (runs their client did not start among them), checks on phases whose deadline passed, applies cancellations,
 * external events and resumes, and carries out what workers leave to it (child runs, a finished run's
 * parent report, fallback and end action). Phase outcomes do not pass through it: the worker that
 * ran a phase commits the outcome, the next decision and the next jobs itself (`RunDriver`).
 *
 * {@link startManager} composes its parts, each in its own file:
 * - ./outbox-sweep.ts (`OutboxSweep`): outboxes older than the lease, every pending one at start, and
 *   runs created without a start in their outbox;
 * - ./deadline-scheduler.ts (`DeadlineScheduler`): claims due deadlines and checks whether one is really due;
 * - ./manager-queue-worker.ts: applies the reports of the manager queue to their runs;
 * - ./follow-ups.ts (`FollowUps`): child runs, parent reports, end actions, fallbacks;
 * - ./unserved-check.ts, ./end-actions.ts, ./schedules.ts, ./batch-poller.ts, ./archive/archiver.ts.
 *
 * Several managers may run against one Redis: the version fence makes every event apply once,
 * deterministic job ids make every enqueue idempotent, and a deadline is leased to one manager at a time.
 */
import {
  createRedis,
  createRepeatLimiter,
  repeatKey,
  createLogger,
  observeQueues,
  redactRedisUrl,
  agentQueuesKey,
  DEFAULT_RUN_RETENTION_MS,
  type FleetLogger,
  type WorkflowDefinition,
  FleetClient,
  TemplateRegistry,
  evictionPolicyWarning,
  systemClock,
  type Clock,
} from '@agentfleet/core';
import { DEFAULT_DEADLINE_GRACE_MS, ManagerQueue, RunDriver, RunStore } from '@agentfleet/core/internal';
import type { Redis } from 'ioredis';
import { startEndActions, type EndActionsOptions } from './end-actions.js';
import { startArchiver, type Archiver, type ArchiverOptions } from './archive/archiver.js';
import type { HistoryStore } from './archive/history-store.js';
import { startBatchPoller, type BatchPoller, type BatchPollerOptions } from './batch-poller.js';
import { DeadlineScheduler } from './deadline-scheduler.js';
import { FollowUps } from './follow-ups.js';
import { startManagerQueueWorker } from './manager-queue-worker.js';
import { OutboxSweep } from './outbox-sweep.js';
import { startPeriodic } from './periodic.js';
import { startScheduleWorker } from './schedules.js';
import { checkUnservedPhases } from './unserved-check.js';

/** How often due deadlines are looked for, ms. */
const DEADLINE_POLL_MS = 250;
/** How often the run index is pruned of runs whose retention passed, ms. */
const INDEX_PRUNE_MS = 60_000;
/** How long a manager holds a due deadline it took before another may take it, ms. */
const DEADLINE_LEASE_MS = 30_000;
/** How often queues of roles no live pool serves are looked for, ms. */
const UNSERVED_CHECK_MS = 1000;

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
  /**
   * Extra time a phase gets past `timeout × attempts + backoff` before its manager-side deadline, ms.
   * Workers that enqueue phases use their own setting (`FLEET_DEADLINE_GRACE_MS`). @defaultValue 30000
   */
  deadlineGraceMs?: number;
  /**
   * Find a workflow by name, for child-workflow phases and `fallback_workflow`.
   * @defaultValue the template registry in Redis, then the built-in workflows
   */
  resolveWorkflow?: (name: string) => Promise<WorkflowDefinition>;
  /** End actions (webhook signing key, retries) run after each run finishes; see ./end-actions.ts. */
  endActions?: EndActionsOptions;
  /**
   * How old a run's outbox (what a commit left to carry out) may get before the manager carries it
   * out itself, ms: its committer had that long to do it and is taken for dead. @defaultValue 30000
   */
  outboxLeaseMs?: number;
  /**
   * How long a finished run's keys stay in Redis, ms (`FLEET_RUN_RETENTION`); 0 keeps them. Written to
   * Redis at start, so every process that finishes runs applies it. @defaultValue 7 days
   */
  runRetentionMs?: number;
  /**
   * The run archive (`FLEET_HISTORY_URL`, opened with `openHistoryStore`): each finished run is
   * written there, and gets its Redis expiry only after that write succeeded. @defaultValue none: Redis alone
   */
  history?: HistoryStore;
  /** Tuning of the archiver (poll interval, retry backoff); see ./archive/archiver.ts. */
  archive?: ArchiverOptions;
  /**
   * The clock deadlines and leases are read with (epoch ms): which deadlines are due and how far a
   * pushed-back one moves, when an outbox has outlived `outboxLeaseMs`, the deadlines and outbox ages
   * of the manager's own commits, the archive's leases, the batch poller's ticks and the end actions'
   * request timeouts and attempt times. A {@link TestClock} advanced by a day makes
   * a one-day approval timeout come due at once. @defaultValue {@link systemClock}
   */
  clock?: Clock;
  /**
   * The Message Batches API, for `mode: batch` phases: open batches are polled and their phase jobs
   * resumed when they end (./batch-poller.ts). @defaultValue none: batch phases resume only at their `batch_timeout`
   */
  batches?: BatchPollerOptions['batches'] | undefined;
  /** How often open batches are polled, ms (`FLEET_BATCH_POLL_MS`). @defaultValue 30000 */
  batchPollMs?: number | undefined;
}

export interface Manager {
  /**
   * Carry out every run's pending outbox, however young (done once at start): runs whose client died
   * before starting them, and whatever a crashed committer (this manager among them) left undone.
   * Then start the runs still `created` with no outbox entry (created by an earlier version, whose
   * create wrote no start into the outbox).
   */
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
  // One line per distinct error every 10 s while Redis is down or full (each connection and command reports it).
  const limitRepeats = createRepeatLimiter();
  const onError =
    options.onError ??
    ((err: Error) => {
      const verdict = limitRepeats(repeatKey(err));
      if (verdict.emit) warn(verdict.suppressed > 0 ? `${err.message} (${verdict.suppressed} more like it since the last report)` : err.message);
    });
  const clock = options.clock ?? systemClock;
  const redis = createRedis(options.redisUrl, { forWorker: true, name: 'fleet-manager' });
  redis.on('error', onError);
  await checkEvictionPolicy(redis, warn);

  const store = new RunStore(redis, options.prefix);
  await store.writeRetentionSettings(options.runRetentionMs ?? DEFAULT_RUN_RETENTION_MS, options.history !== undefined);
  const managerQueue = new ManagerQueue(redis, options.prefix);
  const deadlineGraceMs = options.deadlineGraceMs ?? DEFAULT_DEADLINE_GRACE_MS;
  // Submits (and starts) child and fallback runs the same way any client does.
  const client = new FleetClient(redis, options.prefix, { deadlineGraceMs, logger: log, clock });
  // Child-workflow phases and fallbacks find workflows where users put them: registered templates
  // (the HTTP API, `fleet workflows add`), then the built-ins.
  const registry = new TemplateRegistry(redis, options.prefix);
  const resolveByName = options.resolveWorkflow ?? ((name: string) => registry.resolve(name));
  // The end-action worker's errors go the same way as the manager's own (one line per distinct error every 10 s).
  const endActions = await startEndActions(
    redis,
    options.prefix,
    { lockDurationMs: options.lockDurationMs, stalledIntervalMs: options.stalledIntervalMs, clock, ...options.endActions },
    (message) => onError(new Error(message)),
  );
  const followUps = new FollowUps({ store, client, managerQueue, endActions, resolveWorkflow: resolveByName, warn, clock });
  const driver = new RunDriver({ redis, prefix: options.prefix, store, log, deadlineGraceMs, clock, followUp: (meta, actions, state, result) => followUps.carryOut(meta, actions, state, result) });
  // Every queue any process has added phase jobs to, served or not.
  const queueMetrics = observeQueues({ redis, prefix: options.prefix, roles: async () => new Set([...driver.roles(), ...(await redis.smembers(agentQueuesKey(options.prefix)))]) });
  const deadlines = new DeadlineScheduler({ store, driver, managerQueue, clock, deadlineGraceMs, leaseMs: DEADLINE_LEASE_MS, log, warn });
  const outboxes = new OutboxSweep({ store, driver, leaseMs: options.outboxLeaseMs ?? DEADLINE_LEASE_MS, log, warn });

  // Outboxes older than their lease, then due deadlines, on each tick.
  const deadlinePoll = startPeriodic(
    DEADLINE_POLL_MS,
    async () => {
      const now = clock.now();
      await outboxes.reconcileStale(now);
      await deadlines.handOutDue(now);
    },
    onError,
  );
  const unservedCheck = startPeriodic(UNSERVED_CHECK_MS, () => checkUnservedPhases({ redis, prefix: options.prefix, store, driver, warn }), onError);
  // Runs whose retention passed leave the run index too, so Redis memory stays flat.
  const indexPrune = startPeriodic(INDEX_PRUNE_MS, () => store.pruneIndex(options.runRetentionMs ?? DEFAULT_RUN_RETENTION_MS), onError, { unref: true });

  const worker = await startManagerQueueWorker({
    redis,
    prefix: options.prefix,
    store,
    driver,
    followUps,
    deadlines,
    concurrency: options.concurrency ?? 16,
    lockDurationMs: options.lockDurationMs ?? 30_000,
    stalledIntervalMs: options.stalledIntervalMs ?? 30_000,
    onError,
    warn,
    clock,
  });
  // Fires of the schedules (BullMQ job schedulers on the `schedules` queue) start their runs here.
  const schedules = await startScheduleWorker({ redis, prefix: options.prefix, client, log, resolveWorkflow: resolveByName, lockDurationMs: options.lockDurationMs, stalledIntervalMs: options.stalledIntervalMs, onError, clock });
  const archiver: Archiver | undefined = options.history ? await startArchiver(redis, store, options.history, { lockDurationMs: options.lockDurationMs, stalledIntervalMs: options.stalledIntervalMs, clock, ...options.archive }) : undefined;
  const batchPoller: BatchPoller | undefined = options.batches
    ? startBatchPoller({ redis, prefix: options.prefix, store, driver, batches: options.batches, pollMs: options.batchPollMs, log, onError, clock })
    : undefined;
  log.info({ redis: redactRedisUrl(options.redisUrl), prefix: options.prefix, concurrency: options.concurrency ?? 16 }, 'manager started');

  const manager: Manager = {
    async reconcile() {
      await outboxes.reconcilePending();
      await outboxes.startUnstarted();
    },
    async close() {
      await Promise.all([deadlinePoll.stop(), unservedCheck.stop(), indexPrune.stop()]);
      await batchPoller?.stop();
      await worker.close();
      await schedules.close();
      await queueMetrics.close();
      await driver.close();
      await managerQueue.close();
      await endActions.close();
      await archiver?.close();
      await client.close();
      redis.disconnect();
    },
  };
  await manager.reconcile();
  return manager;
}

/** Warn when Redis may evict keys: BullMQ and the run store need `maxmemory-policy noeviction`. */
async function checkEvictionPolicy(redis: Redis, warn: (m: string) => void): Promise<void> {
  try {
    const reply = (await redis.config('GET', 'maxmemory-policy'));
    const policy = reply[1];
    if (policy && policy !== 'noeviction') {
      warn(evictionPolicyWarning(policy));
    }
  } catch {
    // CONFIG may be disabled (managed Redis); nothing to check then.
  }
}
