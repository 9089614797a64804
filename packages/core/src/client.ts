/**
 * The submitter's side of AgentFleet: create and start a run, request its cancellation, follow its
 * events and read its result. Used by `fleet run`, `fleet submit` and the HTTP API; it talks only to
 * Redis (the run store, the agent queues and the manager queue), so it works whether the manager runs
 * in this process or elsewhere.
 */
import { BUDGET_EVENT, BudgetRaiseSchema, type Budget } from './workflow/budget.js';
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { logLevelSetting } from './config.js';
import { systemClock, type Clock } from './clock.js';
import { DEFAULT_DEADLINE_GRACE_MS, RunDriver, followUpThroughManager } from './engine/driver.js';
import { UNSERVED_GRACE_MS, servedRoles, unservedPhases } from './engine/unserved-roles.js';
import { FleetError } from './errors.js';
import { ManagerQueue } from './queues/manager-queue.js';
import type { RunLinks, RunMeta, RunResult } from './result.js';
import { decide, initialRunState, isTerminalRun } from './scheduler/decide.js';
import { validateEventData, validateVariableLimits } from './limits.js';
import { RunStore, type StoredRunEvent } from './store/run-store.js';
import { IdempotencyStore, MAX_IDEMPOTENCY_KEY_LENGTH, submissionFingerprint } from './store/idempotency.js';
import { createLogger, type FleetLogger } from './telemetry/logger.js';
import type { WorkflowDefinition } from './workflow/definition.js';
import { downstreamOf } from './workflow/graph.js';
import { resolveConcurrency, validatePriority, type ConcurrencySpec } from './workflow/concurrency.js';

/** Largest requirements text accepted, bytes (UTF-8). */
export const MAX_REQUIREMENTS_BYTES = 256 * 1024;

export interface SubmitRunInput {
  workflow: WorkflowDefinition;
  requirements: string;
  /** Override the workflow's `variables` defaults. */
  variables?: Record<string, string>;
  /** Provider the agents will use, recorded in the result (`anthropic` or `offline`). */
  provider: string;
  /** W3C trace context to join (the caller's span). */
  trace?: Record<string, string>;
  /** A deterministic run id (child runs, fallbacks); a UUID by default. */
  runId?: string;
  links?: RunLinks;
  /** Phases that start `completed`, with their outputs (a rerun keeps what came before `from`). */
  completed?: Record<string, unknown>;
  /** Extra context entries the run starts with (a fallback sees the failed run's outputs). */
  context?: Record<string, unknown>;
  /** Caps on the run's model spend; the tighter of this and the workflow's `budget` applies. */
  budget?: Budget | undefined;
  /** `batch`: every agent phase sends its calls through the Message Batches API (half price, hours). */
  callMode?: 'batch' | undefined;
  /**
   * Concurrency key (a template over the variables, e.g. `{{tenant}}`) and limit, overriding the
   * workflow's `concurrency`. Over the limit the run is `queued` until one of the key's runs finishes.
   * A child run (`links.parent`) keeps the key for fair sharing but never waits for a slot: its
   * parent holds one already.
   */
  concurrency?: ConcurrencySpec | undefined;
  /** 1 (least urgent) .. 10 (most urgent), overriding the workflow's `priority`; default 5. */
  priority?: number | undefined;
  /**
   * Idempotency key (1-255 characters): a repeat of this submission with the same key within 24 h
   * returns the first run instead of starting another; a repeat with a different submission is
   * refused (`CONFLICT`). Keys are fleet-wide: scope them yourself (e.g. `<user>:<key>`).
   */
  idempotencyKey?: string;
  /**
   * What makes two submissions with one key "the same" (any JSON value, compared by its canonical
   * JSON). @defaultValue the workflow's name and version, requirements, variables and budget
   */
  idempotencyFingerprint?: unknown;
}

export interface FleetClientOptions {
  /**
   * Extra time past `timeout × attempts + backoff` for the deadlines of the first phases, which the
   * client enqueues, ms. @defaultValue {@link DEFAULT_DEADLINE_GRACE_MS}
   */
  deadlineGraceMs?: number | undefined;
  /** @defaultValue `createLogger({ name: 'client' })` at `FLEET_LOG_LEVEL`, else `warn` */
  logger?: FleetLogger | undefined;
  /**
   * The clock a submission is dated with: the run's creation time, its start deadline
   * ({@link RUN_START_TIMEOUT_MS} later) and the deadlines of its first phases. @defaultValue {@link systemClock}
   */
  clock?: Clock | undefined;
}

