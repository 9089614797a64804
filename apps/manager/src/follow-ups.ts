/**
 * The manager's follow-ups: what a committed decision leaves to the manager once its phase jobs are
 * added and cancelled (`RunDriver`): the child run of a `workflow:` phase (and its stop), a finished
 * child run's report to its parent's phase, the end action of a finished run, and the fallback
 * workflow of a failed one. The manager's driver calls {@link FollowUps.carryOut} itself; workers
 * hand the same actions to the manager queue as `run_followup` reports.
 */
import { contextOfSpanRef, carrierUnder, phaseJobId, toFleetError, FleetError, type FleetClient, type RunMeta, type RunResult, type RunState, type SpanRef, type WorkflowDefinition, systemClock, type Clock } from '@agentfleet/core';
import type { FollowUpAction, ManagerQueue, RunStore } from '@agentfleet/core/internal';
import type { EndActions } from './end-actions.js';

/** What {@link FollowUps} works with. */
export interface FollowUpsOptions {
  store: RunStore;
  /** Submits (and starts) child and fallback runs the way any client does; stops child runs. */
  client: FleetClient;
  /** Where a child run's report to its parent, and a child that could not start, go. */
  managerQueue: ManagerQueue;
  /** Queues a finished run's end action. */
  endActions: Pick<EndActions, 'enqueue'>;
  /** Finds a workflow by name, for child-workflow phases and `fallback_workflow`. */
  resolveWorkflow: (name: string) => Promise<WorkflowDefinition>;
  /** Where a fallback that could not start is reported. */
  warn: (message: string) => void;
  /** The clock reports and run events are dated with (epoch ms); the system clock by default. */
  clock?: Clock | undefined;
}

/**
 * Carries out the follow-up actions of a committed decision. Every action is idempotent (child and
 * fallback run ids are deterministic, parent reports and end actions have deterministic job ids),
 * so a replay of the same actions repeats none of it.
 */
export class FollowUps {
  private readonly clock: Clock;

  constructor(private readonly options: FollowUpsOptions) {
    this.clock = options.clock ?? systemClock;
  }

  /**
   * Carry out `actions` of run `meta` as `state` shows it.
   * @param result - the run's result, for a finished run (`finish_run` needs it; without it nothing is reported).
   * @throws Redis errors (the caller's outbox entry stays, so the whole list is carried out again).
   */
  async carryOut(meta: RunMeta, actions: readonly FollowUpAction[], state: RunState, result: RunResult | undefined): Promise<void> {
    for (const action of actions) {
      switch (action.type) {
        case 'start_child_run':
          await this.startChildRun(meta, state, action.phase, action.iteration, action.workflow);
          break;
        case 'cancel_phase':
          // Agent and tool phases were cancelled by whoever committed the decision; a child run is stopped here.
          await this.options.client.cancel(childRunId(meta.run_id, action.phase, action.iteration), `parent run ${meta.run_id} stopped phase "${action.phase}"`).catch(() => undefined);
          break;
        case 'finish_run':
          if (result) {
            await this.reportToParent(meta, result);
            await this.options.endActions.enqueue(meta, state.resumes);
          }
          break;
        case 'start_fallback':
          await this.startFallback(meta, action.workflow);
          break;
      }
    }
  }

  /** Start the child run of a `workflow:` phase (idempotent: the child's id is deterministic). */
  private async startChildRun(meta: RunMeta, state: RunState, phase: string, iteration: number, workflowName: string): Promise<void> {
    const { store, client, managerQueue } = this.options;
    const childId = childRunId(meta.run_id, phase, iteration);
    let submitted = false;
    try {
      const workflow = await this.options.resolveWorkflow(workflowName);
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
      // The child that never started ends its phase as a failed child would.
      await managerQueue.report({
        type: 'child_run_finished', run_id: meta.run_id, phase, iteration, child_run_id: childId, status: 'failed', at: this.clock.now(),
        error: new FleetError('CHILD_RUN_FAILED', `could not start workflow "${workflowName}": ${error.message}`).toJSON(),
        usage: { input_tokens: 0, output_tokens: 0 },
      });
    }
  }

  /**
   * A finished child run reports its outcome to its parent's phase (`child_run_finished`, job id
   * `<phaseJobId>.child`, so a replay adds it once): its result as the phase's output, or the error
   * it did not complete with.
   */
  private async reportToParent(meta: RunMeta, result: RunResult): Promise<void> {
    const { store, managerQueue } = this.options;
    const parent = meta.links?.parent;
    if (!parent) return;
    const report = { type: 'child_run_finished', run_id: parent.run_id, phase: parent.phase, iteration: parent.iteration, child_run_id: result.run_id, at: this.clock.now(), usage: result.usage } as const;
    const jobId = `${phaseJobId(parent.run_id, parent.phase, parent.iteration)}.child`;
    if (result.status === 'completed') {
      const output = await store.outputForReport(parent.run_id, parent.phase, parent.iteration, 1, { run_id: result.run_id, results: result.results });
      await managerQueue.report({ ...report, status: 'completed', ...output, model: result.model ?? 'none' }, { jobId });
    } else {
      const error = new FleetError('CHILD_RUN_FAILED', `child run ${result.run_id} (${result.workflow.name}) ${result.status}${result.errors[0] ? `: ${result.errors[0].error.message}` : ''}`, {
        details: { child_run_id: result.run_id },
      });
      await managerQueue.report({ ...report, status: result.status === 'cancelled' ? 'cancelled' : 'failed', error: error.toJSON() }, { jobId });
    }
  }

  /** Start the failed run's fallback workflow on the same requirements, with its outputs in context. */
  private async startFallback(meta: RunMeta, workflowName: string): Promise<void> {
    const { store, client, warn } = this.options;
    const fallbackId = `${meta.run_id}.fallback`;
    try {
      const workflow = await this.options.resolveWorkflow(workflowName);
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
          await store.appendEvent(meta.run_id, { type: 'fallback_started', at: this.clock.now(), workflow: workflowName, fallback_run_id: fallbackId });
        }
      }
    } catch (err) {
      warn(`run ${meta.run_id}: fallback workflow "${workflowName}" could not start: ${toFleetError(err).message}`);
      await store.appendEvent(meta.run_id, { type: 'fallback_failed', at: this.clock.now(), workflow: workflowName, error: toFleetError(err).message });
    }
  }
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
