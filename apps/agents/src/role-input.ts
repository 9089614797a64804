/**
 * What an agent receives for one phase iteration, read from the run's shared context: the upstream
 * outputs, the phase's templated instructions and input, feedback from the phase that sent the work
 * back (a reviewer's findings), and answers to what the phase asked while waiting.
 */
import { StepActionSchema, renderTemplate, upstreamOf, type PhaseDefinition, type RunMeta, type RunState, type StepAction } from '@agentfleet/core';
import type { AgentRole, RoleInput } from './roles/role.js';

/**
 * Build a phase's {@link RoleInput} from the run and its shared context's outputs (as read when the
 * job was taken).
 */
export function buildRoleInput(meta: RunMeta, state: RunState, def: PhaseDefinition, outputs: Record<string, unknown>): RoleInput {
  const deps = upstreamOf(meta.workflow, def.name);
  const feedback = state.phases[def.name]?.feedback;
  const ctx = { requirements: meta.requirements, variables: meta.variables, outputs, errors: state.errors };
  const render = (text: string | undefined) => (text === undefined ? undefined : renderTemplate(text, ctx));
  const instructions = [render(def.instructions), render(def.input)].filter((t): t is string => Boolean(t)).join('\n\n') || undefined;
  const input: RoleInput = {
    requirements: meta.requirements,
    variables: meta.variables,
    phase: def.name,
    instructions,
    upstream: deps.filter((d) => d in outputs).map((d) => ({ phase: d, role: meta.workflow.phases.find((p) => p.name === d)?.agent ?? d, output: outputs[d] })),
    upstreamErrors: state.errors.filter((e) => deps.includes(e.phase)).map((e) => ({ phase: e.phase, error: e.error.message })),
    ...(meta.workflow.guidelines ? { guidelines: meta.workflow.guidelines } : {}),
  };
  if (feedback) {
    input.feedback = {
      from: feedback.from,
      ...(feedback.note !== undefined ? { note: feedback.note } : {}),
      ...(feedback.from !== def.name && feedback.from in outputs ? { output: outputs[feedback.from] } : {}),
      ...(feedback.event ? { event: feedback.event } : {}),
    };
    if (feedback.from === def.name && def.name in outputs) input.previous = outputs[def.name];
  }
  return input;
}

/**
 * Split an agent's reply into what goes into the shared context and the step action it asks for:
 * a `step_action` field is taken out, `context_updates` are merged into the output, and the role's
 * own `stepAction` hook (e.g. the planner waiting for answers) is consulted.
 */
export function splitOutput(role: AgentRole, raw: unknown, input: RoleInput): { output: unknown; action: StepAction | undefined } {
  let output = raw;
  let action: StepAction | undefined;
  if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
    const { step_action: requested, context_updates: updates, ...rest } = raw as Record<string, unknown>;
    output = updates && typeof updates === 'object' && !Array.isArray(updates) ? { ...rest, ...(updates as Record<string, unknown>) } : rest;
    // Only a well-formed step action is honoured; anything else is dropped rather than failing the report.
    const parsed = StepActionSchema.safeParse(requested);
    if (requested !== undefined && parsed.success) action = parsed.data;
  }
  action ??= role.stepAction?.(output, input);
  return { output, action };
}