export class FleetClient {
  readonly store: RunStore;
  readonly managerQueue: ManagerQueue;
  readonly idempotency: IdempotencyStore;
  private readonly driver: RunDriver;
  private readonly log: FleetLogger;
  private readonly clock: Clock;

  /**
   * @param redis - a shared connection for ordinary commands.
   * @param prefix - the fleet's key prefix (`FLEET_QUEUE_PREFIX`).
   */
  constructor(
    readonly redis: Redis,
    readonly prefix: string,
    options: FleetClientOptions = {},
  ) {
    this.store = new RunStore(redis, prefix);
    this.managerQueue = new ManagerQueue(redis, prefix);
    this.idempotency = new IdempotencyStore(redis, prefix, async (id) => (await redis.exists(this.store.runKey(id))) === 1);
    this.log = options.logger ?? createLogger({ name: 'client', level: logLevelSetting() ?? 'warn' });
    this.clock = options.clock ?? systemClock;
    this.driver = new RunDriver({
      redis,
      prefix,
      store: this.store,
      log: this.log,
      clock: this.clock,
      deadlineGraceMs: options.deadlineGraceMs ?? DEFAULT_DEADLINE_GRACE_MS,
      followUp: followUpThroughManager(this.managerQueue, this.clock),
    });
  }

  /**
   * Create a run and start it: the run's first decision is committed here and its first phase jobs are
   * added to their agent queues, with no hop through the manager (what only the manager does, such as
   * a child-workflow first phase, goes to it). A run with no concurrency limit is created and started
   * by one commit, its first phase jobs included: all of it is written or nothing. A run with a limit
   * must be admitted against its key first: its create writes the start into its outbox, and should
   * this process die before the start, or the start fail, the run is durable, and the manager starts
   * it once that outbox entry outlives the manager's `outboxLeaseMs` (30 s by default).
   *
   * @returns the new run id (a UUID unless `runId` is given).
   * @throws FleetError `INVALID_INPUT` when the requirements are empty, not text, or larger than
   *   {@link MAX_REQUIREMENTS_BYTES}, or a variable is not valid; `EVENT_REJECTED` when deciding the
   *   run's start threw (nothing is written then); Redis errors when the run could not be created:
   *   nothing is written then, unless the connection dropped after Redis ran the create and ioredis
   *   did not send it again, so retry with the same `runId` (a repeat is refused as a duplicate).
   */
  async submit(input: SubmitRunInput): Promise<string> {
    if (input.idempotencyKey !== undefined) return (await this.submitIdempotent(input)).runId;
    const { priority, concurrency } = this.validateSubmission(input);
    const runId = input.runId ?? randomUUID();
    const now = this.clock.now();
    const meta: RunMeta = {
      run_id: runId,
      workflow: input.workflow,
      requirements: input.requirements,
      variables: { ...input.workflow.variables, ...(input.variables ?? {}) },
      created_at: now,
      provider: input.provider,
      trace: input.trace ?? {},
      ...(input.links ? { links: input.links } : {}),
      ...(input.budget ? { budget: input.budget } : {}),
      ...(input.callMode ? { call_mode: input.callMode } : {}),
      ...(concurrency ? { concurrency } : {}),
      ...(priority !== undefined ? { priority } : {}),
    };
    const reused = Object.keys(input.completed ?? {});
    const initial = initialRunState(input.workflow, now);
    // A rerun's reused phases start completed: decided before the create, which writes the result.
    const state = reused.length > 0 ? decide(input.workflow, initial, { type: 'outputs_reused', at: now, phases: reused }).state : initial;
    const outputs = { ...(input.context ?? {}), ...(input.completed ?? {}) };
    if (concurrency?.limit === undefined) {
      // Nothing to wait for before the start: one commit creates the run, starts it and queues its
      // first phase jobs, all or nothing.
      await this.driver.createStarted(meta, state, { ...outputs });
      return runId;
    }
    const created = await this.store.createRun(meta, state, outputs);
    if (!created) return runId;
    try {
      // A run with a concurrency limit is created with its start in the outbox, then admitted against
      // its key (over the limit it waits `queued`, and a finishing run of the key starts it), started,
      // its first jobs queued, and the create's outbox entry cleared.
      await this.driver.startCreated(meta, state, { ...outputs });
    } catch (err) {
      // The run is stored with its start in the outbox: the manager starts it (or adds what this
      // start did not get to) once that entry outlives its lease.
      this.log.warn({ run_id: runId, err }, 'could not finish starting the run here; the manager will once its outbox lease passes');
    }
    return runId;
  }

