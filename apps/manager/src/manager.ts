/**
 * The manager: carries out outboxes their committer left (runs their client did not start among them), checks on phases whose deadline passed, applies cancellations,
 * external events and resumes, and carries out what workers leave to it (child runs, a finished run's
 * parent report, fallback and end action). Phase outcomes do not pass through it: the worker that
 * ran a phase commits the outcome, the next decision and the next jobs itself (`RunDriver`).
 *
 * Several managers may run against one Redis: the version fence makes every event apply once,
 * deterministic job ids make every enqueue idempotent, and a deadline is leased to one manager at a time.
 */
import {
  MANAGER_QUEUE,
  ManagerJobDataSchema,
  IN_FLIGHT_PHASE_STATUSES,
  createRedis,
  createRepeatLimiter,
  repeatKey,
  contextOfSpanRef,
  isTerminalRun,
  phaseJobId,
  createLogger,
  observeQueues,
  redactRedisUrl,
  agentQueuesKey,
  carrierUnder,
  type SpanRef,
  DEFAULT_RUN_RETENTION_MS,
  type FleetLogger,
  type ManagerJobData,
  type RunMeta,
  type RunResult,
  type RunState,
  type SchedulerEvent,
  type WorkflowDefinition,
  FleetClient,
  FleetError,
  TemplateRegistry,
  toFleetError,
  reportUnservedPhases,
  servedRoles,
  evictionPolicyWarning,
  systemClock,
  type Clock,
} from '@agentfleet/core';
import {
  COMMIT_FAILURE_MESSAGE,
  isEventRejected,
  ManagerQueue,
  RunDriver,
  RunStore,
  DEFAULT_DEADLINE_GRACE_MS,
  type DeadlineRef,
  type FollowUpAction,
} from '@agentfleet/core/internal';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { startEndActions, type EndActionsOptions } from './end-actions.js';
import { startArchiver, type Archiver, type ArchiverOptions } from './archive/archiver.js';
import type { HistoryStore } from './archive/history-store.js';
import { startBatchPoller, type BatchPoller, type BatchPollerOptions } from './batch-poller.js';
import { startScheduleWorker } from './schedules.js';

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
   * of the manager's own commits, and the archive's leases. A {@link TestClock} advanced by a day makes
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
  const driver: RunDriver = new RunDriver({ redis, prefix: options.prefix, store, log, deadlineGraceMs, clock, followUp: (meta, actions, state, result) => followUp(meta, actions, state, result) });
  // Every queue any process has added phase jobs to, served or not.
  const queueMetrics = observeQueues({ redis, prefix: options.prefix, roles: async () => new Set([...driver.roles(), ...(await redis.smembers(agentQueuesKey(options.prefix)))]) });
  // Submits (and starts) child and fallback runs the same way any client does.
  const client = new FleetClient(redis, options.prefix, { deadlineGraceMs, logger: log, clock });
  // Child-workflow phases and fallbacks find workflows where users put them: registered templates
  // (the HTTP API, `fleet workflows add`), then the built-ins.
  const registry = new TemplateRegistry(redis, options.prefix);
  const resolveByName = options.resolveWorkflow ?? ((name: string) => registry.resolve(name));

  /** Start the child run of a `workflow:` phase (idempotent: the child's id is deterministic). */
  async function startChildRun(meta: RunMeta, state: RunState, phase: string, iteration: number, workflowName: string): Promise<void> {
    const childId = childRunId(meta.run_id, phase, iteration);
    let submitted = false;
    try {
      const workflow = await resolveByName(workflowName);
      await client.submit({
        runId: childId,
        workflow,
        requirements: meta.requirements,
        variables: meta.variables,
        provider: meta.provider,
        // The child's trace continues under the phase that started it.
        trace: childTrace(state.phases[phase]?.span, meta.trace),
        links: { parent: { run_id: meta.run_id, phase, iteration } },
        // The child's phases are the parent's work: they go at the parent's priority.
        ...(meta.priority !== undefined ? { priority: meta.priority } : {}),
      });
      submitted = true;
      // The child stays in Redis while its parent is open (retention).
      await store.holdRun(childId, meta.run_id);
      // Linked once, however often a replay starts the (same) child again.
      if (!(await store.getLinks(meta.run_id)).children?.includes(childId)) await store.addLink(meta.run_id, 'children', childId);
    } catch (err) {
      // The child exists: only its link failed, and the next replay adds it. Nothing to fail.
      if (submitted) return;
      const error = toFleetError(err);
      await managerQueue.report({
        type: 'phase_attempt_failed', run_id: meta.run_id, phase, iteration, attempt: 1, at: Date.now(),
        error: new FleetError('CHILD_RUN_FAILED', `could not start workflow "${workflowName}": ${error.message}`).toJSON(),
        will_retry: false, usage: { input_tokens: 0, output_tokens: 0 },
      });
    }
  }

  /** A finished child run reports back to its parent's phase, like an agent would. */
  async function reportToParent(meta: RunMeta, result: RunResult): Promise<void> {
    const parent = meta.links?.parent;
    if (!parent) return;
    const ref = { run_id: parent.run_id, phase: parent.phase, iteration: parent.iteration };
    const jobId = `${phaseJobId(parent.run_id, parent.phase, parent.iteration)}.child`;
    if (result.status === 'completed') {
      await managerQueue.report(
        {
          type: 'phase_completed',
          ...ref,
          attempt: 1,
          at: Date.now(),
          ...(await store.outputForReport(parent.run_id, parent.phase, parent.iteration, 1, { run_id: result.run_id, results: result.results })),
          usage: result.usage,
          model: result.model ?? 'none',
        },
        { jobId },
      );
    } else {
      const error = new FleetError('CHILD_RUN_FAILED', `child run ${result.run_id} (${result.workflow.name}) ${result.status}${result.errors[0] ? `: ${result.errors[0].error.message}` : ''}`, {
        details: { child_run_id: result.run_id },
      });
      await managerQueue.report({ type: 'phase_attempt_failed', ...ref, attempt: 1, at: Date.now(), error: error.toJSON(), will_retry: false, usage: result.usage }, { jobId });
    }
  }

  /** Start the failed run's fallback workflow on the same requirements, with its outputs in context. */
  async function startFallback(meta: RunMeta, workflowName: string): Promise<void> {
    const fallbackId = `${meta.run_id}.fallback`;
    try {
      const workflow = await resolveByName(workflowName);
      const created = await client.submit({
        runId: fallbackId,
        workflow,
        requirements: meta.requirements,
        variables: meta.variables,
        provider: meta.provider,
        links: { fallback_of: meta.run_id },
        context: await store.getOutputs(meta.run_id),
      });
      if (created) {
        const links = await store.getLinks(meta.run_id);
        if (!links.fallback_run_id) {
          await store.addLink(meta.run_id, 'fallback_run_id', fallbackId);
          // Followers of the failed run (`fleet run`) learn here which run carries on.
          await store.appendEvent(meta.run_id, { type: 'fallback_started', at: Date.now(), workflow: workflowName, fallback_run_id: fallbackId });
        }
      }
    } catch (err) {
      warn(`run ${meta.run_id}: fallback workflow "${workflowName}" could not start: ${toFleetError(err).message}`);
      await store.appendEvent(meta.run_id, { type: 'fallback_failed', at: Date.now(), workflow: workflowName, error: toFleetError(err).message });
    }
  }

  /** What a committed decision leaves to the manager. Idempotent: a replay repeats none of it. */
  async function followUp(meta: RunMeta, actions: readonly FollowUpAction[], state: RunState, result: RunResult | undefined): Promise<void> {
    for (const action of actions) {
      switch (action.type) {
        case 'start_child_run':
          await startChildRun(meta, state, action.phase, action.iteration, action.workflow);
          break;
        case 'cancel_phase':
          // Agent and tool phases were cancelled by whoever committed the decision; a child run is stopped here.
          await client.cancel(childRunId(meta.run_id, action.phase, action.iteration), `parent run ${meta.run_id} stopped phase "${action.phase}"`).catch(() => undefined);
          break;
        case 'finish_run':
          if (result) {
            await reportToParent(meta, result);
            await endActions.enqueue(meta, state.resumes);
          }
          break;
        case 'start_fallback':
          await startFallback(meta, action.workflow);
          break;
      }
    }
  }

  async function handle(job: Job<ManagerJobData>): Promise<void> {
    const parsed = ManagerJobDataSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`manager job ${job.id} has invalid data: ${parsed.error.message}`);
    const data = parsed.data;
    if (data.type === 'run_followup') {
      const { meta, state, result } = await store.getRun(data.run_id);
      await followUp(meta, data.actions, state, result);
      return;
    }
    if (data.type === 'repair_run') {
      // Sent by workers of an earlier version: what a commit left undone is in the run's outbox.
      await driver.reconcile(data.run_id);
      return;
    }
    const deadline = data.type === 'phase_deadline' ? { run_id: data.run_id, phase: data.phase, iteration: data.iteration } : undefined;
    if (deadline && !(await deadlineDue(deadline))) return;
    const output =
      data.type === 'phase_completed'
        ? { phase: data.phase, value: data.output_ref ? await store.readStagedOutput(data.run_id, data.output_ref) : data.output }
        : undefined;
    // An event the scheduler cannot decide is refused for good and recorded on the run by the driver
    // (`event_rejected`): this report is done with, as one whose event was refused as stale.
    const decision = await driver.apply(data.run_id, toSchedulerEvent(data), { output }).then(
      (applied) => applied.decision,
      (err: unknown) => {
        if (!isEventRejected(err)) throw err;
        return { accepted: false };
      },
    );
    if (data.type === 'cancel_requested' && !decision.accepted) await recordIgnoredCancel(data.run_id, data.reason, data.at);
    if (data.type === 'phase_completed' && data.output_ref) await redis.del(data.output_ref);
    // A phase deadline the decision refused is stale.
    if (deadline && !decision.accepted) await store.removeDeadline(deadline);
    // A deadline that found nothing to do (its committer got the commit in but may have died before
    // its effects), or a redelivered report (its first delivery may have died the same way): carry out
    // whatever the run's outbox holds, whoever committed it.
    if ((deadline && !decision.accepted) || job.attemptsStarted > 1 || job.attemptsMade > 0) await driver.reconcile(data.run_id);
  }

  /**
   * A cancel the run's decision refused because the run had already finished (completed or failed
   * before the cancel arrived): say so in the run's events, so whoever asked sees why nothing was
   * cancelled. A redelivered cancel of a run it cancelled leaves no second trace.
   */
  async function recordIgnoredCancel(runId: string, reason: string, requestedAt: number): Promise<void> {
    const { state } = await store.getRun(runId);
    if (!isTerminalRun(state.status) || state.status === 'cancelled') return;
    const finishedAt = state.finishedAt === undefined ? '' : ` at ${new Date(state.finishedAt).toISOString()}`;
    await store.appendEvent(runId, {
      type: 'cancel_ignored',
      at: Date.now(),
      reason,
      status: state.status,
      message: `the cancel requested at ${new Date(requestedAt).toISOString()} arrived after the run had ${state.status}${finishedAt}; nothing was cancelled`,
    });
  }

  /**
   * Whether a phase deadline that came due is really due. It counts from the enqueue, so it can pass
   * while the job still waits in a busy queue (or is held by the rate limiter), or while a live worker
   * holds it: then the deadline moves on by one more attempt's timeout and the phase goes on. It is due
   * when the job is gone, failed, or stalled past BullMQ's limit; and an approval's (or a waiting
   * phase's) when its time is up. A deadline of a phase that ended or moved on is removed.
   */
  async function deadlineDue(ref: DeadlineRef): Promise<boolean> {
    let run;
    try {
      run = await store.getRun(ref.run_id);
    } catch (err) {
      if (err instanceof FleetError && err.code === 'RUN_NOT_FOUND') {
        await store.removeDeadline(ref);
        return false;
      }
      throw err;
    }
    const { meta, state } = run;
    const def = meta.workflow.phases.find((p) => p.name === ref.phase);
    const p = state.phases[ref.phase];
    if (!def || !p || p.iteration !== ref.iteration || (!IN_FLIGHT_PHASE_STATUSES.includes(p.status) && p.status !== 'waiting')) {
      await store.removeDeadline(ref);
      return false;
    }
    if (IN_FLIGHT_PHASE_STATUSES.includes(p.status) && (def.kind === 'agent' || def.kind === 'tool')) {
      const phaseJob = await driver.findPhaseJob(def, p.agent, phaseJobId(ref.run_id, ref.phase, ref.iteration));
      const jobState = phaseJob ? await phaseJob.getState() : 'missing';
      if (phaseJob && jobState === 'failed' && phaseJob.failedReason.startsWith(COMMIT_FAILURE_MESSAGE)) {
        // Its work did not fail, only the commit of its outcome did (Redis trouble outlasted the
        // worker's retries): the attempt is run again, counted as the attempt it was.
        await phaseJob.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
        await store.setDeadline(ref, clock.now() + def.timeoutMs + deadlineGraceMs, 'XX');
        log.warn({ ...ref, job_id: phaseJob.id }, 'a phase job failed on a commit error is taken up again');
        return false;
      }
      if (['waiting', 'delayed', 'prioritized', 'active', 'waiting-children'].includes(jobState)) {
        await store.setDeadline(ref, clock.now() + def.timeoutMs + deadlineGraceMs, 'XX');
        return false;
      }
    }
    return true;
  }

  const outboxLeaseMs = options.outboxLeaseMs ?? DEADLINE_LEASE_MS;
  /**
   * Carry out the outbox of every run whose committer left it longer than a lease (it crashed, or
   * lost Redis, between its commit and its effects). Each run is leased to this manager meanwhile.
   */
  async function reconcileStaleOutboxes(now: number): Promise<void> {
    const stale = await store.claimStaleOutboxes(now - outboxLeaseMs, now + outboxLeaseMs);
    await Promise.all(stale.map((runId) => driver.reconcile(runId).catch((err: unknown) => warn(`outbox of ${runId}: ${(err as Error).message}`))));
  }

  let polling: Promise<void> | undefined;
  let stopped = false;
  /**
   * Hand each due deadline to the manager queue, where it is checked and applied like any other event
   * (a manager that dies mid-way has the job taken over). The deadline stays leased meanwhile; the
   * commit that ends the phase removes it.
   */
  async function pollDeadlines(): Promise<void> {
    const now = clock.now();
    await reconcileStaleOutboxes(now);
    const due = await store.claimDueDeadlines(now, now + DEADLINE_LEASE_MS);
    await Promise.all(
      due.map((ref) =>
        managerQueue
          .report({ type: 'phase_deadline', ...ref, at: now }, { jobId: `${phaseJobId(ref.run_id, ref.phase, ref.iteration)}.deadline` })
          .catch((err: unknown) => warn(`deadline of ${ref.run_id} ${ref.phase}: ${(err as Error).message}`)),
      ),
    );
  }
  // Runs whose retention passed leave the run index too, so Redis memory stays flat.
  let pruning: Promise<unknown> | undefined;
  const pruneTimer = setInterval(() => {
    if (pruning || stopped) return;
    pruning = store
      .pruneIndex(options.runRetentionMs ?? DEFAULT_RUN_RETENTION_MS)
      .catch((err: unknown) => onError(err as Error))
      .finally(() => (pruning = undefined));
  }, INDEX_PRUNE_MS);
  pruneTimer.unref();
  const deadlineTimer = setInterval(() => {
    if (polling || stopped) return;
    polling = pollDeadlines()
      .catch((err: unknown) => onError(err as Error))
      .finally(() => (polling = undefined));
  }, DEADLINE_POLL_MS);

  /**
   * Say so in a run's events when one of its phases waits in the queue of a role that no live pool
   * serves (the pools' heartbeats), instead of leaving it queued without a word. Only the queues of
   * unserved roles are read, so a fleet whose roles are all served pays one HGETALL and one SMEMBERS.
   */
  async function checkUnserved(): Promise<void> {
    const served = await servedRoles(redis, options.prefix);
    const roles = (await redis.smembers(agentQueuesKey(options.prefix))).filter((r) => !served.has(r));
    for (const role of roles) {
      const jobs = await driver.queueFor(role).getJobs(['wait', 'prioritized'], 0, 99);
      const runIds = new Set(jobs.map((j) => (j?.data as { run_id?: unknown } | undefined)?.run_id).filter((id): id is string => typeof id === 'string'));
      for (const runId of runIds) {
        const reported = await reportUnservedPhases(redis, store, options.prefix, runId).catch((err: unknown) => {
          if (err instanceof FleetError && err.code === 'RUN_NOT_FOUND') return [];
          throw err;
        });
        for (const u of reported) warn(`run ${runId}: phase ${u.phase} is queued but ${u.message}`);
      }
    }
  }
  let checking: Promise<void> | undefined;
  const unservedTimer = setInterval(() => {
    if (checking || stopped) return;
    checking = checkUnserved()
      .catch((err: unknown) => onError(err as Error))
      .finally(() => (checking = undefined));
  }, UNSERVED_CHECK_MS);

  // The end-action worker's errors go the same way as the manager's own (one line per distinct error every 10 s).
  const endActions = await startEndActions(redis, options.prefix, { lockDurationMs: options.lockDurationMs, stalledIntervalMs: options.stalledIntervalMs, ...options.endActions }, (message) => onError(new Error(message)));
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
  // Fires of the schedules (BullMQ job schedulers on the `schedules` queue) start their runs here.
  const schedules = await startScheduleWorker({ redis, prefix: options.prefix, client, log, resolveWorkflow: resolveByName, lockDurationMs: options.lockDurationMs, stalledIntervalMs: options.stalledIntervalMs, onError, clock });
  const archiver: Archiver | undefined = options.history ? await startArchiver(redis, store, options.history, { lockDurationMs: options.lockDurationMs, stalledIntervalMs: options.stalledIntervalMs, clock, ...options.archive }) : undefined;
  const batchPoller: BatchPoller | undefined = options.batches
    ? startBatchPoller({ redis, prefix: options.prefix, store, driver, batches: options.batches, pollMs: options.batchPollMs, log, onError })
    : undefined;
  log.info({ redis: redactRedisUrl(options.redisUrl), prefix: options.prefix, concurrency: options.concurrency ?? 16 }, 'manager started');

  const manager: Manager = {
    async reconcile() {
      // Every effect a commit sets off is in its outbox until carried out (the outbox is written in the
      // commit itself, and cleared only after its effects), so the outboxes are all there is to redo;
      // a finished run's (its end action, its parent's report) included.
      for (const runId of await store.pendingOutboxRunIds()) {
        await driver.reconcile(runId).catch((err: unknown) => warn(`reconcile ${runId}: ${(err as Error).message}`));
      }
    },
    async close() {
      stopped = true;
      clearInterval(deadlineTimer);
      clearInterval(unservedTimer);
      clearInterval(pruneTimer);
      await polling;
      await checking;
      await pruning;
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

/**
 * The trace a child run continues: under the phase that started it (its W3C `traceparent` directly
 * when this process has no propagator), else the parent run's own carrier.
 */
function childTrace(phaseSpan: SpanRef | undefined, fallback: Record<string, string>): Record<string, string> {
  return phaseSpan ? carrierUnder(phaseSpan, contextOfSpanRef(phaseSpan)) : fallback;
}

/** Child run ids: deterministic, so starting one twice is a no-op. */
function childRunId(runId: string, phase: string, iteration: number): string {
  return `${runId}.${phase}.${iteration}.run`;
}

function toSchedulerEvent(data: Exclude<ManagerJobData, { type: 'run_followup' | 'repair_run' }>): SchedulerEvent {
  switch (data.type) {
    case 'phase_completed':
      return {
        type: 'phase_completed',
        at: data.at,
        phase: data.phase,
        iteration: data.iteration,
        attempt: data.attempt,
        usage: data.usage,
        model: data.model,
        action: data.action,
        cacheHit: data.cache_hit,
        startedAt: data.started_at,
        agent: data.agent,
      };
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
        startedAt: data.started_at,
        agent: data.agent,
      };
    case 'phase_deadline':
      // Checked when taken, so it is due now (a pushed-back deadline fires later than it was first set for).
      return { type: 'phase_deadline', at: Date.now(), phase: data.phase, iteration: data.iteration };
    case 'cancel_requested':
      return { type: 'cancel_requested', at: data.at, reason: data.reason };
    case 'external_event':
      return { type: 'external_event', at: data.at, event: data.event, data: data.data, id: data.id };
    case 'resume_requested':
      return { type: 'resume_requested', at: data.at };
  }
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
