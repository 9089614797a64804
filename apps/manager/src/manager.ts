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
  JOB_SIZE_LIMITS,
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
  type FleetLogger,
  type Decision,
  type ManagerJobData,
  type PhaseDefinition,
  type RunMeta,
  type RunResult,
  type SchedulerEvent,
  type WorkflowDefinition,
  FleetClient,
  FleetError,
  TemplateRegistry,
  needsOutputs,
  toFleetError,
} from '@agentfleet/core';
import { SpanKind } from '@opentelemetry/api';
import { DelayedError, Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { RunSpans } from './spans.js';
import { startEndActions, type EndActionsOptions } from './end-actions.js';
import { enforceStateSchema } from './state-schema.js';

/** How long after a run finishes its retained jobs are removed a second time (locks released by then), ms. */
const CLEANUP_DELAY_MS = 10_000;

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
  /**
   * Extra time a phase gets past `timeout × attempts + backoff` before its manager-side deadline, ms.
   * @defaultValue 30000
   */
  deadlineGraceMs?: number;
  /**
   * Find a workflow by name, for child-workflow phases and `fallback_workflow`.
   * @defaultValue the template registry in Redis, then the built-in workflows
   */
  resolveWorkflow?: (name: string) => Promise<WorkflowDefinition>;
  /** End actions (webhook signing key, retries) run after each run finishes; see ./end-actions.ts. */
  endActions?: EndActionsOptions;
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
  const deadlineGraceMs = options.deadlineGraceMs ?? DEADLINE_GRACE_MS;
  const spans = new RunSpans(store);
  const queueMetrics = observeQueues({ redis, prefix: options.prefix, roles: () => agentQueues.keys() });
  // Submits child and fallback runs the same way any client does.
  const client = new FleetClient(redis, options.prefix);
  // Child-workflow phases and fallbacks find workflows where users put them: registered templates
  // (the HTTP API, `fleet workflows add`), then the built-ins.
  const registry = new TemplateRegistry(redis, options.prefix);
  const resolveByName = options.resolveWorkflow ?? ((name: string) => registry.resolve(name));
  const loadsOutputs = (m: RunMeta) => needsOutputs(m.workflow) || m.workflow.stateSchema !== undefined;
  const queueFor = (role: string): Queue => {
    let q = agentQueues.get(role);
    if (!q) {
      q = new Queue(agentQueueName(role), { connection: redis, prefix: options.prefix });
      agentQueues.set(role, q);
    }
    return q;
  };

  /** The role with the least work waiting among `agents` (ties: the first listed). */
  async function leastLoaded(agents: readonly string[]): Promise<string> {
    let best = agents[0] as string;
    let bestCount = Number.POSITIVE_INFINITY;
    for (const role of agents) {
      const count = await queueFor(role).getJobCountByTypes('waiting', 'prioritized', 'delayed');
      if (count < bestCount) {
        best = role;
        bestCount = count;
      }
    }
    return best;
  }

  async function enqueuePhase(meta: RunMeta, def: PhaseDefinition, iteration: number, at: number, chosen?: string): Promise<void> {
    const runId = meta.run_id;
    const jobId = phaseJobId(runId, def.name, iteration);
    const role = chosen ?? (def.agentSelect?.type === 'load_balanced' ? await leastLoaded(def.agentSelect.agents) : def.agent);
    const runCtx = spans.runContext(runId, await store.getRunTrace(runId));
    const phaseCtx = await spans.startPhase(runId, runCtx, def.name, role, iteration, at, def.dependsOn.map((d) => d.phase));
    const queue = queueFor(role);
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
          role,
          timeout_ms: def.timeoutMs,
          max_attempts: def.retries + 1,
          cache_ttl_ms: def.cache ? meta.workflow.cacheTtlMs : 0,
          trace: injectTraceContext(),
          ...(def.model !== undefined ? { model: def.model } : {}),
        });
        await queue.add(def.name, data, {
          jobId,
          sizeLimit: JOB_SIZE_LIMITS.phaseJob,
          attempts: def.retries + 1,
          backoff: { type: FLEET_BACKOFF, delay: def.retryDelayMs },
          // Completed jobs are kept a day so a repeated enqueue of the same id stays a no-op.
          removeOnComplete: { age: 24 * 3600, count: 50_000 },
          removeOnFail: { age: 7 * 24 * 3600, count: 50_000 },
        });
        log.info({ run_id: runId, phase: def.name, iteration, role, job_id: jobId }, 'phase enqueued');
      },
    );
    await setDeadline(runId, def, iteration);
  }

  async function setDeadline(runId: string, def: PhaseDefinition, iteration: number): Promise<void> {
    const attempts = def.retries + 1;
    const backoffMs = def.retryDelayMs * (2 ** attempts - 1);
    const delayMs = def.timeoutMs * attempts + backoffMs + deadlineGraceMs;
    await managerQueue.report(
      { type: 'phase_deadline', run_id: runId, phase: def.name, iteration, at: Date.now() + delayMs },
      { jobId: `${phaseJobId(runId, def.name, iteration)}.deadline`, delayMs },
    );
  }

  async function cancelPhase(meta: RunMeta, phase: string, iteration: number, role: string | undefined): Promise<void> {
    const def = meta.workflow.phases.find((p) => p.name === phase);
    if (!def) return;
    const jobId = phaseJobId(meta.run_id, phase, iteration);
    if (def.kind === 'workflow') {
      await client.cancel(childRunId(meta.run_id, phase, iteration), `parent run ${meta.run_id} stopped phase "${phase}"`).catch(() => undefined);
      return;
    }
    const job = await findPhaseJob(def, role, jobId);
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

  /** Start the child run of a `workflow:` phase (idempotent: the child's id is deterministic). */
  async function startChildRun(meta: RunMeta, phase: string, iteration: number, workflowName: string): Promise<void> {
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
        trace: await store.getRunTrace(meta.run_id) ?? meta.trace,
        links: { parent: { run_id: meta.run_id, phase, iteration } },
      });
      submitted = true;
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
        if (!links.fallback_run_id) await store.addLink(meta.run_id, 'fallback_run_id', fallbackId);
      }
    } catch (err) {
      warn(`run ${meta.run_id}: fallback workflow "${workflowName}" could not start: ${toFleetError(err).message}`);
      await store.appendEvent(meta.run_id, { type: 'fallback_failed', at: Date.now(), workflow: workflowName, error: toFleetError(err).message });
    }
  }

  /**
   * A finished run's jobs have done their work: phase jobs are kept while the run goes on only so a
   * repeated enqueue of the same id stays a no-op, and a finished run enqueues nothing. Removing them
   * keeps Redis at the run record, its context and its events per finished run. Jobs still locked by
   * a worker (a cancelled call winding down) are left to their retention.
   */
  async function removeFinishedJobs(meta: RunMeta, decision: Pick<Decision, 'state'>): Promise<void> {
    const removals: Array<Promise<unknown>> = [managerQueue.queue.remove(`${meta.run_id}.submit`)];
    for (const def of meta.workflow.phases) {
      const p = decision.state.phases[def.name];
      if (!p || (def.kind !== 'agent' && def.kind !== 'tool')) continue;
      for (let iteration = 1; iteration <= p.iteration; iteration++) {
        const jobId = phaseJobId(meta.run_id, def.name, iteration);
        removals.push(queueFor(p.agent ?? def.agent).remove(jobId), managerQueue.queue.remove(`${jobId}.deadline`));
      }
    }
    await Promise.all(removals.map((r) => r.catch(() => 0)));
  }

  async function carryOut(meta: RunMeta, decision: Decision, result: RunResult | undefined): Promise<void> {
    // Independent phases that became ready together are enqueued together, not one after another.
    await Promise.all(
      decision.actions.map(async (action) => {
        if (action.type !== 'enqueue_phase') return;
        const def = meta.workflow.phases.find((p) => p.name === action.phase);
        if (def) await enqueuePhase(meta, def, action.iteration, Date.now(), action.agent);
      }),
    );
    for (const action of decision.actions) {
      switch (action.type) {
        case 'enqueue_phase':
          break;
        case 'start_child_run':
          await startChildRun(meta, action.phase, action.iteration, action.workflow);
          break;
        case 'await_event':
          await managerQueue.report(
            { type: 'phase_deadline', run_id: meta.run_id, phase: action.phase, iteration: action.iteration, at: Date.now() + action.timeoutMs },
            { jobId: `${phaseJobId(meta.run_id, action.phase, action.iteration)}.deadline`, delayMs: action.timeoutMs },
          );
          break;
        case 'cancel_phase':
          await cancelPhase(meta, action.phase, action.iteration, decision.state.phases[action.phase]?.agent);
          break;
        case 'finish_run':
          if (result) await reportToParent(meta, result);
          await removeFinishedJobs(meta, decision);
          await managerQueue.report({ type: 'run_cleanup', run_id: meta.run_id, at: Date.now() }, { jobId: `${meta.run_id}.cleanup`, delayMs: CLEANUP_DELAY_MS });
          break;
        case 'start_fallback':
          await startFallback(meta, action.workflow);
          break;
      }
    }
    for (const e of decision.events) {
      if (e.type === 'phase_completed' || e.type === 'phase_failed') {
        // The iteration that ended (a repeat may already have queued the next one).
        const iteration = e.type === 'phase_completed' ? e.iteration : (decision.state.phases[e.phase]?.iteration ?? 0);
        await removeDeadline(meta.run_id, e.phase, iteration);
      }
    }
  }

  /**
   * Make sure every phase in flight has its job and deadline. Adds are idempotent (deterministic ids),
   * so this is safe to repeat; it repairs an apply whose follow-up enqueue was lost to a crash.
   */
  async function ensureInFlight(runId: string): Promise<void> {
    const { meta, state, result } = await store.getRun(runId);
    if (state.status === 'created') {
      await managerQueue.report({ type: 'run_submitted', run_id: runId, at: meta.created_at }, { jobId: `${runId}.submit` });
      return;
    }
    if (isTerminalRun(state.status)) {
      // What finishing a run sets off is idempotent: abort calls still in flight, report to the parent,
      // start the fallback, run the end action, clean up its jobs.
      for (const def of meta.workflow.phases) {
        const p = state.phases[def.name];
        if (p?.status === 'cancelled' && (def.kind === 'agent' || def.kind === 'tool')) await redis.publish(`${options.prefix}:cancel`, phaseJobId(runId, def.name, p.iteration));
      }
      await managerQueue.report({ type: 'run_cleanup', run_id: runId, at: Date.now() }, { jobId: `${runId}.cleanup`, delayMs: CLEANUP_DELAY_MS });
      if (result) await reportToParent(meta, result);
      if (result) await endActions.enqueue(meta.run_id, state.resumes);
      if (state.status === 'failed' && meta.workflow.errorHandling.fallbackWorkflow) await startFallback(meta, meta.workflow.errorHandling.fallbackWorkflow);
      return;
    }
    for (const def of meta.workflow.phases) {
      const p = state.phases[def.name];
      if (p?.status === 'waiting' && def.kind === 'approval') {
        // The approval's deadline may have been lost with the follow-up of the apply that started the wait.
        const remaining = Math.max(0, (p.startedAt ?? Date.now()) + def.timeoutMs - Date.now());
        await managerQueue.report(
          { type: 'phase_deadline', run_id: runId, phase: def.name, iteration: p.iteration, at: Date.now() + remaining },
          { jobId: `${phaseJobId(runId, def.name, p.iteration)}.deadline`, delayMs: remaining },
        );
        continue;
      }
      if (!p || !IN_FLIGHT_PHASE_STATUSES.includes(p.status)) continue;
      if (def.kind === 'workflow' && def.workflow) {
        await startChildRun(meta, def.name, p.iteration, def.workflow);
        continue;
      }
      const jobId = phaseJobId(runId, def.name, p.iteration);
      const existing = await findPhaseJob(def, p.agent, jobId);
      if (!existing) await enqueuePhase(meta, def, p.iteration, Date.now(), p.agent);
      // A crash between adding the job and its deadline leaves the job without one: set it again
      // (a no-op while the deadline job exists; deterministic id).
      else await setDeadline(runId, def, p.iteration);
    }
  }

  async function handle(job: Job<ManagerJobData>, token?: string): Promise<void> {
    const parsed = ManagerJobDataSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`manager job ${job.id} has invalid data: ${parsed.error.message}`);
    const data = parsed.data;
    if (data.type === 'run_cleanup') {
      const run = await store.getRun(data.run_id);
      if (isTerminalRun(run.state.status)) await removeFinishedJobs(run.meta, run);
      await managerQueue.queue.remove(`${data.run_id}.cleanup`).catch(() => 0);
      return;
    }
    if (data.type === 'phase_deadline' && token && (await deadlineNotDue(job, data, token))) throw new DelayedError();
    const event = toSchedulerEvent(data);
    const output =
      data.type === 'phase_completed'
        ? { phase: data.phase, value: data.output_ref ? await store.readStagedOutput(data.run_id, data.output_ref) : data.output }
        : undefined;
    const { decision, meta, result } = await store.apply(
      data.run_id,
      (m, state, outputs) => enforceStateSchema(m, decide(m.workflow, state, event, { requirements: m.requirements, variables: m.variables, outputs, errors: state.errors }), outputs),
      { output, loadOutputs: loadsOutputs },
    );
    if (data.type === 'phase_completed' && data.output_ref) await redis.del(data.output_ref);
    if (!decision.accepted) {
      // A duplicate or stale report, or a replay after a crash between apply and enqueue.
      await ensureInFlight(data.run_id);
      return;
    }
    if (decision.events.some((e) => e.type === 'run_started')) {
      await store.setRunTrace(meta.run_id, spans.startRun(meta, event.at));
    }
    await carryOut(meta, decision, result);
    if (result) await endActions.enqueue(meta.run_id, decision.state.resumes);
    spans.onEvents(meta.run_id, decision.events);
    recordRunEvents(meta.workflow, decision.state, decision.events);
    // A redelivered report (its first delivery may have died between the apply and its follow-up
    // actions) also repairs what that follow-up would have done. Idempotent.
    if (job.attemptsStarted > 1 || job.attemptsMade > 0) await ensureInFlight(data.run_id);
  }

  /**
   * A phase's deadline counts from its enqueue, so it can pass while the job still waits in a busy
   * queue (or is held by the rate limiter), or while a live worker holds it. Then it is not due: the
   * deadline job is delayed by one more attempt's timeout and the phase goes on. It is due when the
   * job is gone, failed, or stalled past BullMQ's limit.
   */
  async function deadlineNotDue(job: Job<ManagerJobData>, data: Extract<ManagerJobData, { type: 'phase_deadline' }>, token: string): Promise<boolean> {
    const { meta, state } = await store.getRun(data.run_id);
    const def = meta.workflow.phases.find((p) => p.name === data.phase);
    const p = state.phases[data.phase];
    if (!def || !p || def.kind === 'approval' || p.iteration !== data.iteration || !IN_FLIGHT_PHASE_STATUSES.includes(p.status)) return false;
    const phaseJob = await findPhaseJob(def, p.agent, phaseJobId(data.run_id, data.phase, data.iteration));
    const jobState = phaseJob ? await phaseJob.getState() : 'missing';
    if (!['waiting', 'delayed', 'prioritized', 'active', 'waiting-children'].includes(jobState)) return false;
    await job.moveToDelayed(Date.now() + def.timeoutMs + deadlineGraceMs, token);
    return true;
  }

  /** The job of a phase iteration, in whichever of its possible role queues it is. */
  async function findPhaseJob(def: PhaseDefinition, chosen: string | undefined, jobId: string): Promise<Job | undefined> {
    const roles = new Set([chosen ?? def.agent, def.agent, ...(def.agentSelect?.type === 'load_balanced' ? def.agentSelect.agents : [])]);
    for (const role of roles) {
      const found = await queueFor(role).getJob(jobId);
      if (found) return found;
    }
    return undefined;
  }

  const endActions = await startEndActions(redis, options.prefix, options.endActions, warn);
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
      await endActions.close();
      await client.close();
      redis.disconnect();
    },
  };
  await manager.reconcile();
  return manager;
}

/** Child run ids: deterministic, so starting one twice is a no-op. */
function childRunId(runId: string, phase: string, iteration: number): string {
  return `${runId}.${phase}.${iteration}.run`;
}

function toSchedulerEvent(data: Exclude<ManagerJobData, { type: 'run_cleanup' }>): SchedulerEvent {
  switch (data.type) {
    case 'run_submitted':
      return { type: 'run_started', at: data.at };
    case 'phase_started':
      return { type: 'phase_started', at: data.at, phase: data.phase, iteration: data.iteration, attempt: data.attempt, agent: data.agent };
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
      // A deadline pushed back (the job was still waiting) fires later than its recorded time.
      return { type: 'phase_deadline', at: Math.max(data.at, Date.now()), phase: data.phase, iteration: data.iteration };
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
      warn(`Redis maxmemory-policy is "${policy}"; set it to "noeviction" (redis-server --maxmemory-policy noeviction), or runs and jobs may be evicted`);
    }
  } catch {
    // CONFIG may be disabled (managed Redis); nothing to check then.
  }
}