  /**
   * {@link submit} with an idempotency key (`input.idempotencyKey`, required here), telling a new run
   * from a repeat: the key is claimed in Redis before the run is created, so concurrent repeats
   * cannot create two runs.
   *
   * @returns the run id and `created: false` when an earlier submission with the key made it.
   * @throws FleetError `INVALID_INPUT` for an empty or over-long key and what {@link submit} throws;
   *   `CONFLICT` when the key was used (within 24 h) for a different submission, or when the first
   *   submission with it is still being created (retry it).
   */
  /**
   * Check a submission as {@link submit} does, writing nothing: the requirements, the variables (the
   * size and count limits, then against the workflow's: a variable named like a phase is refused), the
   * priority and the concurrency key. A caller that writes something of its own before submitting
   * (the HTTP API's run labels) calls this first.
   *
   * @returns the run's priority and concurrency key as {@link submit} stores them.
   * @throws FleetError `INVALID_INPUT` naming the field and the limit or the fix.
   */
  validateSubmission(input: Pick<SubmitRunInput, 'workflow' | 'requirements' | 'variables' | 'priority' | 'concurrency' | 'links'>): {
    priority: number | undefined;
    concurrency: ConcurrencySpec | undefined;
  } {
    validateRequirements(input.requirements);
    validateVariableLimits(input.variables ?? {});
    validateVariables(input.workflow, { ...input.workflow.variables, ...(input.variables ?? {}) });
    const priority = input.priority ?? input.workflow.priority;
    if (priority !== undefined) validatePriority(priority);
    const concurrencySpec = input.concurrency ?? input.workflow.concurrency;
    const resolved = concurrencySpec ? resolveConcurrency(concurrencySpec, { ...input.workflow.variables, ...(input.variables ?? {}) }, input.requirements) : undefined;
    const concurrency = resolved && input.links?.parent ? { key: resolved.key } : resolved;
    return { priority, concurrency };
  }

  async submitIdempotent(input: SubmitRunInput): Promise<{ runId: string; created: boolean }> {
    const key = input.idempotencyKey;
    if (key === undefined || key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
      throw new FleetError('INVALID_INPUT', `idempotencyKey must be 1-${MAX_IDEMPOTENCY_KEY_LENGTH} characters (a UUID is a good key)`);
    }
    this.validateSubmission(input);
    const fingerprint = submissionFingerprint(
      input.idempotencyFingerprint ?? { workflow: [input.workflow.name, input.workflow.version], requirements: input.requirements, variables: input.variables ?? {}, budget: input.budget ?? null },
    );
    const claim = await this.idempotency.claim(key, fingerprint, input.runId ?? randomUUID());
    switch (claim.outcome) {
      case 'repeat':
        return { runId: claim.runId, created: false };
      case 'mismatch':
        throw new FleetError('CONFLICT', `idempotency key "${key}" was already used for a different submission (run ${claim.runId}); use a new key for a new submission`, { details: { run_id: claim.runId } });
      case 'in_progress':
        throw new FleetError('CONFLICT', `a submission with idempotency key "${key}" is still being created (run ${claim.runId}); retry in a moment`, { details: { run_id: claim.runId, in_progress: true } });
      case 'claimed':
        break;
    }
    try {
      const { idempotencyKey: _key, idempotencyFingerprint: _fingerprint, ...rest } = input;
      await this.submit({ ...rest, runId: claim.runId });
    } catch (err) {
      await this.idempotency.release(key, claim).catch(() => undefined);
      throw err;
    }
    await this.idempotency.settle(key, claim);
    return { runId: claim.runId, created: true };
  }

