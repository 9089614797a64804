/**
 * What one fire of a schedule does: decide once (start, skip under the overlap policy, or drop a
 * missed fire under the catch-up policy), then carry the decision out idempotently. Used by the
 * manager for each fire job, and by `trigger` (run now) in the HTTP API and the CLI.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { validateVariables, type FleetClient } from '../client.js';
import { FleetError, toFleetError } from '../errors.js';
import { RunLabelStore } from '../registry/run-labels.js';
import { TemplateRegistry } from '../registry/template-registry.js';
import type { WorkflowDefinition } from '../workflow/definition.js';
import { compileSchedule, latestFireTime } from './schedule-definition.js';
import { recordScheduleFire } from './schedule-metrics.js';
import { ScheduleStore, type FireDecision, type ScheduleRecord } from './schedule-store.js';

/** A fire's outcome: the decision, or `dropped` for a fire of a schedule that is gone, paused or replaced. */
export type FireOutcome = FireDecision | { action: 'dropped'; reason: string };

export interface FireInput {
  /** The schedule's name. */
  schedule: string;
  /** The fire time BullMQ scheduled (epoch ms); absent for a trigger (run now). */
  fireTime?: number;
  /** The schedule definition id the fire job carries; a fire of another (removed) definition is dropped. */
  scheduleId?: string;
  /** @defaultValue `Date.now()` */
  now?: number;
}

export class ScheduleRunner {
  readonly store: ScheduleStore;
  private readonly labels: RunLabelStore;
  private readonly registry: TemplateRegistry;

  /**
   * @param client - submits the runs (the run id is decided once per fire, so a repeated submit is a no-op).
   * @param resolveWorkflow - finds the schedule's workflow at each fire. @defaultValue the template registry, then the built-ins
   */
  constructor(
    readonly redis: Redis,
    readonly prefix: string,
    private readonly client: FleetClient,
    private readonly options: { resolveWorkflow?: (name: string) => Promise<WorkflowDefinition> } = {},
  ) {
    this.store = new ScheduleStore(redis, prefix);
    this.labels = new RunLabelStore(redis, prefix);
    this.registry = new TemplateRegistry(redis, prefix);
  }

  /**
   * Validate a schedule, check that its workflow exists and takes its variables, store it and
   * register its job scheduler. The first fire comes at the next fire time (for `every`: at once).
   *
   * @param raw - the schedule as a user writes it (`ScheduleInputSchema`).
   * @param by.createdBy - the API key id (or `cli`) its runs are labelled with as `user_id`.
   * @param by.provider - recorded on its runs (`anthropic` or `offline`).
   * @throws FleetError `INVALID_INPUT` naming each bad field; `WORKFLOW_NOT_FOUND`; `CONFLICT` when the name is taken.
   */
  async add(raw: unknown, by: { createdBy: string; provider: string; now?: number }): Promise<ScheduleRecord> {
    const definition = compileSchedule(raw);
    const workflow = await this.resolve(definition.workflow);
    try {
      validateVariables(workflow, { ...workflow.variables, ...definition.variables });
    } catch (err) {
      const message = (err as Error).message;
      throw new FleetError('INVALID_INPUT', `variables: ${message}`, { details: { issues: [{ path: 'variables', message }] } });
    }
    const now = by.now ?? Date.now();
    return this.store.create({ id: randomUUID(), definition, status: 'active', created_at: now, updated_at: now, created_by: by.createdBy, provider: by.provider });
  }

  private resolve(name: string): Promise<WorkflowDefinition> {
    return (this.options.resolveWorkflow ?? ((n: string) => this.registry.resolve(n)))(name);
  }

  /**
   * Fire a schedule: a fire of the clock (`fireTime` given) or a trigger (run now). Safe to repeat for
   * the same fire: the decision is made once and the run it names is started once.
   *
   * A fire taken more than the schedule's `misfire_grace` after its time was missed (no manager ran):
   * under `catch_up: none` it is recorded as `missed` and starts nothing; under `latest` it starts one
   * run for the most recent fire time that passed. Then the overlap policy applies: while the
   * schedule's previous run is still going, `skip` starts nothing, `allow` starts a second run, and
   * `cancel_previous` cancels the previous run and starts the new one.
   *
   * @throws FleetError `SCHEDULE_NOT_FOUND` for a trigger of an unknown schedule; `WORKFLOW_NOT_FOUND`
   *   or `INVALID_INPUT` when the run could not be started (recorded as the schedule's `last_error`).
   */
  async fire(input: FireInput): Promise<FireOutcome> {
    const now = input.now ?? Date.now();
    const manual = input.fireTime === undefined;
    let record: ScheduleRecord;
    try {
      record = await this.store.get(input.schedule);
    } catch (err) {
      if (!manual && err instanceof FleetError && err.code === 'SCHEDULE_NOT_FOUND') return { action: 'dropped', reason: `schedule "${input.schedule}" was removed` };
      throw err;
    }
    if (input.scheduleId !== undefined && input.scheduleId !== record.id) return { action: 'dropped', reason: `schedule "${input.schedule}" was replaced` };
    if (!manual && record.status !== 'active') return { action: 'dropped', reason: `schedule "${input.schedule}" is paused` };

    const def = record.definition;
    const slot = input.fireTime ?? now;
    const late = !manual && now - slot > def.misfireGraceMs;
    const fireTime = late && def.catchUp === 'latest' ? latestFireTime(def, slot, now) : slot;
    const { decision, decidedHere } = await this.store.decideFire(record, {
      fireKey: manual ? `manual-${randomUUID()}` : String(slot),
      runId: randomUUID(),
      fireTime,
      now,
      missed: late && def.catchUp === 'none',
      extra: { ...(manual ? { manual: true } : {}), ...(late && def.catchUp === 'latest' ? { caught_up: true } : {}) },
    });
    // Counted once per fire, by the call that decided it.
    if (decidedHere) recordScheduleFire(def.name, decision.action);
    if (decision.action === 'start' && decision.run_id) await this.start(record, decision, decision.run_id);
    return decision;
  }

  /** Carry out a decision to start a run (idempotent: labels are a hash, the run id is fixed). */
  private async start(record: ScheduleRecord, decision: FireDecision, runId: string): Promise<void> {
    const def = record.definition;
    const fireTime = new Date(decision.fire_time).toISOString();
    if (decision.cancel_run_id) {
      await this.client.cancel(decision.cancel_run_id, `schedule "${def.name}" fired at ${fireTime} with overlap cancel_previous`).catch((err: unknown) => {
        // A run that finished or is gone needs no cancelling.
        if (!(err instanceof FleetError && err.code === 'RUN_NOT_FOUND')) throw err;
      });
    }
    try {
      const workflow = await this.resolve(def.workflow);
      await this.labels.set(runId, { user_id: record.created_by, template: def.workflow, schedule: def.name, schedule_fire_time: fireTime });
      await this.client.submit({
        runId,
        workflow,
        requirements: def.requirements,
        variables: def.variables,
        provider: record.provider,
        links: {
          schedule: {
            name: def.name,
            fire_time: fireTime,
            ...(decision.manual ? { manual: true } : {}),
            ...(decision.caught_up ? { caught_up: true } : {}),
          },
        },
      });
    } catch (err) {
      const error = toFleetError(err);
      if (error.code === 'WORKFLOW_NOT_FOUND' || error.code === 'INVALID_INPUT' || error.code === 'INVALID_WORKFLOW') {
        await this.store.recordStartFailure(def.name, runId, `${fireTime}: ${error.message}`);
      }
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.store.close();
  }
}
