/**
 * The DAG closures of a workflow's phases: for each phase, every phase it depends on (upstream) and
 * every phase that depends on it (downstream), directly or not. Computed once, when the workflow is
 * compiled ({@link withClosures}), and read by the scheduler (a `jump` resets the target's
 * downstream), the client (a rerun keeps what is not downstream of `from`) and the agents (a phase's
 * upstream outputs are its inputs).
 */
import type { PhaseDefinition, WorkflowDefinition } from './definition.js';

/** Names of the phases upstream of each phase, then downstream, each in the definition's order. */
function closures(phases: readonly Pick<PhaseDefinition, 'name' | 'dependsOn'>[]): Map<string, { upstream: string[]; downstream: string[] }> {
  const byName = new Map(phases.map((p) => [p.name, p]));
  const up = new Map<string, Set<string>>();
  const ancestors = (name: string): Set<string> => {
    let seen = up.get(name);
    if (seen) return seen;
    seen = new Set<string>();
    up.set(name, seen);
    for (const dep of byName.get(name)?.dependsOn ?? []) {
      seen.add(dep.phase);
      for (const a of ancestors(dep.phase)) seen.add(a);
    }
    return seen;
  };
  const order = phases.map((p) => p.name);
  const out = new Map<string, { upstream: string[]; downstream: string[] }>();
  for (const name of order) out.set(name, { upstream: order.filter((n) => ancestors(name).has(n)), downstream: [] });
  for (const name of order) for (const a of out.get(name)?.upstream ?? []) out.get(a)?.downstream.push(name);
  return out;
}

/**
 * The phases with their `upstream` and `downstream` closures filled in (compileWorkflow calls this
 * once; the phases must be acyclic, as compiled workflows are).
 */
export function withClosures(phases: PhaseDefinition[]): PhaseDefinition[] {
  const all = closures(phases);
  return phases.map((p) => ({ ...p, upstream: all.get(p.name)?.upstream ?? [], downstream: all.get(p.name)?.downstream ?? [] }));
}

/**
 * A phase's closure as compiled; computed here for a definition stored before closures were
 * compiled in (a run created by an earlier version).
 */
function closureOf(definition: Pick<WorkflowDefinition, 'phases'>, phase: string, side: 'upstream' | 'downstream'): string[] {
  const def = definition.phases.find((p) => p.name === phase);
  return def?.[side] ?? closures(definition.phases).get(phase)?.[side] ?? [];
}

/** Names of the phases `phase` depends on, directly or not, in the definition's (dependency) order. */
export function upstreamOf(definition: Pick<WorkflowDefinition, 'phases'>, phase: string): string[] {
  return closureOf(definition, phase, 'upstream');
}

/** Names of the phases that depend on `phase`, directly or not, in the definition's (dependency) order. */
export function downstreamOf(definition: Pick<WorkflowDefinition, 'phases'>, phase: string): string[] {
  return closureOf(definition, phase, 'downstream');
}
