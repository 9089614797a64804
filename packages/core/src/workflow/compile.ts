import type { z } from 'zod';
import { FleetError, formatIssues, type ValidationIssue } from '../errors.js';
import type { PhaseDefinition, WorkflowDefinition } from './definition.js';
import { WorkflowFileSchema, type WorkflowFile } from './schema.js';

/** `planner_agent` → `planner`: both spellings are accepted, the bare role name is canonical. */
export function normalizeRoleName(agent: string): string {
  return agent.endsWith('_agent') && agent.length > '_agent'.length ? agent.slice(0, -'_agent'.length) : agent;
}

/** Render a zod issue path as `phases[2].depends_on[0]`. */
function pathOf(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}

function zodIssues(error: z.ZodError): ValidationIssue[] {
  return error.issues.map((issue) => {
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') {
      message = `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}; remove ${issue.keys.length > 1 ? 'them' : 'it'} or check the spelling`;
    }
    return { path: pathOf(issue.path), message };
  });
}

/**
 * Check the graph of a parsed workflow file: duplicate phase names, phases whose agent is not listed,
 * unknown or self dependencies, and cycles. Returns every issue found, each naming the phase.
 */
export function checkWorkflowGraph(file: WorkflowFile): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const roles = new Set(file.agents.map(normalizeRoleName));
  const indexByName = new Map<string, number>();
  file.phases.forEach((phase, i) => {
    if (indexByName.has(phase.name)) {
      issues.push({ path: `phases[${i}].name`, message: `duplicate phase name "${phase.name}"; phase names must be unique` });
    } else {
      indexByName.set(phase.name, i);
    }
    const role = normalizeRoleName(phase.agent);
    if (!roles.has(role)) {
      issues.push({
        path: `phases[${i}].agent`,
        message: `phase "${phase.name}": agent "${phase.agent}" is not in the workflow's agents list (${[...roles].join(', ')}); add it to "agents" or pick one of those`,
      });
    }
  });
  const known = [...indexByName.keys()];
  file.phases.forEach((phase, i) => {
    phase.depends_on.forEach((dep, j) => {
      const target = typeof dep === 'string' ? dep : dep.phase;
      if (target === phase.name) {
        issues.push({ path: `phases[${i}].depends_on[${j}]`, message: `phase "${phase.name}" depends on itself; remove that entry` });
      } else if (!indexByName.has(target)) {
        issues.push({
          path: `phases[${i}].depends_on[${j}]`,
          message: `phase "${phase.name}": depends_on "${target}" is not a phase of this workflow; use one of: ${known.filter((n) => n !== phase.name).join(', ') || '(none)'}`,
        });
      }
    });
  });
  if (issues.length > 0) return issues;
  const cycle = findCycle(file);
  if (cycle) {
    issues.push({ path: 'phases', message: `dependency cycle: ${cycle.join(' -> ')}; remove one of these depends_on entries` });
  }
  if (file.error_handling.fallback_workflow === file.name) {
    issues.push({ path: 'error_handling.fallback_workflow', message: 'a workflow cannot be its own fallback' });
  }
  return issues;
}

/** Depth-first search for a cycle; returns its phase names (first repeated at the end) or undefined. */
function findCycle(file: WorkflowFile): string[] | undefined {
  const deps = new Map(file.phases.map((p) => [p.name, p.depends_on.map((d) => (typeof d === 'string' ? d : d.phase))]));
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (name: string): string[] | undefined => {
    const s = state.get(name);
    if (s === 'done') return undefined;
    if (s === 'visiting') return [...stack.slice(stack.indexOf(name)), name];
    state.set(name, 'visiting');
    stack.push(name);
    for (const dep of deps.get(name) ?? []) {
      const found = visit(dep);
      if (found) return found;
    }
    stack.pop();
    state.set(name, 'done');
    return undefined;
  };
  for (const phase of file.phases) {
    const found = visit(phase.name);
    if (found) return found;
  }
  return undefined;
}

/** Stable topological order: file order, except that a phase comes after all its dependencies. */
function topologicalOrder(phases: PhaseDefinition[]): PhaseDefinition[] {
  const done = new Set<string>();
  const out: PhaseDefinition[] = [];
  const remaining = [...phases];
  while (remaining.length > 0) {
    const i = remaining.findIndex((p) => p.dependsOn.every((d) => done.has(d.phase)));
    // checkWorkflowGraph rejected cycles, so some phase is always ready.
    const [next] = remaining.splice(i < 0 ? 0 : i, 1);
    if (!next) break;
    done.add(next.name);
    out.push(next);
  }
  return out;
}

/**
 * Validate a workflow (already parsed from YAML or JSON) and compile it for the scheduler.
 *
 * @param raw - the workflow object, in the file format (snake_case, durations in seconds).
 * @returns the compiled {@link WorkflowDefinition} (durations in ms, role names normalized, phases in
 *   dependency order).
 * @throws FleetError `INVALID_WORKFLOW` listing every problem, one per line, each with its path
 *   (`phases[1].depends_on[0]: phase "design": depends_on "plan" is not a phase ...`); `details.issues`
 *   holds them as `{path, message}`.
 */
export function compileWorkflow(raw: unknown): WorkflowDefinition {
  const parsed = WorkflowFileSchema.safeParse(raw);
  if (!parsed.success) throw invalid(zodIssues(parsed.error), raw);
  const file = parsed.data;
  const graphIssues = checkWorkflowGraph(file);
  if (graphIssues.length > 0) throw invalid(graphIssues, raw);

  const workflowContinue = file.error_handling.continue_on_error;
  const phases: PhaseDefinition[] = file.phases.map((p) => ({
    name: p.name,
    description: p.description ?? '',
    agent: normalizeRoleName(p.agent),
    timeoutMs: Math.round(p.timeout * 1000),
    retries: p.retries,
    retryDelayMs: Math.round(p.retry_delay * 1000),
    dependsOn: p.depends_on.map((d) => (typeof d === 'string' ? { phase: d, optional: false } : { phase: d.phase, optional: d.optional })),
    continueOnError: p.continue_on_error ?? workflowContinue,
    instructions: p.instructions,
    maxIterations: p.max_iterations,
  }));
  return {
    name: file.name,
    description: file.description,
    version: file.version,
    agents: [...new Set(file.agents.map(normalizeRoleName))],
    phases: topologicalOrder(phases),
    errorHandling: {
      continueOnError: workflowContinue,
      fallbackWorkflow: file.error_handling.fallback_workflow,
      maxTotalRetries: file.error_handling.max_total_retries,
    },
    output: {
      format: file.output.format,
      includeAgentOutputs: file.output.include_agent_outputs,
      saveToFile: file.output.save_to_file,
    },
  };
}

function invalid(issues: ValidationIssue[], raw: unknown): FleetError {
  const name = typeof raw === 'object' && raw !== null && typeof (raw as { name?: unknown }).name === 'string' ? (raw as { name: string }).name : undefined;
  const head = name ? `workflow "${name}" is not valid` : 'workflow is not valid';
  return new FleetError('INVALID_WORKFLOW', `${head}:\n${formatIssues(issues)}`, { details: { issues } });
}
