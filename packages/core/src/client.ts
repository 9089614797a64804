/**
 * The submitter's side of AgentFleet: create a run, request its cancellation, follow its events and
 * read its result. Used by `fleet run`, `fleet submit` and the HTTP API; it talks only to Redis (the
 * run store and the manager queue), so it works whether the manager runs in this process or elsewhere.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { FleetError } from './errors.js';
import { ManagerQueue } from './queues/manager-queue.js';
import type { RunMeta, RunResult } from './result.js';
import { initialRunState, isTerminalRun } from './scheduler/decide.js';
import { RunStore, type StoredRunEvent } from './store/run-store.js';
import type { WorkflowDefinition } from './workflow/definition.js';

/** Largest requirements text accepted, bytes (UTF-8). */
export const MAX_REQUIREMENTS_BYTES = 256 * 1024;

export interface SubmitRunInput {
  workflow: WorkflowDefinition;
  requirements: string;
  variables?: Record<string, string>;
  /** Provider the agents will use, recorded in the result (`anthropic` or `offline`). */
  provider: string;
  /** W3C trace context to join (the caller's span). */
  trace?: Record<string, string>;
}

export class FleetClient {
  readonly store: RunStore;
  readonly managerQueue: ManagerQueue;

  /**
   * @param redis - a shared connection for ordinary commands.
   * @param prefix - the fleet's key prefix (`FLEET_QUEUE_PREFIX`).
   */
  constructor(
    readonly redis: Redis,
    readonly prefix: string,
  ) {
    this.store = new RunStore(redis, prefix);
    this.managerQueue = new ManagerQueue(redis, prefix);
  }

  /**
   * Create a run and hand it to the manager.
   *
   * @returns the new run id (a UUID).
   * @throws FleetError `INVALID_INPUT` when the requirements are empty, not text, or larger than
   *   {@link MAX_REQUIREMENTS_BYTES}.
   */
  async submit(input: SubmitRunInput): Promise<string> {
    validateRequirements(input.requirements);
    const runId = randomUUID();
    const now = Date.now();
    const meta: RunMeta = {
      run_id: runId,
      workflow: input.workflow,
      requirements: input.requirements,
      variables: input.variables ?? {},
      created_at: now,
      provider: input.provider,
      trace: input.trace ?? {},
    };
    await this.store.createRun(meta, initialRunState(input.workflow, now));
    await this.managerQueue.report({ type: 'run_submitted', run_id: runId, at: now }, { jobId: `${runId}.submit` });
    return runId;
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

  /** The run's result (built from live state while it runs). @throws FleetError `RUN_NOT_FOUND` */
  async result(runId: string): Promise<RunResult> {
    return this.store.getResult(runId);
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
      for (const e of events) {
        last = e.id;
        onEvent(e);
        if (e.event.type === 'run_finished') return this.result(runId);
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
    await this.managerQueue.close();
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