  /**
   * Deliver an external event (an approval, answers to questions) to a run.
   *
   * @param type - the event type a waiting phase asked for: `approval` (`data.approved` false
   *   rejects), `approve`, `reject`, or the type an agent's `wait` named (`answers`, `input`, …).
   * @param eventId - idempotency key (letters, digits, `_`, `-`; a UUID by default): the run applies an
   *   event with a given id once, however often it is sent or redelivered.
   * @throws FleetError `INVALID_INPUT` when `data` is nested deeper than `MAX_EVENT_DATA_DEPTH` (32)
   *   levels or larger than `MAX_EVENT_DATA_BYTES` (64 KiB) (nothing is sent then);
   *   `RUN_NOT_FOUND`; `INVALID_STATE` when the run already finished; `INVALID_INPUT` for a `budget`
   *   event whose data is not `{add_usd?, add_tokens?}` with at least one of them (docs/spending.md).
   */
  async sendEvent(runId: string, type: string, data: unknown = {}, eventId: string = randomUUID()): Promise<void> {
    validateEventData(data);
    if (type === BUDGET_EVENT) {
      const raise = BudgetRaiseSchema.safeParse(data);
      if (!raise.success) throw new FleetError('INVALID_INPUT', `a budget event's data must be {"add_usd": <USD>} and/or {"add_tokens": <tokens>}: ${raise.error.issues.map((i) => i.message).join('; ')}`);
    }
    const { state } = await this.store.getRun(runId);
    if (isTerminalRun(state.status)) throw new FleetError('INVALID_STATE', `run ${runId} is ${state.status}; events go to runs that are still going`);
    await this.managerQueue.report({ type: 'external_event', run_id: runId, event: type, data, id: eventId, at: Date.now() }, { jobId: `${runId}.event.${eventId}` });
  }

  /**
   * Continue a failed or cancelled run from where it stopped: phases that completed keep their
   * outputs and are not run again.
   *
   * @throws FleetError `RUN_NOT_FOUND`; `INVALID_STATE` unless the run failed or was cancelled.
   */
  async resume(runId: string): Promise<void> {
    const { state } = await this.store.getRun(runId);
    if (state.status !== 'failed' && state.status !== 'cancelled') {
      throw new FleetError('INVALID_STATE', `run ${runId} is ${state.status}; only failed or cancelled runs can be resumed`);
    }
    await this.managerQueue.report({ type: 'resume_requested', run_id: runId, at: Date.now() });
  }

  /**
   * Start a new run of the same workflow version that reuses the outputs of the phases before
   * `from` and runs `from` and everything after it again.
   *
   * @param options.requirements - edited requirements for the new run (default: the original's).
   * @returns the new run's id.
   * @throws FleetError `RUN_NOT_FOUND`; `INVALID_INPUT` when `from` is not a phase of the workflow.
   */
  async rerun(runId: string, options: { from: string; requirements?: string; provider?: string }): Promise<string> {
    const { meta } = await this.store.getRun(runId);
    const phases = meta.workflow.phases;
    if (!phases.some((p) => p.name === options.from)) {
      throw new FleetError('INVALID_INPUT', `--from "${options.from}" is not a phase of ${meta.workflow.name}; phases: ${phases.map((p) => p.name).join(', ')}`);
    }
    const rerun = new Set([options.from, ...downstreamOf(meta.workflow, options.from)]);
    const outputs = await this.store.getOutputs(runId);
    const completed: Record<string, unknown> = {};
    for (const p of phases) if (!rerun.has(p.name) && p.name in outputs) completed[p.name] = outputs[p.name];
    const newId = await this.submit({
      workflow: meta.workflow,
      requirements: options.requirements ?? meta.requirements,
      variables: meta.variables,
      provider: options.provider ?? meta.provider,
      links: { rerun_of: { run_id: runId, from: options.from } },
      completed,
    });
    await this.store.appendEvent(runId, { type: 'rerun_started', at: Date.now(), new_run_id: newId, from: options.from });
    await this.store.addLink(runId, 'reruns', newId);
    // The run re-run stays in Redis while its rerun is open (retention).
    await this.store.holdRun(runId, newId);
    return newId;
  }

