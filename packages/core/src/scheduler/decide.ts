/**
 * The functional core: `decide(definition, state, event)` returns the run's next state, the actions
 * the shell must take, and the run events to append. No Redis, no clock, no randomness: every rule
 * of a workflow's semantics lives here and is unit-tested without any process.
 *
 * Rules (ARCHITECTURE.md, "Semantics to honour"):
 * - a phase is queued when every dependency completed (an `optional` dependency may also have failed
 *   or been skipped); independent phases are queued together;
 * - a required dependency that failed, was skipped or cancelled skips the dependent, with the reason;
 * - a transient failure is retried while the phase has attempts left and the run is under
 *   `max_total_retries`; anything else fails the phase;
 * - a failed phase with `continue_on_error` false fails the run at once, cancels phases in flight and
 *   skips the rest; with true, the error is recorded and independent phases go on;
 * - events for an older iteration, or for a phase that already ended, are refused (fencing).
 */
import { FleetError, type SerializedFleetError } from '../errors.js';
import type { PhaseDefinition, WorkflowDefinition } from '../workflow/definition.js';
import {
  IN_FLIGHT_PHASE_STATUSES,
  TERMINAL_PHASE_STATUSES,
  TERMINAL_RUN_STATUSES,
  type Decision,
  type PhaseState,
  type RunEvent,
  type RunState,
  type SchedulerAction,
  type SchedulerEvent,
  type TokenUsage,
} from './types.js';

/** The state of a run that was just created (status `created`, every phase `pending`). */
export function initialRunState(definition: WorkflowDefinition, createdAt: number): RunState {
  const phases: Record<string, PhaseState> = {};
  for (const phase of definition.phases) {
    phases[phase.name] = { status: 'pending', iteration: 0, attempts: 0, usage: { input_tokens: 0, output_tokens: 0 } };
  }
  return {
    status: 'created',
    version: 0,
    totalRetries: 0,
    phases,
    errors: [],
    createdAt,
    usage: { input_tokens: 0, output_tokens: 0 },
  };
}

export function isTerminalRun(status: RunState['status']): boolean {
  return TERMINAL_RUN_STATUSES.includes(status);
}

/** Compute the next state, actions and run events for one event. Never throws for a well-formed state. */
export function decide(definition: WorkflowDefinition, state: RunState, event: SchedulerEvent): Decision {
  const refused: Decision = { accepted: false, state, actions: [], events: [] };
  if (isTerminalRun(state.status)) return refused;

  const ctx = new DecisionBuilder(definition, structuredClone(state));
  const applied = ctx.apply(event);
  if (!applied) return refused;
  ctx.advance(event.at);
  ctx.state.version += 1;
  return { accepted: true, state: ctx.state, actions: ctx.actions, events: ctx.events };
}

class DecisionBuilder {
  readonly actions: SchedulerAction[] = [];
  readonly events: RunEvent[] = [];
  private readonly byName: Map<string, PhaseDefinition>;

  constructor(
    private readonly definition: WorkflowDefinition,
    readonly state: RunState,
  ) {
    this.byName = new Map(definition.phases.map((p) => [p.name, p]));
  }

  /** Apply the event to the state; false when it is stale or does not apply. */
  apply(event: SchedulerEvent): boolean {
    switch (event.type) {
      case 'run_started': {
        if (this.state.status !== 'created') return false;
        this.state.status = 'active';
        this.state.startedAt = event.at;
        this.events.push({ type: 'run_started', at: event.at });
        return true;
      }
      case 'phase_started': {
        const phase = this.current(event.phase, event.iteration);
        if (!phase) return false;
        // A start that arrives after a later attempt's start (reordered reports) only raises the count.
        if (event.attempt < phase.attempts) return false;
        phase.status = 'running';
        phase.attempts = event.attempt;
        phase.startedAt ??= event.at;
        this.events.push({
          type: 'phase_started',
          at: event.at,
          phase: event.phase,
          agent: this.def(event.phase).agent,
          iteration: event.iteration,
          attempt: event.attempt,
        });
        return true;
      }
      case 'phase_completed': {
        const phase = this.current(event.phase, event.iteration);
        if (!phase) return false;
        addUsage(phase.usage, event.usage);
        addUsage(this.state.usage, event.usage);
        this.state.model = event.model;
        phase.status = 'completed';
        phase.attempts = Math.max(phase.attempts, event.attempt);
        phase.startedAt ??= event.at;
        phase.finishedAt = event.at;
        phase.durationMs = event.at - phase.startedAt;
        delete phase.error;
        this.events.push({
          type: 'phase_completed',
          at: event.at,
          phase: event.phase,
          iteration: event.iteration,
          attempt: event.attempt,
          duration_ms: phase.durationMs,
        });
        return true;
      }
      case 'phase_attempt_failed': {
        const phase = this.current(event.phase, event.iteration);
        if (!phase) return false;
        addUsage(phase.usage, event.usage);
        addUsage(this.state.usage, event.usage);
        phase.attempts = Math.max(phase.attempts, event.attempt);
        phase.startedAt ??= event.at;
        const underCap = this.state.totalRetries < this.definition.errorHandling.maxTotalRetries;
        if (event.willRetry && underCap) {
          this.state.totalRetries += 1;
          phase.status = 'retrying';
          phase.error = event.error;
          this.events.push({ type: 'phase_retry', at: event.at, phase: event.phase, attempt: event.attempt, error: event.error });
          return true;
        }
        const error =
          event.willRetry && !underCap
            ? new FleetError('RETRIES_EXHAUSTED', `the run used all ${this.definition.errorHandling.maxTotalRetries} retries of max_total_retries; last error: ${event.error.message}`, {
                details: { last_error: event.error },
              }).toJSON()
            : event.error;
        this.failPhase(event.phase, phase, error, event.at);
        return true;
      }
      case 'phase_deadline': {
        const phase = this.current(event.phase, event.iteration);
        if (!phase) return false;
        const def = this.def(event.phase);
        const error = new FleetError('PHASE_TIMEOUT', `phase "${event.phase}" did not report within its deadline (timeout ${def.timeoutMs / 1000} s × ${def.retries + 1} attempts); its worker may have died`, {
          retryable: false,
        }).toJSON();
        this.actions.push({ type: 'cancel_phase', phase: event.phase, iteration: event.iteration });
        this.failPhase(event.phase, phase, error, event.at);
        return true;
      }
      case 'cancel_requested': {
        this.state.cancelReason = event.reason;
        this.stopEverything(event.at, `run cancelled: ${event.reason}`, 'cancelled');
        this.finish('cancelled', event.at);
        return true;
      }
    }
  }

