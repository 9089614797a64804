/**
 * Run history for pattern mining, read from the run store: the `<prefix>:runs` index (newest first)
 * and each finished run's state and definition.
 */
import type { RunMeta } from '../result.js';
import { TERMINAL_RUN_STATUSES, type PhaseState, type RunState } from '../scheduler/types.js';
import type { RunStore } from '../store/run-store.js';
import type { PhaseDefinition } from '../workflow/definition.js';
import type { HistoryRun, HistoryStep } from './mine.js';

/** The label of a phase's step: `agent:<role>`, `tool:<name>`, `workflow:<name>` or `approval`. */
export function stepLabel(def: PhaseDefinition, state: PhaseState | undefined): string {
  switch (def.kind) {
    case 'tool':
      return `tool:${def.tool ?? 'unknown'}`;
    case 'workflow':
      return `workflow:${def.workflow ?? 'unknown'}`;
    case 'approval':
      return 'approval';
    case 'agent':
      return `agent:${state?.agent ?? def.agent}`;
  }
}

/**
 * One finished run as pattern mining sees it: the phases that ran (completed, failed, or cancelled
 * after starting) in the order they started, with their definitions. Undefined while it is not finished.
 */
export function historyRunOf(meta: RunMeta, state: RunState): HistoryRun | undefined {
  if (!TERMINAL_RUN_STATUSES.includes(state.status)) return undefined;
  const order = new Map(meta.workflow.phases.map((p, i) => [p.name, i]));
  const ran = meta.workflow.phases
    .map((def) => ({ def, s: state.phases[def.name] }))
    .filter((x): x is { def: PhaseDefinition; s: PhaseState } => x.s !== undefined && x.s.startedAt !== undefined && ['completed', 'failed', 'cancelled'].includes(x.s.status))
    .sort((a, b) => (a.s.startedAt ?? 0) - (b.s.startedAt ?? 0) || (order.get(a.def.name) ?? 0) - (order.get(b.def.name) ?? 0));
  const steps: HistoryStep[] = ran.map(({ def, s }) => ({
    label: stepLabel(def, s),
    phase: def.name,
    status: s.status as HistoryStep['status'],
    durationMs: s.durationMs ?? 0,
    definition: def,
  }));
  return { runId: meta.run_id, workflow: meta.workflow.name, status: state.status, steps, variables: meta.workflow.variables };
}

/** The finished runs among the newest `limit` runs in Redis, oldest first (see {@link historyRunOf}). */
export async function readRunHistory(store: RunStore, options: { limit?: number } = {}): Promise<HistoryRun[]> {
  const ids = await store.recentRunIds(options.limit ?? 1000);
  const runs: HistoryRun[] = [];
  for (const id of ids.reverse()) {
    let run;
    try {
      run = await store.getRun(id);
    } catch {
      continue; // expired or removed since the index was read
    }
    const history = historyRunOf(run.meta, run.state);
    if (history) runs.push(history);
  }
  return runs;
}