  /**
   * Ask the manager to cancel a run: phases in flight are aborted, nothing else is enqueued.
   *
   * @throws FleetError `RUN_NOT_FOUND`
   */
  async cancel(runId: string, reason = 'cancelled by user'): Promise<void> {
    await this.store.getRun(runId);
    await this.managerQueue.report({ type: 'cancel_requested', run_id: runId, reason, at: Date.now() });
  }

  /**
   * The run's result (built from live state while it runs), with `unserved` listing the phases
   * queued to a role no live pool serves. @throws FleetError `RUN_NOT_FOUND`
   */
  async result(runId: string): Promise<RunResult> {
    const result = await this.store.getResult(runId);
    if (result.status === 'active' && result.phases.some((p) => p.status === 'queued')) {
      const { meta, state } = await this.store.getRun(runId);
      const now = Date.now();
      const unserved = unservedPhases(meta.workflow, state, await servedRoles(this.redis, this.prefix, now), now, UNSERVED_GRACE_MS);
      if (unserved.length > 0) result.unserved = unserved;
    }
    return result;
  }

  /**
   * Follow a run's events from the start (or after `afterId`) until its `run_finished` event.
   *
   * @param blocking - a connection reserved for this follower's blocking reads (XREAD BLOCK).
   * @param onEvent - called once per event, in order.
   * @returns the final result.
   */
  async follow(runId: string, blocking: Redis, onEvent: (e: StoredRunEvent) => void, afterId = '0'): Promise<RunResult> {
    let last = afterId;
    for (;;) {
      const events = await this.store.readEvents(runId, last, 1000, blocking);
      let finished = false;
      for (const e of events) {
        last = e.id;
        onEvent(e);
        if (e.event.type === 'run_finished') finished = true;
        else if (e.event.type === 'run_resumed') finished = false;
      }
      if (finished) {
        // A resumed run has several run_finished events: it is over unless a resume is already written after this one.
        const after = await this.store.readEvents(runId, last);
        if (!after.some((e) => e.event.type === 'run_resumed')) {
          for (const e of after) onEvent(e);
          return this.result(runId);
        }
        continue;
      }
      if (events.length === 0) {
        // A run that finished before we started reading still has its final event; this only guards
        // against a run whose stream was trimmed away.
        const { state } = await this.store.getRun(runId);
        if (isTerminalRun(state.status) && (await this.store.readEvents(runId, last)).length === 0) return this.result(runId);
      }
    }
  }

  async close(): Promise<void> {
    await this.driver.close();
    await this.managerQueue.close();
  }
}

/**
 * Variables may not take the name of a phase (or `requirements`, `errors`): in templates and
 * conditions they would hide that phase's output.
 *
 * @throws FleetError `INVALID_INPUT` naming the variable.
 */
export function validateVariables(workflow: WorkflowDefinition, variables: Record<string, string>): void {
  const reserved = new Set(['requirements', 'errors', ...workflow.phases.map((p) => p.name)]);
  for (const name of Object.keys(variables)) {
    if (reserved.has(name)) {
      throw new FleetError('INVALID_INPUT', `variable "${name}" has the name of ${name === 'requirements' || name === 'errors' ? 'a built-in context entry' : 'a phase'} of ${workflow.name}; rename it`);
    }
  }
}

/** @throws FleetError `INVALID_INPUT` naming the limit. */
export function validateRequirements(requirements: unknown): asserts requirements is string {
  if (typeof requirements !== 'string') throw new FleetError('INVALID_INPUT', 'requirements must be a string of text');
  if (requirements.trim().length === 0) throw new FleetError('INVALID_INPUT', 'requirements are empty; describe what to build');
  const bytes = Buffer.byteLength(requirements, 'utf8');
  if (bytes > MAX_REQUIREMENTS_BYTES) {
    throw new FleetError('INVALID_INPUT', `requirements are ${bytes} bytes; the limit is ${MAX_REQUIREMENTS_BYTES} bytes (256 KiB)`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000E-\u001F]/.test(requirements)) {
    throw new FleetError('INVALID_INPUT', 'requirements contain binary control characters; send plain text');
  }
}
