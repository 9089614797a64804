/**
 * Batch decide: several entries (each one caller's events, with the phase output a completion
 * carries) decided in order as one decision, for one commit. Pure, like {@link decide}: the group
 * commit (several commits of one run meeting in one process) and its merge rule live here, so the
 * rule is unit-tested without Redis.
 *
 * Rules:
 * - entries are decided in order, each event on the state the previous ones left; an event
 *   {@link decide} refuses (stale, duplicate, run ended) is left out;
 * - an entry's output is in the context its own events see (conditions, step-action rules), and is
 *   written (it joins the decision's `outputs`, and the context of later entries) only when one of
 *   its events was accepted: a refused completion's output never reaches the shared context;
 * - an event whose decision throws refuses its whole entry: the decision goes back to what it was
 *   before that entry (decide never changes the state it is given), and the entries before and after
 *   it are decided as usual; the entry's `rejected` says why;
 * - every event sees the shell's inputs (queue depths, deadline grace); the depths count the jobs
 *   that earlier events of the batch queued, so `load_balanced` phases queued by several events
 *   spread as they would one event at a time;
 * - merging drops what a later event undid: the enqueue, child start, wait or deadline of an
 *   iteration no longer in flight at the end (a failure that stopped the run came after the
 *   completion that queued it), and the cancel of an iteration queued within the same decision (no
 *   job was ever added).
 */
import type { TemplateContext } from '../workflow/context.js';
import type { WorkflowDefinition } from '../workflow/definition.js';
import { decide } from './decide.js';
import { IN_FLIGHT_PHASE_STATUSES, type DecideInputs, type Decision, type PhaseState, type RunState, type SchedulerAction, type SchedulerEvent } from './types.js';

/** One caller's part of a batch: its events, in order, and the phase output its completion carries. */
export interface BatchEntry {
  events: readonly SchedulerEvent[];
  /** Written into the shared context when one of `events` is accepted. */
  output?: { phase: string; value: unknown } | undefined;
}

/** The decision for a batch, and for each entry whether any of its events was accepted. */
export interface BatchDecision extends Decision {
  /** Per entry, in order: true when at least one of its events was accepted. */
  entries: boolean[];
  /** Per entry, in order: the event whose decision threw and what it threw, when one did. */
  rejected: Array<{ event: SchedulerEvent; thrown: unknown } | undefined>;
}

/** Requirements, variables and the shared context's phase outputs before the batch, and the shell's inputs. */
export type BatchContext = Pick<TemplateContext, 'requirements' | 'variables' | 'outputs'> & DecideInputs;

/** Depths with one more job for each role an enqueue names (roles the depths do not list are left out). */
function countQueued(depths: Record<string, number> | undefined, actions: readonly SchedulerAction[]): Record<string, number> | undefined {
  if (!depths) return undefined;
  let out = depths;
  for (const a of actions) {
    if (a.type !== 'enqueue_phase' || a.agent === undefined || !Object.hasOwn(depths, a.agent)) continue;
    if (out === depths) out = { ...depths };
    out[a.agent] = (out[a.agent] ?? 0) + 1;
  }
  return out;
}

/**
 * Decide a batch of entries as one decision.
 *
 * @param context - the run's requirements, variables and phase outputs as stored (not mutated).
 * @param decideEvent - {@link decide}, or a wrapper around it (a test seam that makes it throw).
 * @returns `accepted` when any event was; `state` unchanged and no actions when none was.
 */
export function decideBatch(
  definition: WorkflowDefinition,
  state: RunState,
  entries: readonly BatchEntry[],
  context: BatchContext,
  decideEvent: typeof decide = decide,
): BatchDecision {
  const accepted = entries.map(() => false);
  const rejected: BatchDecision['rejected'] = entries.map(() => undefined);
  let outputs = context.outputs;
  let decision: Decision = { accepted: false, state, actions: [], events: [], outputs: {}, reopened: false };
  const inputs = (depths: Record<string, number> | undefined): DecideInputs => ({
    ...(depths ? { queueDepths: depths } : {}),
    ...(context.deadlineGraceMs !== undefined ? { deadlineGraceMs: context.deadlineGraceMs } : {}),
  });
  let decided = 0;
  entries.forEach((entry, i) => {
    const withOutput = entry.output ? { ...outputs, [entry.output.phase]: entry.output.value } : outputs;
    const beforeEntry = { decision, decided };
    for (const event of entry.events) {
      let next: Decision;
      try {
        next = decideEvent(definition, decision.state, event, {
          requirements: context.requirements,
          variables: context.variables,
          outputs: withOutput,
          errors: decision.state.errors,
          ...inputs(countQueued(context.queueDepths, decision.actions)),
        });
      } catch (thrown) {
        rejected[i] = { event, thrown };
        accepted[i] = false;
        ({ decision, decided } = beforeEntry);
        return;
      }
      if (!next.accepted) continue;
      accepted[i] = true;
      decided += 1;
      const deadlines = [...(decision.deadlines ?? []), ...(next.deadlines ?? [])];
      decision = {
        accepted: true,
        state: next.state,
        actions: [...decision.actions, ...next.actions],
        events: [...decision.events, ...next.events],
        outputs: { ...decision.outputs, ...next.outputs },
        reopened: decision.reopened || next.reopened,
        ...(deadlines.length > 0 ? { deadlines } : {}),
      };
    }
    if (accepted[i] && entry.output) {
      outputs = withOutput;
      decision.outputs = { ...decision.outputs, [entry.output.phase]: entry.output.value };
    }
  });
  return { ...(decided > 1 ? settleActions(decision, state) : decision), entries: accepted, rejected };
}

const active = (p: PhaseState | undefined): boolean => p !== undefined && (IN_FLIGHT_PHASE_STATUSES.includes(p.status) || p.status === 'waiting');

/** The merge rule (see the module comment): drop the actions a later event of the batch undid. */
function settleActions(decision: Decision, before: RunState): Decision {
  const stillThere = (phase: string, iteration: number): boolean => {
    const p = decision.state.phases[phase];
    return p !== undefined && p.iteration === iteration && active(p);
  };
  const queuedHere = new Set(
    decision.actions.filter((a) => a.type === 'enqueue_phase' || a.type === 'start_child_run').map((a) => `${a.phase}\n${a.iteration}`),
  );
  const actions = decision.actions.filter((a) => {
    switch (a.type) {
      case 'enqueue_phase':
      case 'start_child_run':
      case 'await_event':
        return stillThere(a.phase, a.iteration);
      case 'cancel_phase': {
        const was = before.phases[a.phase];
        const existedBefore = was !== undefined && was.iteration === a.iteration && active(was);
        return existedBefore || !queuedHere.has(`${a.phase}\n${a.iteration}`);
      }
      default:
        return true;
    }
  });
  const deadlines = decision.deadlines?.filter((d) => stillThere(d.phase, d.iteration));
  const deadlinesKept = deadlines === undefined || deadlines.length === decision.deadlines?.length;
  if (actions.length === decision.actions.length && deadlinesKept) return decision;
  const settled: Decision = { ...decision, actions };
  if (deadlines && deadlines.length > 0) settled.deadlines = deadlines;
  else delete settled.deadlines;
  return settled;
}