  /** After an event: queue what is ready, skip what cannot run, and finish the run when nothing is left. */
  advance(at: number): void {
    if (isTerminalRun(this.state.status)) return;
    // Phases are in dependency order, so one pass settles every phase whose dependencies are settled.
    for (const def of this.definition.phases) {
      const phase = this.phase(def.name);
      if (phase.status !== 'pending') continue;
      const verdict = this.readiness(def);
      if (verdict.kind === 'ready') {
        phase.status = 'queued';
        phase.iteration += 1;
        phase.attempts = 0;
        phase.queuedAt = at;
        delete phase.startedAt;
        this.actions.push({ type: 'enqueue_phase', phase: def.name, iteration: phase.iteration });
        this.events.push({ type: 'phase_queued', at, phase: def.name, agent: def.agent, iteration: phase.iteration });
      } else if (verdict.kind === 'blocked') {
        phase.status = 'skipped';
        phase.reason = verdict.reason;
        this.events.push({ type: 'phase_skipped', at, phase: def.name, reason: verdict.reason });
      }
    }
    const unfinished = Object.values(this.state.phases).some((p) => !TERMINAL_PHASE_STATUSES.includes(p.status));
    if (!unfinished) this.finish('completed', at);
  }

  private readiness(def: PhaseDefinition): { kind: 'ready' } | { kind: 'wait' } | { kind: 'blocked'; reason: string } {
    for (const dep of def.dependsOn) {
      const status = this.phase(dep.phase).status;
      if (status === 'completed') continue;
      if (!TERMINAL_PHASE_STATUSES.includes(status)) return { kind: 'wait' };
      if (!dep.optional) return { kind: 'blocked', reason: `dependency "${dep.phase}" ${status === 'failed' ? 'failed' : `was ${status}`}` };
    }
    return { kind: 'ready' };
  }

  private failPhase(name: string, phase: PhaseState, error: SerializedFleetError, at: number): void {
    phase.status = 'failed';
    phase.error = error;
    phase.finishedAt = at;
    phase.durationMs = at - (phase.startedAt ?? phase.queuedAt ?? at);
    this.state.errors.push({ phase: name, error });
    this.events.push({ type: 'phase_failed', at, phase: name, error });
    if (!this.def(name).continueOnError) {
      this.stopEverything(at, `run failed: phase "${name}" failed`, 'skipped');
      this.finish('failed', at);
    }
  }

  /** Cancel phases in flight and settle pending ones as `pendingStatus`. */
  private stopEverything(at: number, reason: string, pendingStatus: 'skipped' | 'cancelled'): void {
    for (const def of this.definition.phases) {
      const phase = this.phase(def.name);
      if (IN_FLIGHT_PHASE_STATUSES.includes(phase.status)) {
        phase.status = 'cancelled';
        phase.reason = reason;
        phase.finishedAt = at;
        this.actions.push({ type: 'cancel_phase', phase: def.name, iteration: phase.iteration });
        this.events.push({ type: 'phase_cancelled', at, phase: def.name, reason });
      } else if (phase.status === 'pending') {
        phase.status = pendingStatus;
        phase.reason = reason;
        this.events.push(
          pendingStatus === 'skipped'
            ? { type: 'phase_skipped', at, phase: def.name, reason }
            : { type: 'phase_cancelled', at, phase: def.name, reason },
        );
      }
    }
  }

  private finish(status: 'completed' | 'failed' | 'cancelled', at: number): void {
    this.state.status = status;
    this.state.finishedAt = at;
    const duration = at - (this.state.startedAt ?? this.state.createdAt);
    this.actions.push({ type: 'finish_run', status });
    this.events.push({ type: 'run_finished', at, status, duration_ms: duration });
  }

  /** The phase's state when `iteration` is its current one and it is still in flight; else undefined. */
  private current(name: string, iteration: number): PhaseState | undefined {
    const phase = this.state.phases[name];
    if (!phase || !this.byName.has(name)) return undefined;
    if (phase.iteration !== iteration) return undefined;
    if (!IN_FLIGHT_PHASE_STATUSES.includes(phase.status)) return undefined;
    return phase;
  }

  private phase(name: string): PhaseState {
    const phase = this.state.phases[name];
    if (!phase) throw new TypeError(`run state has no phase "${name}"; the state does not belong to this definition`);
    return phase;
  }

  private def(name: string): PhaseDefinition {
    const def = this.byName.get(name);
    if (!def) throw new TypeError(`workflow "${this.definition.name}" has no phase "${name}"`);
    return def;
  }
}

function addUsage(into: TokenUsage, add: TokenUsage): void {
  into.input_tokens += add.input_tokens;
  into.output_tokens += add.output_tokens;
}
