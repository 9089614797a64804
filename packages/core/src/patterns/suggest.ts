/**
 * Turn a mined pattern into a workflow: one phase per step, each depending on the one before, with
 * the settings (timeouts, retries, instructions, tool parameters) of the phase that ran it in the
 * pattern's example occurrence.
 */
import { FleetError } from '../errors.js';
import { pathsIn } from '../workflow/condition.js';
import { compileWorkflow, templateStrings } from '../workflow/compile.js';
import type { PhaseDefinition, WorkflowDefinition } from '../workflow/definition.js';
import type { HistoryRun, SequencePattern } from './mine.js';

/** What {@link suggestWorkflow} returns. */
export interface SuggestedWorkflow {
  /** The workflow in the file format (snake_case, seconds): write it as YAML or register it. */
  body: Record<string, unknown>;
  /** The same, compiled: proof that it is valid. */
  definition: WorkflowDefinition;
}

/** A phase definition back in the file format, depending on `previous`. */
function filePhase(def: PhaseDefinition, label: string, name: string, previous: string | undefined): Record<string, unknown> {
  const phase: Record<string, unknown> = { name };
  if (def.description) phase.description = def.description;
  if (def.kind === 'tool') {
    phase.tool = def.tool;
    phase.parameters = def.parameters ?? {};
  } else if (def.kind === 'workflow') {
    phase.workflow = def.workflow;
  } else if (def.kind === 'approval') {
    phase.type = 'approval';
    phase.on_timeout = def.onTimeout;
  } else {
    phase.agent = label.slice('agent:'.length);
  }
  phase.timeout = def.timeoutMs / 1000;
  phase.retries = def.retries;
  phase.retry_delay = def.retryDelayMs / 1000;
  if (previous) phase.depends_on = [previous];
  if (def.instructions !== undefined) phase.instructions = def.instructions;
  if (def.input !== undefined) phase.input = def.input;
  if (def.maxIterations !== 3) phase.max_iterations = def.maxIterations;
  return phase;
}

/**
 * Build a validated workflow from a pattern.
 *
 * @param history - the history the pattern was mined from (its example occurrence is read).
 * @throws FleetError `INVALID_WORKFLOW` when the result does not validate (e.g. a tool parameter
 *   refers to a phase outside the pattern: the message names it); `INVALID_INPUT` for a bad name.
 */
export function suggestWorkflow(pattern: SequencePattern, history: readonly HistoryRun[], options: { name: string; description?: string }): SuggestedWorkflow {
  const run = history[pattern.example.run];
  const steps = run?.steps.slice(pattern.example.start, pattern.example.start + pattern.steps.length) ?? [];
  if (!run || steps.length !== pattern.steps.length) throw new FleetError('INVALID_INPUT', 'the pattern does not belong to this history; mine it again');
  const names = new Set<string>();
  const phases: Array<Record<string, unknown>> = [];
  let previous: string | undefined;
  for (const step of steps) {
    let name = step.phase;
    for (let i = 2; names.has(name); i++) name = `${step.phase}_${i}`;
    names.add(name);
    const def: PhaseDefinition = step.definition ?? {
      name,
      description: '',
      kind: step.label.startsWith('tool:') ? 'tool' : 'agent',
      agent: step.label.startsWith('tool:') ? 'tools' : step.label.replace(/^agent:/, ''),
      agentSelect: undefined,
      workflow: undefined,
      ...(step.label.startsWith('tool:') ? { tool: step.label.slice(5), parameters: {} } : {}),
      condition: undefined,
      input: undefined,
      stepActions: [],
      cache: false,
      onTimeout: 'reject',
      timeoutMs: 300_000,
      retries: 2,
      retryDelayMs: 1000,
      dependsOn: [],
      continueOnError: false,
      instructions: undefined,
      maxIterations: 3,
    };
    phases.push(filePhase(def, step.label, name, previous));
    previous = name;
  }
  const agents = [...new Set(steps.filter((s) => s.label.startsWith('agent:')).map((s) => s.label.slice('agent:'.length)))];
  const texts = phases.flatMap((p) => [
    ...templateStrings(p.parameters, 'parameters').map(([, t]) => t),
    ...[p.instructions, p.input].filter((t): t is string => typeof t === 'string'),
  ]);
  const used = new Set(texts.flatMap((t) => pathsIn(t).map((r) => r.head)));
  const variables = Object.fromEntries(Object.entries(run.variables ?? {}).filter(([k]) => used.has(k)));
  const kinds = [...new Set(pattern.steps.map((s) => s.split(':')[1] ?? s))];
  const body: Record<string, unknown> = {
    name: options.name,
    description:
      options.description ??
      `Learned from run history: ${pattern.steps.join(' → ')} (${pattern.frequency} runs, ${Math.round(pattern.successRate * 100)}% succeeded, mean ${(pattern.meanDurationMs / 1000).toFixed(1)} s).`,
    version: '1.0.0',
    category: 'learned',
    tags: ['learned', ...kinds].slice(0, 32),
    agents,
    phases,
    ...(Object.keys(variables).length > 0 ? { variables } : {}),
  };
  return { body, definition: compileWorkflow(body) };
}
